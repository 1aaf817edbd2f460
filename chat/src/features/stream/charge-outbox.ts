import { ApiError, type Logger } from '@platform/shared-types';
import type { Connection, Model } from 'mongoose';
import { Schema } from 'mongoose';
import { retryTransient } from '../../store-retry.ts';
import type { AbortBody, AccountingClient, FinalizeBody } from './accounting-client.ts';

export type Charge = { kind: 'finalize'; body: FinalizeBody } | { kind: 'abort'; body: AbortBody };

interface OutboxDoc {
  _id: string;
  kind: Charge['kind'];
  body: Record<string, unknown>;
  attempts: number;
  nextAttemptAt: Date;
  /** a running stream's checkpoint (what it produced so far): due only when its holder stopped renewing the lease */
  provisional?: boolean;
  lastError?: string;
  createdAt: Date;
}

const outboxSchema = new Schema<OutboxDoc>(
  {
    _id: { type: String, required: true },
    kind: { type: String, required: true, enum: ['finalize', 'abort'] },
    body: { type: Schema.Types.Mixed, required: true },
    attempts: { type: Number, required: true },
    nextAttemptAt: { type: Date, required: true },
    provisional: Boolean,
    lastError: String,
    createdAt: { type: Date, required: true },
  },
  { versionKey: false },
);
outboxSchema.index({ nextAttemptAt: 1 });

/** What a charge came to: the credits accounting took, or `pending` when it waits in the outbox. */
export type ChargeResult = { pending: false; credits: number } | { pending: true };

/** A failure worth retrying: accounting unreachable or failing, as opposed to refusing the call (4xx). */
function isTransient(error: unknown): boolean {
  return !(error instanceof ApiError) || error.code === 'UPSTREAM_UNAVAILABLE' || error.status >= 500;
}

/**
 * Durable charges: a finalize or abort that accounting did not take lands in MongoDB (keyed by reservation id)
 * and is retried with exponential backoff until it does. Accounting is idempotent on the reservation id, so a
 * retry after a lost answer never charges twice. `onSettled` records the final credits on the message.
 *
 * A running stream also keeps a provisional abort here (`checkpoint`: the usage it produced so far, due only after
 * a lease the stream keeps extending). When the process dies mid-stream, the lease runs out and any instance
 * replays that abort, so the produced part is charged once (accounting takes it from the balance when its sweeper
 * expired the reservation first, and records what it could not take). The stream's own final charge replaces or
 * discards the checkpoint.
 */
export class ChargeOutbox {
  readonly #model: Model<OutboxDoc>;
  readonly #accounting: AccountingClient;
  readonly #logger: Logger;
  readonly #options: { pollMs: number; backoffMinMs: number; backoffMaxMs: number };
  readonly #onSettled: (reservationId: string, credits: number) => Promise<void>;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  /** reservations a stream of this process is running on */
  readonly #live = new Set<string>();

  constructor(
    connection: Connection,
    accounting: AccountingClient,
    options: {
      logger: Logger;
      pollMs: number;
      backoffMinMs: number;
      backoffMaxMs: number;
      onSettled: (reservationId: string, credits: number) => Promise<void>;
    },
  ) {
    this.#model = connection.model<OutboxDoc>('ChargeOutbox', outboxSchema, 'charge_outbox');
    this.#accounting = accounting;
    this.#logger = options.logger;
    this.#options = options;
    this.#onSettled = options.onSettled;
  }

  /**
   * Tries the charge now. `pending` means accounting could not take it: the caller stores what depends on it, then
   * calls `enqueue` (in that order, so a retry that lands finds the message to settle).
   */
  async attempt(charge: Charge): Promise<ChargeResult> {
    try {
      return { pending: false, credits: await this.#send(charge) };
    } catch (error) {
      if (!isTransient(error)) {
        this.#logger.error({ err: error, reservationId: charge.body.reservationId }, 'accounting refused a charge');
        return { pending: false, credits: 0 };
      }
      this.#logger.warn({ reservationId: charge.body.reservationId }, 'accounting unavailable: the charge goes to the outbox');
      return { pending: true };
    }
  }

  /**
   * Records (or updates) a running stream's provisional abort: what it produced so far, due after `leaseMs` unless
   * the next checkpoint pushes it further. Never overwrites a final charge already queued for the reservation.
   */
  async checkpoint(charge: Extract<Charge, { kind: 'abort' }>, leaseMs: number): Promise<void> {
    const set = { body: charge.body, nextAttemptAt: new Date(Date.now() + leaseMs) };
    const updated = await this.#model.updateOne({ _id: charge.body.reservationId, provisional: true }, { $set: set });
    if (updated.matchedCount === 1) return;
    await this.#model
      .create({ _id: charge.body.reservationId, kind: 'abort', provisional: true, attempts: 0, createdAt: new Date(), ...set })
      .catch((error: unknown) => {
        // a final charge for it is queued already: that one wins
        if ((error as { code?: number }).code !== 11000) throw error;
      });
  }

  /** Drops a stream's checkpoint once its final charge landed. */
  async discard(reservationId: string): Promise<void> {
    await retryTransient(() => this.#model.deleteOne({ _id: reservationId, provisional: true }));
  }

  /** Stores the charge for the retry loop (once per reservation id; it replaces the stream's checkpoint). */
  async enqueue(charge: Charge): Promise<void> {
    const due = new Date(Date.now() + this.#options.backoffMinMs);
    await retryTransient(() =>
      this.#model.updateOne(
        { _id: charge.body.reservationId, provisional: true },
        { $set: { kind: charge.kind, body: charge.body, nextAttemptAt: due, provisional: false } },
      ),
    );
    await retryTransient(() =>
      this.#model.updateOne(
        { _id: charge.body.reservationId },
        {
          $setOnInsert: {
            kind: charge.kind,
            body: charge.body,
            attempts: 1,
            nextAttemptAt: new Date(Date.now() + this.#options.backoffMinMs),
            createdAt: new Date(),
          },
        },
        { upsert: true },
      ),
    );
  }

  /** attempt, and enqueue at once when it did not land (when nothing else needs storing first) */
  async charge(charge: Charge): Promise<ChargeResult> {
    const result = await this.attempt(charge);
    if (result.pending) await this.enqueue(charge);
    return result;
  }

  async #send(charge: Charge): Promise<number> {
    const result = charge.kind === 'finalize' ? await this.#accounting.finalize(charge.body) : await this.#accounting.abort(charge.body);
    return result.chargedCredits;
  }

  async pendingCount(): Promise<number> {
    return this.#model.countDocuments({});
  }

  /** Queued charges (not running streams' checkpoints) and the age of the oldest, for the ops metrics. */
  async stats(): Promise<{ depth: number; oldestAgeSeconds: number }> {
    const queued = { provisional: { $ne: true } };
    const [depth, oldest] = await Promise.all([
      this.#model.countDocuments(queued),
      this.#model.findOne(queued).sort({ createdAt: 1 }).select({ createdAt: 1 }).lean<Pick<OutboxDoc, 'createdAt'>>(),
    ]);
    return { depth, oldestAgeSeconds: oldest ? Math.max(0, (Date.now() - oldest.createdAt.getTime()) / 1000) : 0 };
  }

  /**
   * A stream of this process runs on `reservationId` until the returned function is called: its checkpoint is
   * never replayed here, however late its lease (a tick slowed by a loaded store or event loop is not a dead
   * holder; replaying it would settle the reservation as an abort before the stream's own final charge).
   */
  holdLive(reservationId: string): () => void {
    this.#live.add(reservationId);
    return () => {
      this.#live.delete(reservationId);
    };
  }

  /** One pass over the charges that are due. */
  async retryDue(): Promise<void> {
    const due = await this.#model
      .find({ nextAttemptAt: { $lte: new Date() } })
      .sort({ nextAttemptAt: 1 })
      .limit(50)
      .lean<OutboxDoc[]>();
    for (const item of due) {
      if (item.provisional && this.#live.has(item._id)) continue;
      // claim it, so two instances do not send the same item at once (a duplicate would still be harmless)
      const lease = new Date(Date.now() + this.#options.backoffMaxMs);
      const claimed = await this.#model.updateOne({ _id: item._id, nextAttemptAt: item.nextAttemptAt }, { $set: { nextAttemptAt: lease } });
      if (claimed.modifiedCount !== 1) continue;
      const charge = { kind: item.kind, body: item.body } as Charge;
      try {
        const credits = await this.#send(charge);
        await this.#onSettled(item._id, credits);
        await this.#model.deleteOne({ _id: item._id });
        const what = item.provisional ? 'the checkpoint of a stream whose holder stopped landed' : 'queued charge landed';
        this.#logger.info({ reservationId: item._id, attempts: item.attempts + 1 }, what);
      } catch (error) {
        if (!isTransient(error)) {
          this.#logger.error({ err: error, reservationId: item._id }, 'accounting refused a queued charge; dropped');
          await this.#onSettled(item._id, 0);
          await this.#model.deleteOne({ _id: item._id });
          continue;
        }
        const backoff = Math.min(this.#options.backoffMaxMs, this.#options.backoffMinMs * 2 ** Math.min(item.attempts, 20));
        const jitter = Math.floor(Math.random() * Math.min(backoff, 1_000) * 0.2);
        await this.#model.updateOne(
          { _id: item._id },
          { $set: { nextAttemptAt: new Date(Date.now() + backoff + jitter), lastError: (error as Error).message }, $inc: { attempts: 1 } },
        );
      }
    }
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => {
      if (this.#running) return;
      this.#running = this.retryDue()
        .catch((error: unknown) => this.#logger.error({ err: error }, 'outbox pass failed'))
        .finally(() => {
          this.#running = undefined;
        });
    }, this.#options.pollMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }
}
