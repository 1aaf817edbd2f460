import { ApiError } from '@platform/shared-types';
import busboy from 'busboy';
import type { Request } from 'express';
import { toObjectId } from '../sessions/sessions-dal.ts';
import { detectType, safeFileName } from './file-types.ts';
import type { FileDoc, FilesDal } from './files-dal.ts';

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

/** Reads the one file part of a multipart body into memory, refusing it as soon as it passes the size limit. */
function readUpload(req: Request, maxBytes: number): Promise<{ name: string; data: Buffer }> {
  return new Promise((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({ headers: req.headers, limits: { fileSize: maxBytes, files: 1, fields: 10, parts: 12 } });
    } catch {
      reject(new ApiError('UNSUPPORTED_MEDIA_TYPE', 'Send multipart/form-data with a boundary'));
      return;
    }
    let result: { name: string; data: Buffer } | undefined;
    let failed: ApiError | undefined;
    parser.on('file', (_field, stream, info) => {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('limit', () => {
        failed = new ApiError('PAYLOAD_TOO_LARGE', `Files may be at most ${maxBytes} bytes`);
        stream.resume();
      });
      stream.on('end', () => {
        if (!failed && !result) result = { name: info.filename ?? '', data: Buffer.concat(chunks) };
      });
    });
    parser.on('error', () => reject(new ApiError('VALIDATION_FAILED', 'Malformed multipart body')));
    parser.on('close', () => {
      if (failed) reject(failed);
      else if (!result) reject(new ApiError('VALIDATION_FAILED', 'No file in the upload (send it as a multipart file part)'));
      else resolve(result);
    });
    req.pipe(parser);
  });
}

export interface FileLimits {
  maxBytes: number;
  uploadsPerDay: number;
  promptMaxChars: number;
  maxFilesPerMessage: number;
}

export class FilesService {
  readonly #dal: FilesDal;
  readonly #options: FileLimits;

  constructor(dal: FilesDal, options: FileLimits) {
    this.#dal = dal;
    this.#options = options;
  }

  async quota(userId: string) {
    const used = await this.#dal.countSince(userId, startOfUtcDay());
    const resetsAt = new Date(startOfUtcDay().getTime() + 86_400_000).toISOString();
    return { used, limit: this.#options.uploadsPerDay, remaining: Math.max(0, this.#options.uploadsPerDay - used), resetsAt };
  }

  async upload(userId: string, req: Request): Promise<FileDoc> {
    if (!/^multipart\/form-data/i.test(req.headers['content-type'] ?? '')) throw new ApiError('UNSUPPORTED_MEDIA_TYPE', 'Upload files as multipart/form-data');
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > this.#options.maxBytes + 64 * 1024)
      throw new ApiError('PAYLOAD_TOO_LARGE', `Files may be at most ${this.#options.maxBytes} bytes`);
    const before = await this.quota(userId);
    if (before.remaining === 0) throw this.#quotaExceeded(before);
    const upload = await readUpload(req, this.#options.maxBytes);
    const name = safeFileName(upload.name);
    const type = detectType(upload.data, name);
    if (!type) throw new ApiError('UNSUPPORTED_MEDIA_TYPE', 'Allowed: text (UTF-8), PDF, PNG, JPEG, GIF, WebP; the type is checked by content');
    const file = await this.#dal.store({ userId, name, contentType: type.contentType, text: type.text }, upload.data);
    // concurrent uploads may all have passed the first check: count again and give back what went over
    const after = await this.quota(userId);
    if (after.used > after.limit) {
      await this.#dal.remove(file._id);
      throw this.#quotaExceeded({ ...after, used: after.used - 1 });
    }
    return file;
  }

  #quotaExceeded(quota: { used: number; limit: number; resetsAt: string }): ApiError {
    return new ApiError('QUOTA_EXCEEDED', `At most ${quota.limit} uploads per day`, {
      extensions: { used: quota.used, limit: quota.limit, resetsAt: quota.resetsAt },
      headers: { 'Retry-After': String(Math.max(1, Math.ceil((Date.parse(quota.resetsAt) - Date.now()) / 1000))) },
    });
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
