import type { ServerResponse } from 'node:http';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { StepPolicy } from '../engine/exchange.ts';
import { type ServiceRuntime, sendUpstream } from '../engine/services.ts';

/**
 * Terminal policies the gateway answers itself: /health, /api/docs (metrics live on the ops listener, see
 * ops.ts). Both fan out to every service, so anonymous callers get a result at most `cacheMs` old, and
 * concurrent callers share one probe in flight: a burst never multiplies the calls to the services.
 */
export const endpointAction = z
  .object({
    timeoutMs: z.coerce.number().int().min(1).default(2_000),
    /** how long one fan-out answers every caller (0: every call probes, still one in flight at a time) */
    cacheMs: z.coerce.number().int().min(0).max(300_000).default(2_000),
  })
  .strict();
export type EndpointAction = z.infer<typeof endpointAction>;

/** `produce` at most once per `ttlMs`, and never twice at the same time (callers during a probe share it). */
export function sharedResult<T>(ttlMs: number, produce: () => Promise<T>): () => Promise<T> {
  let last: { at: number; value: T } | undefined;
  let inFlight: Promise<T> | undefined;
  return () => {
    if (last && performance.now() - last.at < ttlMs) return Promise.resolve(last.value);
    inFlight ??= produce()
      .then((value) => {
        last = { at: performance.now(), value };
        return value;
      })
      .finally(() => {
        inFlight = undefined;
      });
    return inFlight;
  };
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string>) {
  res.writeHead(status, { ...headers, 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

async function fetchFrom(service: ServiceRuntime, path: string, timeoutMs: number): Promise<{ status: number; body: unknown }> {
  const call = sendUpstream(service, { path, method: 'GET', headers: { accept: 'application/json' }, headersTimeoutMs: timeoutMs });
  // the whole exchange (headers and body) within timeoutMs
  const timer = setTimeout(call.abort, timeoutMs);
  try {
    const response = await call.response;
    const chunks: Buffer[] = [];
    for await (const chunk of response) chunks.push(chunk as Buffer);
    let body: unknown;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      body = undefined;
    }
    return { status: response.statusCode ?? 502, body };
  } finally {
    clearTimeout(timer);
  }
}

/** Every service's /ready, and the gateway's own Redis. 200 only when all are ready. */
export function healthPolicy(action: EndpointAction, deps: { services: () => Map<string, ServiceRuntime>; redis: Redis }): StepPolicy {
  const probeServices = sharedResult(action.cacheMs, async () => {
    const entries = await Promise.all(
      [...deps.services().values()].map(async (service) => {
        try {
          const { status } = await fetchFrom(service, service.config.readyPath, action.timeoutMs);
          return [service.name, status === 200 ? 'ready' : 'unavailable'] as const;
        } catch {
          return [service.name, 'unreachable'] as const;
        }
      }),
    );
    return Object.fromEntries(entries) as Record<string, string>;
  });
  return {
    kind: 'step',
    async run(ex) {
      const parts: Record<string, string> = {
        gateway: 'ready',
        redis: deps.redis.status === 'ready' ? 'ready' : 'unavailable', // local state: always current
        ...(await probeServices()),
      };
      const ok = Object.values(parts).every((state) => state === 'ready');
      sendJson(ex.res, ok ? 200 : 503, { status: ok ? 'ok' : 'degraded', parts }, ex.responseHeaders);
      ex.answered = true;
    },
  };
}

interface OpenApiDoc {
  openapi?: string;
  paths?: Record<string, Record<string, unknown>>;
  components?: Record<string, Record<string, unknown>>;
  tags?: Array<{ name: string }>;
}

const GATEWAY_PATHS: Record<string, unknown> = {
  '/health': {
    get: {
      summary: 'Readiness of the gateway, its Redis and every service',
      tags: ['gateway'],
      responses: { 200: { description: 'all ready' }, 503: { description: 'some part is not ready' } },
    },
  },
  '/api/docs': {
    get: { summary: 'This document: every service OpenAPI document merged', tags: ['gateway'], responses: { 200: { description: 'OpenAPI 3.1' } } },
  },
};

/** Merges the services' OpenAPI documents. Unreachable services are skipped and named in the document. */
export function mergeOpenApi(docs: Array<{ service: string; doc?: OpenApiDoc }>): Record<string, unknown> {
  const paths: Record<string, unknown> = { ...GATEWAY_PATHS };
  const components: Record<string, Record<string, unknown>> = {};
  const tags = [{ name: 'gateway' }];
  const missing: string[] = [];
  for (const { service, doc } of docs) {
    if (!doc?.paths) {
      missing.push(service);
      continue;
    }
    tags.push({ name: service });
    for (const [path, operations] of Object.entries(doc.paths)) {
      // /internal is never routed, so it is never documented here
      if (path === '/internal' || path.startsWith('/internal/') || paths[path]) continue;
      const tagged: Record<string, unknown> = {};
      for (const [method, operation] of Object.entries(operations)) {
        tagged[method] = operation && typeof operation === 'object' ? { tags: [service], ...(operation as object) } : operation;
      }
      paths[path] = tagged;
    }
    for (const [section, entries] of Object.entries(doc.components ?? {})) {
      const target = components[section] ?? {};
      for (const [name, value] of Object.entries(entries)) if (!(name in target)) target[name] = value;
      components[section] = target;
    }
  }
  const description =
    missing.length === 0
      ? 'Every public route of the platform, through the gateway.'
      : `Every public route of the platform, through the gateway. Not included (unreachable when this document was built): ${missing.join(', ')}.`;
  return {
    openapi: '3.1.0',
    info: { title: 'Platform API', version: '1.0.0', description },
    servers: [{ url: '/' }],
    tags,
    paths,
    components,
    'x-unavailable-services': missing,
  };
}

export function docsPolicy(action: EndpointAction, deps: { services: () => Map<string, ServiceRuntime> }): StepPolicy {
  const mergedDocs = sharedResult(action.cacheMs, async () => {
    const docs = await Promise.all(
      [...deps.services().values()].map(async (service) => {
        try {
          const { status, body } = await fetchFrom(service, service.config.openapiPath, action.timeoutMs);
          return { service: service.name, doc: status === 200 ? (body as OpenApiDoc) : undefined };
        } catch {
          return { service: service.name, doc: undefined };
        }
      }),
    );
    return JSON.stringify(mergeOpenApi(docs)); // serialized once per probe, not per caller
  });
  return {
    kind: 'step',
    async run(ex) {
      const text = await mergedDocs();
      ex.res.writeHead(200, { ...ex.responseHeaders, 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
      ex.res.end(text);
      ex.answered = true;
    },
  };
}
