import { z } from 'zod';
import type { StepPolicy } from '../engine/exchange.ts';

/** a list, or one comma-separated string (handy with ${VAR} substitution) */
const list = z.union([z.string(), z.array(z.string())]).transform((v) => (Array.isArray(v) ? v : v.split(',')).map((item) => item.trim()).filter(Boolean));

/** Express Gateway's cors policy options (the common subset). `origin: '*'` with credentials echoes the caller's origin. */
export const corsAction = z
  .object({
    origin: list.default(['*']),
    methods: list.default(['GET', 'HEAD', 'PUT', 'PATCH', 'POST', 'DELETE']),
    allowedHeaders: list.default(['authorization', 'content-type', 'x-request-id', 'idempotency-key']),
    exposedHeaders: list.default(['x-request-id', 'ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset', 'retry-after']),
    credentials: z.boolean().default(false),
    maxAge: z.coerce.number().int().min(0).default(600),
  })
  .strict();
export type CorsAction = z.infer<typeof corsAction>;

/** Answers preflights itself (before any token check) and decorates every other response. */
export function corsPolicy(action: CorsAction): StepPolicy {
  const anyOrigin = action.origin.includes('*');
  return {
    kind: 'step',
    run(ex) {
      const origin = ex.req.headers.origin;
      if (typeof origin !== 'string') return;
      const allowed = anyOrigin || action.origin.includes(origin);
      const preflight = ex.method === 'OPTIONS' && typeof ex.req.headers['access-control-request-method'] === 'string';
      if (allowed) {
        ex.responseHeaders['access-control-allow-origin'] = anyOrigin && !action.credentials ? '*' : origin;
        if (action.credentials) ex.responseHeaders['access-control-allow-credentials'] = 'true';
        ex.responseHeaders.vary = 'Origin';
        if (action.exposedHeaders.length > 0) ex.responseHeaders['access-control-expose-headers'] = action.exposedHeaders.join(', ');
      }
      if (!preflight) return;
      const headers: Record<string, string> = { ...ex.responseHeaders };
      if (allowed) {
        headers['access-control-allow-methods'] = action.methods.join(', ');
        headers['access-control-allow-headers'] = action.allowedHeaders.join(', ');
        headers['access-control-max-age'] = String(action.maxAge);
      }
      ex.res.writeHead(204, headers).end();
      ex.answered = true;
    },
  };
}
