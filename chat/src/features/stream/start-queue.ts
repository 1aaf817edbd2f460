import { ApiError } from '@platform/shared-types';

/**
 * Bounds how many streams are in their start at once (from taking their session's lock until they are open: the
 * reservation confirmed, the head and the `session` event sent), in the order they came. A burst of streams otherwise
 * runs every step of its start for all of them before the next step of any (every request, then every Redis answer,
 * then every reservation...), so nearly every stream's first delta waits for nearly the whole burst's start work;
 * with the bound, a stream's start runs to its end before later ones take the CPU. The provider's own latency after
 * that holds no turn (a slow provider does not slow the starts of others). A stream that waits here has taken
 * nothing (no lock, no reservation, no write): a client that leaves while it waits frees its place and is never
 * charged. `concurrency` 0: no bound.
 */
export class StartQueue {
  readonly #concurrency: number;
  readonly #maxWaiting: number;
  #running = 0;
  readonly #waiting: Array<() => void> = [];

  constructor(options: { concurrency: number; maxWaiting: number }) {
    this.#concurrency = options.concurrency;
    this.#maxWaiting = options.maxWaiting;
  }

  /** streams in their start now */
  get running(): number {
    return this.#running;
  }

  /** streams waiting for their turn now */
  get waiting(): number {
    return this.#waiting.length;
  }

  /**
   * Resolves, in turn, with the function that ends this stream's start (once: later calls do nothing). Refuses at
   * once (503) when `maxWaiting` streams already wait; rejects when `signal` aborts before the turn came.
   */
  async enter(signal?: AbortSignal): Promise<() => void> {
    // a stream that waited is handed the place of the one that ended (so none can take it in between)
    if (this.#concurrency > 0 && this.#running >= this.#concurrency) await this.#wait(signal);
    else this.#running++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      const next = this.#waiting.shift();
      if (next) next();
      else this.#running--;
    };
  }

  #wait(signal: AbortSignal | undefined): Promise<void> {
    if (this.#waiting.length >= this.#maxWaiting) {
      return Promise.reject(
        new ApiError('UPSTREAM_UNAVAILABLE', 'Too many replies are starting on this instance; try again shortly', { headers: { 'retry-after': '1' } }),
      );
    }
    if (signal?.aborted) return Promise.reject(gone());
    return new Promise<void>((resolve, reject) => {
      const turn = () => {
        signal?.removeEventListener('abort', leave);
        resolve();
      };
      const leave = () => {
        const at = this.#waiting.indexOf(turn);
        if (at >= 0) this.#waiting.splice(at, 1);
        reject(gone());
      };
      this.#waiting.push(turn);
      signal?.addEventListener('abort', leave, { once: true });
    });
  }
}

const gone = () => new ApiError('UPSTREAM_UNAVAILABLE', 'The client left before its reply started');
