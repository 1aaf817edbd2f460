import mongoose, { type Connection, type Model, Schema, Types } from 'mongoose';
import { retryTransient } from '../../store-retry.ts';

export type MessageRole = 'user' | 'assistant' | 'supervisor';
export type MessageStatus = 'complete' | 'interrupted' | 'error';

export interface SessionDoc {
  _id: Types.ObjectId;
  userId: string;
  modelId: string;
  title: string;
  /** false until the first message names the session (a title given at creation counts) */
  titled: boolean;
  createdAt: Date;
  updatedAt: Date;
}

export interface MessageDoc {
  _id: Types.ObjectId;
  sessionId: Types.ObjectId;
  userId: string;
  role: MessageRole;
  content: string;
  status: MessageStatus;
  usage?: { inputTokens: number; outputTokens: number };
  credits?: number;
  /** true while the charge waits in the outbox */
  chargePending?: boolean;
  reservationId?: string;
  modelId?: string;
  /** supervisor messages: who wrote it */
  authorId?: string;
  fileIds?: string[];
  /** a metered reply of a deleted session, kept without its text as a billing receipt (reconciliation) */
  deletedAt?: Date;
  createdAt: Date;
}

const sessionSchema = new Schema<SessionDoc>(
  {
    userId: { type: String, required: true },
    modelId: { type: String, required: true },
    title: { type: String, required: true },
    titled: { type: Boolean, required: true },
  },
  { timestamps: true, versionKey: false },
);
sessionSchema.index({ userId: 1, createdAt: -1 });

const messageSchema = new Schema<MessageDoc>(
  {
    sessionId: { type: Schema.Types.ObjectId, required: true },
    userId: { type: String, required: true },
    role: { type: String, required: true, enum: ['user', 'assistant', 'supervisor'] },
    content: { type: String, default: '' },
    status: { type: String, required: true, enum: ['complete', 'interrupted', 'error'] },
    usage: { type: { inputTokens: Number, outputTokens: Number }, _id: false, required: false },
    credits: Number,
    chargePending: Boolean,
    reservationId: String,
    modelId: String,
    authorId: String,
    fileIds: { type: [String], default: undefined },
    deletedAt: Date,
  },
  { timestamps: { createdAt: true, updatedAt: false }, versionKey: false },
);
messageSchema.index({ sessionId: 1, createdAt: 1 });
messageSchema.index({ role: 1, createdAt: 1 });

export function toObjectId(id: string): Types.ObjectId | undefined {
  return mongoose.isObjectIdOrHexString(id) && /^[0-9a-f]{24}$/i.test(id) ? new Types.ObjectId(id) : undefined;
}

/** Sessions and their messages. */
export class SessionsDal {
  readonly sessions: Model<SessionDoc>;
  readonly messages: Model<MessageDoc>;

  constructor(connection: Connection) {
    this.sessions = connection.model<SessionDoc>('Session', sessionSchema, 'sessions');
    this.messages = connection.model<MessageDoc>('Message', messageSchema, 'messages');
  }

  async createSession(input: { _id?: Types.ObjectId; userId: string; modelId: string; title?: string }): Promise<SessionDoc> {
    const doc = await this.sessions.create({
      ...(input._id ? { _id: input._id } : {}),
      userId: input.userId,
      modelId: input.modelId,
      title: input.title ?? 'New chat',
      titled: input.title !== undefined,
    });
    return doc.toObject();
  }

  async findSession(id: string): Promise<SessionDoc | null> {
    const _id = toObjectId(id);
    return _id ? this.sessions.findById(_id).lean<SessionDoc>() : null;
  }

  async listSessions(userId: string, page: number, limit: number): Promise<{ items: SessionDoc[]; total: number }> {
    const [items, total] = await Promise.all([
      this.sessions
        .find({ userId })
        .sort({ createdAt: -1, _id: -1 })
        .skip((page - 1) * limit)
        .limit(limit)
        .lean<SessionDoc[]>(),
      this.sessions.countDocuments({ userId }),
    ]);
    return { items, total };
  }

  async updateSession(id: Types.ObjectId, patch: Partial<Pick<SessionDoc, 'title' | 'titled' | 'modelId'>>): Promise<SessionDoc | null> {
    await retryTransient(() => this.sessions.updateOne({ _id: id }, { $set: { ...patch, updatedAt: new Date() } }));
    return this.sessions.findById(id).lean<SessionDoc>();
  }

  /**
   * Marks the session as used now (a reply was stored in it). With `firstTitle` (the session had no title when its
   * stream read it) it is named after its first message in the same write, only if it still has none (a rename or
   * another stream named it meanwhile: then only the time). Resolves whether it was named. Through the driver's
   * collection: these fields need no casting, and a burst's streams each make this write.
   */
  async touch(id: Types.ObjectId, firstTitle?: string): Promise<boolean> {
    const sessions = this.sessions.collection;
    const updatedAt = new Date();
    if (firstTitle !== undefined) {
      const named = await retryTransient(() => sessions.updateOne({ _id: id, titled: false }, { $set: { title: firstTitle, titled: true, updatedAt } }));
      if (named.matchedCount > 0) return true;
    }
    await retryTransient(() => sessions.updateOne({ _id: id }, { $set: { updatedAt } }));
    return false;
  }

  /**
   * Deletes a session and its messages, except that a metered reply stays as a billing receipt without its text:
   * its charge is in accounting's ledger, and reconciliation pairs every charge with a reply.
   */
  async deleteSession(id: Types.ObjectId): Promise<void> {
    const metered = { sessionId: id, role: 'assistant' as const, reservationId: { $exists: true } };
    await this.messages.updateMany(metered, { $set: { content: '', deletedAt: new Date() } });
    await this.messages.deleteMany({ sessionId: id, $or: [{ role: { $ne: 'assistant' } }, { reservationId: { $exists: false } }] });
    await this.sessions.deleteOne({ _id: id });
  }

  /** Metered assistant replies stored in [from, to), oldest id first, after the id `after` (paging). */
  async meteredReplies(window: { from: Date; to: Date; after?: Types.ObjectId; limit: number }): Promise<MessageDoc[]> {
    const filter: Record<string, unknown> = {
      role: 'assistant',
      reservationId: { $exists: true },
      createdAt: { $gte: window.from, $lt: window.to },
      ...(window.after ? { _id: { $gt: window.after } } : {}),
    };
    return this.messages.find(filter).sort({ _id: 1 }).limit(window.limit).lean<MessageDoc[]>();
  }

  async listMessages(sessionId: Types.ObjectId): Promise<MessageDoc[]> {
    return this.messages.find({ sessionId }).sort({ createdAt: 1, _id: 1 }).lean<MessageDoc[]>();
  }

  /** inserts with a fixed _id, so a retried insert that had landed fails as a duplicate instead of storing twice */
  async addMessage(message: Omit<MessageDoc, '_id' | 'createdAt'> & { _id?: Types.ObjectId }): Promise<MessageDoc> {
    const withId = { ...message, _id: message._id ?? new Types.ObjectId() };
    const doc = await retryTransient(() => this.messages.create(withId));
    return doc.toObject();
  }

  async deleteMessage(id: Types.ObjectId): Promise<void> {
    await retryTransient(() => this.messages.deleteOne({ _id: id }));
  }

  async settleCharge(reservationId: string, credits: number): Promise<void> {
    await retryTransient(() => this.messages.updateMany({ reservationId, role: 'assistant' }, { $set: { credits, chargePending: false } }));
  }
}
