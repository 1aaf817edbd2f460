import type { Readable } from 'node:stream';
import { ApiError } from '@platform/shared-types';
import busboy from 'busboy';
import type { Request } from 'express';
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

/**
 * Streams the one file part of a multipart body to `writeChunk` in CHUNK_BYTES pieces, holding one chunk
 * buffer per upload (reused: `writeChunk` must be done with the bytes when its promise settles). Settles only
 * after the last write has ended, so a caller that discards on failure removes everything (no write lands
 * after the discard).
 */
export function receiveUpload(req: Request, writeChunk: (n: number, data: Buffer) => Promise<void>, limits: ReceiveLimits): Promise<Received> {
  let parser: busboy.Busboy;
  try {
    parser = busboy({ headers: req.headers, limits: { fileSize: limits.fileBytes, files: 1, fields: 10, parts: 12 } });
  } catch {
    return Promise.reject(refusal('UNSUPPORTED_MEDIA_TYPE', 'Send multipart/form-data with a boundary'));
  }
  return new Promise((resolve, reject) => {
    let failure: unknown;
    let fileStream: Readable | undefined;
    let fileTask: Promise<Received | undefined> | undefined;
    let idle: NodeJS.Timeout | undefined;
    const deadline = setTimeout(() => fail(refusal('VALIDATION_FAILED', `The upload must arrive within ${limits.timeoutMs} ms`)), limits.timeoutMs);
    const touch = () => {
      clearTimeout(idle);
      idle = setTimeout(() => fail(refusal('VALIDATION_FAILED', `The upload stalled for ${limits.idleMs} ms`)), limits.idleMs);
    };
    const stopTimers = () => {
      clearTimeout(deadline);
      clearTimeout(idle);
    };

    function fail(error: unknown): void {
      if (failure !== undefined) return;
      failure = error;
      stopTimers();
      req.unpipe(parser);
      req.off('data', touch);
      fileStream?.destroy();
      // answer only once no chunk write is in flight any more
      void Promise.resolve(fileTask).then(() => reject(failure));
    }

    async function consume(stream: Readable, name: string): Promise<Received | undefined> {
      const sniffer = new TypeSniffer();
      // one chunk-sized buffer per upload, filled and written again and again (no copy per piece)
      const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
      let filled = 0;
      let n = 0;
      let size = 0;
      for await (const piece of stream as AsyncIterable<Buffer>) {
        if (failure !== undefined) return undefined;
        sniffer.feed(piece);
        size += piece.length;
        if (sniffer.refused) throw refusal('UNSUPPORTED_MEDIA_TYPE', NOT_ALLOWED_TYPE);
        for (let offset = 0; offset < piece.length; ) {
          const copied = piece.copy(chunk, filled, offset);
          filled += copied;
          offset += copied;
          if (filled === CHUNK_BYTES) {
            await writeChunk(n++, chunk);
            filled = 0;
            if (failure !== undefined) return undefined;
          }
        }
      }
      if (failure !== undefined) return undefined;
      if (filled > 0) await writeChunk(n++, chunk.subarray(0, filled));
      return { name, size, chunkCount: n, type: sniffer.result(name) };
    }

    parser.on('file', (_field, stream, info) => {
      fileStream = stream;
      stream.on('limit', () => fail(limits.tooLarge()));
      fileTask = consume(stream, info.filename ?? '').catch((error: unknown) => {
        fail(error);
        return undefined;
      });
    });
    parser.on('error', () => fail(refusal('VALIDATION_FAILED', 'Malformed multipart body')));
    parser.on('close', () => {
      void Promise.resolve(fileTask).then((received) => {
        if (failure !== undefined) return;
        stopTimers();
        if (received) resolve(received);
        else fail(refusal('VALIDATION_FAILED', 'No file in the upload (send it as a multipart file part)'));
      });
    });
    // a client that goes away mid-body: nothing it sent is kept
    req.on('close', () => {
      if (!req.complete) fail(refusal('VALIDATION_FAILED', 'The upload was cut off'));
    });
    req.on('data', touch);
    touch();
    req.pipe(parser);
  });
}
