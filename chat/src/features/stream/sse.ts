import type { Response } from 'express';

/** Where a stream's events go: an SSE response, or a collector for the non-streaming APIs. */
export interface StreamSink {
  /** called once, after the reservation succeeded: from here on failures are events, not problems */
  open(): void;
  send(event: string, data: unknown): void;
  heartbeat(): void;
  end(): void;
  /** `listener` runs if the client goes away before `end` */
  onClose(listener: () => void): void;
}

export function openSse(res: Response): void {
  res.status(200);
  res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
  res.setHeader('Cache-Control', 'no-cache, no-transform');
  res.setHeader('Connection', 'keep-alive');
  res.setHeader('X-Accel-Buffering', 'no');
  res.flushHeaders();
  res.socket?.setNoDelay(true);
}

export function writeSse(res: Response, event: string, data: unknown): void {
  if (!res.writableEnded) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

export function writeSseComment(res: Response, comment: string): void {
  if (!res.writableEnded) res.write(`: ${comment}\n\n`);
}

export class SseSink implements StreamSink {
  readonly #res: Response;
  constructor(res: Response) {
    this.#res = res;
  }
  open(): void {
    openSse(this.#res);
  }
  send(event: string, data: unknown): void {
    writeSse(this.#res, event, data);
  }
  heartbeat(): void {
    writeSseComment(this.#res, 'heartbeat');
  }
  end(): void {
    if (!this.#res.writableEnded) this.#res.end();
  }
  onClose(listener: () => void): void {
    this.#res.on('close', () => {
      if (!this.#res.writableFinished) listener();
    });
  }
}

/** Collects a whole reply (POST .../messages and the Flowise-compatible API without streaming). */
export class CollectingSink implements StreamSink {
  readonly events: Array<{ event: string; data: unknown }> = [];
  #closeListeners: Array<() => void> = [];
  open(): void {}
  send(event: string, data: unknown): void {
    this.events.push({ event, data });
  }
  heartbeat(): void {}
  end(): void {
    this.#closeListeners = [];
  }
  onClose(listener: () => void): void {
    this.#closeListeners.push(listener);
  }
  /** the caller went away (its HTTP response closed early) */
  close(): void {
    for (const listener of this.#closeListeners) listener();
  }
  get text(): string {
    return this.events
      .filter((e) => e.event === 'delta')
      .map((e) => (e.data as { text: string }).text)
      .join('');
  }
  terminal(): { event: string; data: Record<string, unknown> } | undefined {
    return this.events.find((e) => ['done', 'interrupted', 'error'].includes(e.event)) as { event: string; data: Record<string, unknown> } | undefined;
  }
}
