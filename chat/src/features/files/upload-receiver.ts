import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { ApiError } from '@platform/shared-types';
import busboy from 'busboy';
import { type DetectedType, TypeSniffer } from './file-types.ts';
import { CHUNK_BYTES } from './files-dal.ts';

/** An answer sent while the body may still be arriving: the connection closes after it, the rest is never read. */
export function refusal(
  code: ConstructorParameters<typeof ApiError>[0],
  detail: string,
  options: { extensions?: Record<string, unknown>; retryAfter?: number } = {},
) {
  const headers: Record<string, string> = { Connection: 'close' };
  if (options.retryAfter !== undefined) headers['Retry-After'] = String(options.retryAfter);
  return new ApiError(code, detail, { extensions: options.extensions, headers });
}

export const NOT_ALLOWED_TYPE = 'Allowed: text (UTF-8), PDF, PNG, JPEG, GIF, WebP; the type is checked by content';

export interface ReceiveLimits {
  /** the most file bytes accepted; one more and `tooLarge` is the answer */
  fileBytes: number;
  tooLarge: () => ApiError;
  /** no body byte for this long cuts the upload */
  idleMs: number;
  /** the whole body must have arrived by then */
  timeoutMs: number;
}

export interface Received {
  name: string;
  size: number;
  chunkCount: number;
  type: DetectedType | undefined;
}

/** An upload's body as the files service sees it: what the request declares, and its reader, started once the upload is admitted. */
export interface UploadBody {
  contentType: string | undefined;
  /** Content-Length, when the client sent one */
  declaredBytes: number | undefined;
  receive(writeChunk: (n: number, data: Buffer) => Promise<void>, limits: ReceiveLimits): Promise<Received>;
}

/** The multipart body of an upload request (the router's part: the service sees plain values and a reader). */
export function multipartUpload(req: IncomingMessage): UploadBody {
  const declared = Number(req.headers['content-length']);
  return {
    contentType: req.headers['content-type'],
    declaredBytes: Number.isFinite(declared) ? declared : undefined,
    receive: (writeChunk, limits) => receiveUpload(req, writeChunk, limits),
  };
}

/**
 * Streams the one file part of a multipart body to `writeChunk` in CHUNK_BYTES pieces, holding one chunk
 * buffer per upload (reused: `writeChunk` must be done with the bytes when its promise settles). Settles only
 * after the last write has ended, so a caller that discards on failure removes everything (no write lands
 * after the discard).
 */
export function receiveUpload(req: IncomingMessage, writeChunk: (n: number, data: Buffer) => Promise<void>, limits: ReceiveLimits): Promise<Received> {
  let parser: busboy.Busboy;
  try {
    parser = busboy({ headers: req.headers, limits: { fileSize: limits.fileBytes, files: 1, fields: 10, parts: 12 } });
  } catch {
    return Promise.reject(refusal('UNSUPPORTED_MEDIA_TYPE', 'Send multipart/form-data with a boundary'));
  }
  return new Promise((resolve, reject) => new Reception({ req, parser, writeChunk, limits, resolve, reject }).start());
}

interface ReceptionInput {
  req: IncomingMessage;
  parser: busboy.Busboy;
  writeChunk: (n: number, data: Buffer) => Promise<void>;
  limits: ReceiveLimits;
  resolve: (received: Received) => void;
  reject: (error: unknown) => void;
}

/** One upload body being read: its timers, its file part and the first failure, which ends it. */
class Reception {
  readonly #io: ReceptionInput;
  #failure: unknown;
  #fileStream: Readable | undefined;
  #fileTask: Promise<Received | undefined> | undefined;
  #idle: NodeJS.Timeout | undefined;
  #deadline: NodeJS.Timeout | undefined;
  readonly #touch = () => {
    clearTimeout(this.#idle);
    const { idleMs } = this.#io.limits;
    this.#idle = setTimeout(() => this.#fail(refusal('VALIDATION_FAILED', `The upload stalled for ${idleMs} ms`)), idleMs);
  };

  constructor(io: ReceptionInput) {
    this.#io = io;
  }

  start(): void {
    const { timeoutMs } = this.#io.limits;
    this.#deadline = setTimeout(() => this.#fail(refusal('VALIDATION_FAILED', `The upload must arrive within ${timeoutMs} ms`)), timeoutMs);
    this.#io.parser.on('file', (_field, stream, info) => {
      this.#fileStream = stream;
      stream.on('limit', () => this.#fail(this.#io.limits.tooLarge()));
      this.#fileTask = this.#consume(stream, info.filename ?? '').catch((error: unknown) => {
        this.#fail(error);
        return undefined;
      });
    });
    this.#io.parser.on('error', () => this.#fail(refusal('VALIDATION_FAILED', 'Malformed multipart body')));
    this.#io.parser.on('close', () => {
      void Promise.resolve(this.#fileTask).then((received) => {
        if (this.#failure !== undefined) return;
        this.#stopTimers();
        if (received) this.#io.resolve(received);
        else this.#fail(refusal('VALIDATION_FAILED', 'No file in the upload (send it as a multipart file part)'));
      });
    });
    // a client that goes away mid-body: nothing it sent is kept
    this.#io.req.on('close', () => {
      if (!this.#io.req.complete) this.#fail(refusal('VALIDATION_FAILED', 'The upload was cut off'));
    });
    this.#io.req.on('data', this.#touch);
    this.#touch();
    this.#io.req.pipe(this.#io.parser);
  }

  #stopTimers(): void {
    clearTimeout(this.#deadline);
    clearTimeout(this.#idle);
  }

  #fail(error: unknown): void {
    if (this.#failure !== undefined) return;
    this.#failure = error;
    this.#stopTimers();
    this.#io.req.unpipe(this.#io.parser);
    this.#io.req.off('data', this.#touch);
    this.#fileStream?.destroy();
    // answer only once no chunk write is in flight any more
    void Promise.resolve(this.#fileTask).then(() => this.#io.reject(this.#failure));
  }

  async #consume(stream: Readable, name: string): Promise<Received | undefined> {
    const sniffer = new TypeSniffer();
    // one chunk-sized buffer per upload, filled and written again and again (no copy per piece)
    const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
    let filled = 0;
    let n = 0;
    let size = 0;
    for await (const piece of stream as AsyncIterable<Buffer>) {
      if (this.#failure !== undefined) return undefined;
      sniffer.feed(piece);
      size += piece.length;
      if (sniffer.refused) throw refusal('UNSUPPORTED_MEDIA_TYPE', NOT_ALLOWED_TYPE);
      for (let offset = 0; offset < piece.length; ) {
        const copied = piece.copy(chunk, filled, offset);
        filled += copied;
        offset += copied;
        if (filled === CHUNK_BYTES) {
          await this.#io.writeChunk(n++, chunk);
          filled = 0;
          if (this.#failure !== undefined) return undefined;
        }
      }
    }
    if (this.#failure !== undefined) return undefined;
    if (filled > 0) await this.#io.writeChunk(n++, chunk.subarray(0, filled));
    return { name, size, chunkCount: n, type: sniffer.result(name) };
  }
}
