import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { authMetrics } from '../metrics.ts';
import type { BcryptJob } from './bcrypt-worker.ts';

interface Pending {
  job: BcryptJob;
  resolve: (value: string | boolean) => void;
  reject: (error: Error) => void;
}

/** A small fixed pool of bcrypt worker threads with a FIFO queue. */
export class BcryptPool {
  readonly #idle: Worker[] = [];
  readonly #all: Worker[] = [];
  readonly #queue: Pending[] = [];
  readonly #running = new Map<Worker, Pending>();
  #nextId = 1;
  #closed = false;

  /** default: one thread per core but one (kept for the event loop), at least one, at most four */
  constructor(size = Math.max(1, Math.min(4, availableParallelism() - 1))) {
    for (let i = 0; i < size; i++) this.#spawn();
  }

  #spawn(): void {
    const worker = new Worker(new URL('./bcrypt-worker.ts', import.meta.url));
    worker.unref();
    worker.on('message', (message: { id: number; result?: string | boolean; error?: string }) => {
      const pending = this.#running.get(worker);
      this.#running.delete(worker);
      if (pending) {
        if (message.error !== undefined) pending.reject(new Error(message.error));
        else pending.resolve(message.result as string | boolean);
      }
      this.#idle.push(worker);
      this.#drain();
    });
    worker.on('error', (error) => {
      // A crashed worker fails its job and is replaced.
      const pending = this.#running.get(worker);
      this.#running.delete(worker);
      pending?.reject(error);
      this.#all.splice(this.#all.indexOf(worker), 1);
      if (!this.#closed) {
        this.#spawn();
        this.#drain();
      }
    });
    this.#all.push(worker);
    this.#idle.push(worker);
  }

  #drain(): void {
    while (this.#idle.length > 0 && this.#queue.length > 0) {
      const worker = this.#idle.pop() as Worker;
      const pending = this.#queue.shift() as Pending;
      authMetrics.bcryptQueueDepth.set(this.#queue.length);
      this.#running.set(worker, pending);
      worker.postMessage(pending.job);
    }
  }

  #run(op: BcryptJob['op'], input: string, arg: number | string): Promise<string | boolean> {
    if (this.#closed) return Promise.reject(new Error('bcrypt pool closed'));
    return new Promise((resolve, reject) => {
      this.#queue.push({ job: { id: this.#nextId++, op, input, arg }, resolve, reject });
      this.#drain();
      authMetrics.bcryptQueueDepth.set(this.#queue.length);
    });
  }

  hash(input: string, cost: number): Promise<string> {
    return this.#run('hash', input, cost) as Promise<string>;
  }

  compare(input: string, hash: string): Promise<boolean> {
    return this.#run('compare', input, hash) as Promise<boolean>;
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const pending of this.#queue.splice(0)) pending.reject(new Error('bcrypt pool closed'));
    await Promise.all(this.#all.map((worker) => worker.terminate()));
  }
}
