import { ApiError, type Logger } from '@platform/shared-types';
import { toObjectId } from '../sessions/sessions-dal.ts';
import { safeFileName } from './file-types.ts';
import type { FileDoc, FilesDal } from './files-dal.ts';
import type { UploadGuard } from './upload-guard.ts';
import { NOT_ALLOWED_TYPE, refusal, type UploadBody } from './upload-receiver.ts';

export function fileView(file: FileDoc) {
  return {
    id: file._id.toHexString(),
    name: file.name,
    contentType: file.contentType,
    size: file.size,
    text: file.text,
    createdAt: file.createdAt.toISOString(),
  };
}

function startOfUtcDay(now = new Date()): Date {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
}

export interface FileLimits {
  maxBytes: number;
  uploadsPerDay: number;
  bytesPerDay: number;
  promptMaxChars: number;
  maxFilesPerMessage: number;
  uploadIdleMs: number;
  uploadTimeoutMs: number;
}

/** room for the multipart framing around the file in a declared Content-Length */
const MULTIPART_OVERHEAD = 64 * 1024;

export class FilesService {
  readonly #dal: FilesDal;
  readonly #guard: UploadGuard;
  readonly #options: FileLimits;
  readonly #logger: Logger;

  constructor(dal: FilesDal, guard: UploadGuard, options: FileLimits, logger: Logger) {
    this.#dal = dal;
    this.#guard = guard;
    this.#options = options;
    this.#logger = logger;
  }

  async quota(userId: string) {
    const used = await this.#dal.usageSince(userId, startOfUtcDay());
    const resetsAt = new Date(startOfUtcDay().getTime() + 86_400_000).toISOString();
    const { uploadsPerDay, bytesPerDay } = this.#options;
    return {
      used: used.count,
      limit: uploadsPerDay,
      remaining: Math.max(0, uploadsPerDay - used.count),
      bytesUsed: used.bytes,
      bytesLimit: bytesPerDay,
      bytesRemaining: Math.max(0, bytesPerDay - used.bytes),
      resetsAt,
    };
  }

  /**
   * Every check that needs no body runs before a byte of it is read (type, declared size, refused-attempt rate,
   * daily count and bytes, concurrent uploads); then the body streams into chunk documents. Every refusal counts
   * towards the refused-attempt rate, and nothing of a refused or failed upload stays stored.
   */
  async upload(userId: string, body: UploadBody): Promise<FileDoc> {
    const blocked = await this.#guard.refusedBlockSeconds(userId);
    if (blocked > 0) throw refusal('RATE_LIMITED', 'Too many refused uploads; try again later', { retryAfter: blocked });
    try {
      return await this.#admitAndStore(userId, body);
    } catch (error) {
      // the refusal is answered whatever happens to its count: a lost count only lets one more attempt through
      if (error instanceof ApiError) {
        await this.#guard
          .countRefused(userId)
          .catch((countError: unknown) => this.#logger.warn({ err: countError, userId, refusal: error.code }, 'could not count a refused upload'));
      }
      throw error;
    }
  }

  async #admitAndStore(userId: string, body: UploadBody): Promise<FileDoc> {
    const { maxBytes } = this.#options;
    if (!/^multipart\/form-data/i.test(body.contentType ?? '')) throw refusal('UNSUPPORTED_MEDIA_TYPE', 'Upload files as multipart/form-data');
    const declared = body.declaredBytes ?? Number.NaN;
    if (Number.isFinite(declared) && declared > maxBytes + MULTIPART_OVERHEAD) throw refusal('PAYLOAD_TOO_LARGE', `Files may be at most ${maxBytes} bytes`);
    const quota = await this.quota(userId);
    if (quota.remaining === 0) throw this.#quotaExceeded(quota, `At most ${quota.limit} uploads per day`);
    if (quota.bytesRemaining === 0 || (Number.isFinite(declared) && declared > quota.bytesRemaining + MULTIPART_OVERHEAD)) {
      throw this.#quotaExceeded(quota, `At most ${quota.bytesLimit} bytes of uploads per day; ${quota.bytesRemaining} left today`);
    }
    const slot = await this.#guard.acquire(userId);
    if (!slot) throw refusal('RATE_LIMITED', 'Another upload of yours is still running; wait for it to finish', { retryAfter: 1 });
    try {
      return await this.#store(userId, body, quota);
    } finally {
      // a slot not released expires with the upload timeout; until then it holds one of the user's concurrent uploads
      await this.#guard
        .release(userId, slot)
        .catch((releaseError: unknown) => this.#logger.warn({ err: releaseError, userId, slot }, 'could not release an upload slot; it expires on its own'));
    }
  }

  async #store(userId: string, body: UploadBody, quota: Awaited<ReturnType<FilesService['quota']>>): Promise<FileDoc> {
    const { maxBytes } = this.#options;
    const fileBytes = Math.min(maxBytes, quota.bytesRemaining);
    const fileId = this.#dal.newFileId();
    let file: FileDoc;
    try {
      const received = await body.receive((n, data) => this.#dal.writeChunk(fileId, n, data), {
        fileBytes,
        tooLarge: () =>
          fileBytes < maxBytes
            ? this.#quotaExceeded(quota, `At most ${quota.bytesLimit} bytes of uploads per day; ${quota.bytesRemaining} left today`)
            : refusal('PAYLOAD_TOO_LARGE', `Files may be at most ${maxBytes} bytes`),
        idleMs: this.#options.uploadIdleMs,
        timeoutMs: this.#options.uploadTimeoutMs,
      });
      if (!received.type) throw new ApiError('UNSUPPORTED_MEDIA_TYPE', NOT_ALLOWED_TYPE);
      const { type } = received;
      // uploads that passed the first check together decide here one at a time: count, then insert or refuse
      file = await this.#guard.underQuotaLock(userId, async () => {
        const now = await this.quota(userId);
        if (now.remaining === 0 || received.size > now.bytesRemaining) {
          throw this.#quotaExceeded(now, `At most ${now.limit} uploads and ${now.bytesLimit} bytes per day`);
        }
        return this.#dal.finish(fileId, {
          userId,
          name: safeFileName(received.name),
          contentType: type.contentType,
          text: type.text,
          size: received.size,
          chunkCount: received.chunkCount,
        });
      });
    } catch (error) {
      // chunks of a file never finished are invisible; the sweep of unfinished uploads removes what is left
      await this.#dal
        .discardChunks(fileId)
        .catch((discardError: unknown) =>
          this.#logger.error(
            { err: discardError, userId, fileId: fileId.toString() },
            'could not discard the chunks of a failed upload; the sweep removes them',
          ),
        );
      throw error;
    }
    return file;
  }

  #quotaExceeded(quota: { used: number; limit: number; resetsAt: string }, detail: string): ApiError {
    return refusal('QUOTA_EXCEEDED', detail, {
      extensions: { used: quota.used, limit: quota.limit, resetsAt: quota.resetsAt },
      retryAfter: Math.max(1, Math.ceil((Date.parse(quota.resetsAt) - Date.now()) / 1000)),
    });
  }

  /** Removes what uploads cut by a crash left behind (any upload older than the upload timeout is over). */
  sweepUnfinished(): Promise<number> {
    return this.#dal.sweepUnfinished(new Date(Date.now() - this.#options.uploadTimeoutMs - 60_000));
  }

  /** the owner's file; anyone else's is NOT_FOUND */
  async own(userId: string, id: string): Promise<FileDoc> {
    const _id = toObjectId(id);
    const file = _id ? await this.#dal.find(_id) : null;
    if (!file || file.userId !== userId) throw new ApiError('NOT_FOUND', 'No such file');
    return file;
  }

  list(userId: string, page: number, limit: number) {
    return this.#dal.list(userId, page, limit);
  }

  read(file: FileDoc): Promise<Buffer> {
    return this.#dal.read(file);
  }

  /** Text of attached files for the prompt, each under a header, all within the size cap. */
  async attachmentText(userId: string, fileIds: string[]): Promise<string> {
    const ids = [...new Set(fileIds)];
    if (ids.length > this.#options.maxFilesPerMessage) throw new ApiError('VALIDATION_FAILED', `At most ${this.#options.maxFilesPerMessage} files per message`);
    const files = await Promise.all(ids.map((id) => this.own(userId, id)));
    let budget = this.#options.promptMaxChars;
    let text = '';
    for (const file of files) {
      if (!file.text) throw new ApiError('VALIDATION_FAILED', `${file.name} is not a text file; only text files can be attached`);
      if (budget <= 0) break;
      const content = (await this.read(file)).toString('utf8');
      const part = content.length > budget ? `${content.slice(0, budget)}\n[truncated]` : content;
      budget -= Math.min(content.length, budget);
      text += `\n\n--- attached file: ${file.name} ---\n${part}`;
    }
    return text;
  }
}
