import { ApiRouter } from '@platform/shared-types/express';
import { z } from 'zod';
import { type FilesService, fileView } from './files-service.ts';
import { multipartUpload } from './upload-receiver.ts';

const fileSchema = z.object({ id: z.string(), name: z.string(), contentType: z.string(), size: z.number(), text: z.boolean(), createdAt: z.string() });
const quotaSchema = z.object({
  used: z.number(),
  limit: z.number(),
  remaining: z.number(),
  bytesUsed: z.number(),
  bytesLimit: z.number(),
  bytesRemaining: z.number(),
  resetsAt: z.string(),
});

export function filesRouter(deps: { files: FilesService }): ApiRouter {
  const { files } = deps;
  const tags = ['files'];
  return new ApiRouter()
    .route(
      {
        method: 'post',
        path: '/api/chat/files',
        summary: 'Upload one file (multipart/form-data; text, PDF, PNG, JPEG, GIF, WebP by content; 10 MB; daily count and byte quota; 2 at once)',
        access: 'user',
        tags,
        status: 201,
        response: z.object({ file: fileSchema }),
        errors: ['PAYLOAD_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE', 'QUOTA_EXCEEDED', 'RATE_LIMITED'],
      },
      async ({ actor, req }) => ({ file: fileView(await files.upload(actor.userId, multipartUpload(req))) }),
    )
    .route(
      { method: 'get', path: '/api/chat/files/quota', summary: "Today's uploads and bytes, and the daily limits", access: 'user', tags, response: quotaSchema },
      ({ actor }) => files.quota(actor.userId),
    )
    .route(
      {
        method: 'get',
        path: '/api/chat/files',
        summary: 'Own files, newest first',
        access: 'user',
        tags,
        query: z.object({ page: z.coerce.number().int().min(1).max(100_000).default(1), limit: z.coerce.number().int().min(1).max(100).default(20) }).strict(),
        response: z.object({ files: z.array(fileSchema), page: z.number(), limit: z.number(), total: z.number() }),
      },
      async ({ actor, query }) => {
        const { items, total } = await files.list(actor.userId, query.page, query.limit);
        return { files: items.map(fileView), page: query.page, limit: query.limit, total };
      },
    )
    .route(
      {
        method: 'get',
        path: '/api/chat/files/:id',
        summary: 'Download an own file',
        access: 'user',
        tags,
        params: z.object({ id: z.string().min(1).max(64) }).strict(),
        produces: 'application/octet-stream',
        errors: ['NOT_FOUND'],
      },
      async ({ actor, params, res }) => {
        const file = await files.own(actor.userId, params.id);
        const data = await files.read(file);
        res.status(200);
        res.setHeader('Content-Type', file.text ? `${file.contentType}; charset=utf-8` : file.contentType);
        res.setHeader('Content-Length', String(data.length));
        res.setHeader(
          'Content-Disposition',
          `attachment; filename="${file.name.replace(/[^\x20-\x7e]/g, '_')}"; filename*=UTF-8''${encodeURIComponent(file.name)}`,
        );
        res.setHeader('X-Content-Type-Options', 'nosniff');
        res.setHeader('Content-Security-Policy', "default-src 'none'; sandbox");
        res.end(data);
      },
    );
}
