import { accountingMetrics } from './metrics.ts';
/** What one queued call came to: its value, or the error to reject it with. */
export type Outcome<R> = { ok: true; value: R } | { ok: false; error: unknown };

interface Pending<C, R> {
  call: C;
  resolve: (value: R) => void;
  reject: (error: unknown) => void;
}

/**
 * Runs the balance changes of one account in batches within this process: up to `maxInFlight` batches of an
 * account at once; calls that arrive meanwhile wait here (in arrival order) and go together as the next batch.
 * Concurrent calls may apply in any order (as without batching); calls one caller makes one after another keep it.
 *
 * Why: every balance change locks the account row in PostgreSQL. Many calls for one hot account queued on that
 * row lock are slow: each waiter holds a pool connection and a snapshot, and each hand-over of the lock costs a
 * lock wait, a wake-up and a recheck in the server. Here they wait for free, and a batch pays one round trip,
 * one lock hand-over and one commit for all its calls. Correctness still rests on the row lock in the database
 * (other processes and the sweeper are not queued here).
 */
export class AccountBatcher<C, R> {
  readonly #queues = new Map<string, { pending: Pending<C, R>[]; running: number }>();
  readonly #run: (calls: C[]) => Promise<Outcome<R>[]>;
  readonly #maxBatch: number;
  readonly #maxInFlight: number;

  /**
   * `run` answers each call in order; a rejection of `run` rejects every call of that batch. Up to `maxInFlight`
   * batches of one key run at once: with two, the next batch already waits at the server while one runs.
   */
  constructor(run: (calls: C[]) => Promise<Outcome<R>[]>, options: { maxBatch?: number; maxInFlight?: number } = {}) {
    this.#run = run;
    this.#maxBatch = options.maxBatch ?? 32;
    this.#maxInFlight = options.maxInFlight ?? 2;
  }

  submit(key: string, call: C): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      let queue = this.#queues.get(key);
      if (!queue) {
        queue = { pending: [], running: 0 };
        this.#queues.set(key, queue);
      }
      queue.pending.push({ call, resolve, reject });
      if (queue.running < this.#maxInFlight) {
        queue.running++;
        void this.#drain(key, queue);
      }
    });
  }

  /** Keys with calls queued or in flight (for tests). */
  get size(): number {
    return this.#queues.size;
  }

  async #drain(key: string, queue: { pending: Pending<C, R>[]; running: number }): Promise<void> {
    while (queue.pending.length > 0) {
      const batch = queue.pending.splice(0, this.#maxBatch);
      accountingMetrics.batchSize.observe(batch.length);
      try {
        const outcomes = await this.#run(batch.map((pending) => pending.call));
        batch.forEach((pending, i) => {
          const outcome = outcomes[i];
          if (!outcome) pending.reject(new Error('batch answered fewer calls than it was given'));
          else if (outcome.ok) pending.resolve(outcome.value);
          else pending.reject(outcome.error);
        });
      } catch (error) {
        for (const pending of batch) pending.reject(error);
      }
    }
    queue.running--;
    if (queue.running === 0) this.#queues.delete(key);
  }
}
