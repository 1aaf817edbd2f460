import mongoose, { type Connection, type Model, Schema, Types } from 'mongoose';

export interface FileDoc {
  _id: Types.ObjectId;
  userId: string;
  name: string;
  contentType: string;
  text: boolean;
  size: number;
  chunkCount: number;
  createdAt: Date;
}

interface ChunkDoc {
  fileId: Types.ObjectId;
  n: number;
  data: Buffer;
  /** on the first chunk until the file document exists: what a crash mid-upload leaves is found by it */
  pending?: boolean;
}

const fileSchema = new Schema<FileDoc>(
  {
    userId: { type: String, required: true },
    name: { type: String, required: true },
    contentType: { type: String, required: true },
    text: { type: Boolean, required: true },
    size: { type: Number, required: true },
    chunkCount: { type: Number, required: true },
  },
  { timestamps: { createdAt: true, updatedAt: false }, versionKey: false },
);
fileSchema.index({ userId: 1, createdAt: -1 });

const chunkSchema = new Schema<ChunkDoc>(
  { fileId: { type: Schema.Types.ObjectId, required: true }, n: { type: Number, required: true }, data: { type: Buffer, required: true } },
  { versionKey: false },
);
chunkSchema.index({ fileId: 1, n: 1 }, { unique: true });
chunkSchema.index({ pending: 1 });

/** Chunk size: well under the 16 MB document limit, like GridFS's default. */
export const CHUNK_BYTES = 255 * 1024;

/** Files as chunked documents (GridFS's layout, written with plain inserts, which FerretDB handles well). */
export class FilesDal {
  readonly files: Model<FileDoc>;
  readonly chunks: Model<ChunkDoc>;

  constructor(connection: Connection) {
    this.files = connection.model<FileDoc>('File', fileSchema, 'files');
    this.chunks = connection.model<ChunkDoc>('FileChunk', chunkSchema, 'file_chunks');
  }

  /** A new file id, for chunks written before the file document exists. */
  newFileId(): Types.ObjectId {
    return new Types.ObjectId();
  }

  /**
   * One chunk of a file being received; the file stays invisible until `finish` writes its document. Written
   * with the driver (no mongoose document and cast copy per chunk); the bytes are serialised before it settles.
   */
  async writeChunk(fileId: Types.ObjectId, n: number, data: Buffer): Promise<void> {
    await this.chunks.collection.insertOne({ fileId, n, data: new mongoose.mongo.Binary(data), ...(n === 0 ? { pending: true } : {}) });
  }

  /** Chunks first, the file document last: a file is visible only when all of it is stored. */
  async finish(fileId: Types.ObjectId, input: Omit<FileDoc, '_id' | 'createdAt'>): Promise<FileDoc> {
    const doc = await this.files.create({ _id: fileId, ...input });
    await this.chunks.updateOne({ fileId, n: 0 }, { $unset: { pending: 1 } });
    return doc.toObject();
  }

  /**
   * Chunks of uploads that began before `olderThan` and never got their file document (the instance died
   * mid-upload) are deleted; a file whose document exists only loses its stale mark. Returns the files removed.
   */
  async sweepUnfinished(olderThan: Date, batch = 500): Promise<number> {
    const cutoff = Types.ObjectId.createFromTime(Math.floor(olderThan.getTime() / 1000));
    const stale = await this.chunks
      .find({ pending: true, fileId: { $lt: cutoff } }, { fileId: 1 })
      .limit(batch)
      .lean<Array<Pick<ChunkDoc, 'fileId'>>>();
    let removed = 0;
    for (const { fileId } of stale) {
      if (await this.files.exists({ _id: fileId })) {
        await this.chunks.updateOne({ fileId, n: 0 }, { $unset: { pending: 1 } });
      } else {
        await this.chunks.deleteMany({ fileId });
        removed += 1;
      }
    }
    return removed;
  }

  /** Removes what an upload that failed or was refused had written. */
  async discardChunks(fileId: Types.ObjectId): Promise<void> {
    await this.chunks.deleteMany({ fileId });
  }

  async chunkCount(fileId: Types.ObjectId): Promise<number> {
    return this.chunks.countDocuments({ fileId });
  }

  /** the file document first, so a half-removed file is never listed */
  async remove(id: Types.ObjectId): Promise<void> {
    await this.files.deleteOne({ _id: id });
    await this.chunks.deleteMany({ fileId: id });
  }

  async find(id: Types.ObjectId): Promise<FileDoc | null> {
    return this.files.findById(id).lean<FileDoc>();
  }

  async list(userId: string, page: number, limit: number): Promise<{ items: FileDoc[]; total: number }> {
    const [items, total] = await Promise.all([
      this.files
        .find({ userId })
        .sort({ createdAt: -1, _id: -1 })
        .skip((page - 1) * limit)
        .limit(limit)
        .lean<FileDoc[]>(),
      this.files.countDocuments({ userId }),
    ]);
    return { items, total };
  }

  /** Files stored since `since` and their total size (one user has at most a day's quota of them). */
  async usageSince(userId: string, since: Date): Promise<{ count: number; bytes: number }> {
    const docs = await this.files.find({ userId, createdAt: { $gte: since } }, { size: 1 }).lean<Array<Pick<FileDoc, 'size'>>>();
    return { count: docs.length, bytes: docs.reduce((sum, doc) => sum + doc.size, 0) };
  }

  async read(file: FileDoc): Promise<Buffer> {
    const chunks = await this.chunks.find({ fileId: file._id }).sort({ n: 1 }).lean<ChunkDoc[]>();
    return Buffer.concat(chunks.map((c) => toBuffer(c.data)));
  }
}

/** lean() returns BSON Binary for buffers */
function toBuffer(value: unknown): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof mongoose.mongo.Binary) return Buffer.from(value.buffer);
  if (value instanceof Uint8Array) return Buffer.from(value);
  throw new Error('unexpected chunk data');
}
