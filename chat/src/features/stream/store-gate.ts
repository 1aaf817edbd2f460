/**
 * Store work of streams yields to streams that are starting. A stream counts as starting from its request until
 * its first delta is out (or it ended without one); while any stream starts, the store writes streams do not wait
 * for before their first token (the user message, the first checkpoint, the reply) wait here, at most
 * `maxDeferMs` each, so that a burst of stream starts does not share the CPU with the store's work for the streams
 * ahead of it. Nothing is dropped: every write still runs, and a stream still waits for its writes before its
 * terminal event. `maxDeferMs` 0 turns the gate off.
 */
export class StoreGate {
  readonly #maxDeferMs: number;
  #starting = 0;
  readonly #waiting: Array<{ due: number; resolve: () => void }> = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(options: { maxDeferMs: number }) {
    this.#maxDeferMs = options.maxDeferMs;
  }

  /** streams starting now */
  get starting(): number {
    return this.#starting;
  }

  /** store work waiting now */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** a stream starts; the returned function says it is past its first delta (or ended): once, later calls do nothing */
  begin(): () => void {
    this.#starting++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.#starting--;
      if (this.#starting === 0) this.#release(Number.POSITIVE_INFINITY);
    };
  }

  /** resolves once no stream is starting, `maxDeferMs` from now at the latest, or at once when `signal` aborts */
  ready(signal?: AbortSignal): Promise<void> {
    if (this.#starting === 0 || this.#maxDeferMs <= 0 || signal?.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const entry = { due: Date.now() + this.#maxDeferMs, resolve };
      this.#waiting.push(entry);
      this.#arm();
      signal?.addEventListener(
        'abort',
        () => {
          const at = this.#waiting.indexOf(entry);
          if (at >= 0) this.#waiting.splice(at, 1);
          resolve();
        },
        { once: true },
      );
    });
  }

  /** `work` once the gate lets it through */
  async after<T>(work: () => Promise<T>): Promise<T> {
    await this.ready();
    return await work();
  }

  /** one timer, for the oldest waiting entry (entries are in the order of their due times) */
  #arm(): void {
    if (this.#timer || this.#waiting.length === 0) return;
    const head = this.#waiting[0] as { due: number };
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        this.#release(Date.now());
      },
      Math.max(0, head.due - Date.now()),
    );
  }

  /** lets through every entry due by `until` (all of them for +Infinity) */
  #release(until: number): void {
    let count = 0;
    while (count < this.#waiting.length && (this.#waiting[count] as { due: number }).due <= until) count++;
    const released = this.#waiting.splice(0, count);
    if (this.#waiting.length === 0 && this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.#arm();
    for (const entry of released) entry.resolve();
  }
}
