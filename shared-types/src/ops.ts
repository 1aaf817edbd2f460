import { randomUUID } from 'node:crypto';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry as PromRegistry, type Registry } from 'prom-client';
import { PROBLEM_CONTENT_TYPE, problem } from './errors.ts';
import { listen, type RunningServer } from './express/server.ts';

export { Counter, Gauge, Histogram, PromRegistry as Registry };

/** Latency buckets (seconds) shared by every request histogram: 1 ms to 30 s. */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

let processRegistry: Registry | undefined;

/**
 * The one registry of a service process (auth, accounting, chat, monitoring): the domain metrics modules and
 * the HTTP middleware register on it, the ops listener serves it. Process metrics (CPU, memory, event loop)
 * come with it. The gateway keeps a registry per instance (several run in one test process).
 */
export function serviceRegistry(): Registry {
  if (!processRegistry) {
    processRegistry = new PromRegistry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

let httpMetrics: { requests: Counter<'route' | 'method' | 'status'>; duration: Histogram<'route' | 'method'> } | undefined;

/** `http_requests_total` and `http_request_duration_seconds` of this service process, by route pattern (never raw paths). */
export function serviceHttpMetrics() {
  if (!httpMetrics) {
    const registers = [serviceRegistry()];
    httpMetrics = {
      requests: new Counter({
        name: 'http_requests_total',
        help: 'Requests by route pattern, method and status',
        labelNames: ['route', 'method', 'status'],
        registers,
      }),
      duration: new Histogram({
        name: 'http_request_duration_seconds',
        help: 'Time to the end of the response, by route pattern and method',
        labelNames: ['route', 'method'],
        buckets: LATENCY_BUCKETS,
        registers,
      }),
    };
  }
  return httpMetrics;
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
/** bounded label values: an unusual method is `other`, never the client's spelling */
export function methodLabel(method: string | undefined): string {
  return method && METHODS.has(method) ? method : 'other';
}

/** Probes a part serves on its ops listener (the gateway: its public port has no store-free route of its own). */
export interface OpsProbes {
  /** false while the part drains before a shutdown: `/readyz` answers 503 so it is taken out of rotation */
  ready(): boolean;
}

const PROBE_PATHS = new Set(['/livez', '/readyz']);

/**
 * The private ops listener's handler: `GET /metrics` of `registry` (and `/livez`, `/readyz` when given probes),
 * 404 problem for anything else. Ops run it on its own port (`OPS_PORT`, bound to `OPS_HOST`, 127.0.0.1 unless
 * set), never the public one (DESIGN 7).
 */
export function createOpsHandler(registry: Registry, probes?: OpsProbes): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0] as string;
    const readable = req.method === 'GET' || req.method === 'HEAD';
    if (probes && readable && PROBE_PATHS.has(path)) {
      // liveness: the process answers (whatever its stores do); readiness: it is not draining
      const up = path === '/livez' || probes.ready();
      res.writeHead(up ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : JSON.stringify({ status: up ? 'ok' : 'draining' }));
      return;
    }
    if (path !== '/metrics' || !readable) {
      res.writeHead(404, { 'content-type': PROBLEM_CONTENT_TYPE, 'cache-control': 'no-store' });
      res.end(JSON.stringify(problem('NOT_FOUND', 'The ops listener serves GET /metrics (and its probes) only', randomUUID())));
      return;
    }
    registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      () => {
        res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable');
      },
    );
  };
}

/** Listens with the ops handler (port 0 picks a free port, for tests). */
export function startOpsListener(options: { registry: Registry; port: number; host?: string }): Promise<RunningServer> {
  return listen(createOpsHandler(options.registry), options.port, options.host ?? '127.0.0.1');
}

/** Each part's ops port when `OPS_PORT` is not set (the gateway's, 9464, is in its own config). */
export const DEFAULT_OPS_PORTS = { auth: 9465, accounting: 9466, chat: 9467, monitoring: 9468 } as const;

/**
 * Where a service's ops listener binds: `OPS_PORT` / `OPS_HOST` as configured, else its default port on
 * 127.0.0.1; under NODE_ENV=test a free port (0), so test processes running many services never clash.
 */
export function opsAddress(
  config: { OPS_PORT?: number; OPS_HOST?: string; NODE_ENV?: string },
  service: keyof typeof DEFAULT_OPS_PORTS,
): { port: number; host: string } {
  const port = config.OPS_PORT ?? (config.NODE_ENV === 'test' ? 0 : DEFAULT_OPS_PORTS[service]);
  return { port, host: config.OPS_HOST ?? '127.0.0.1' };
}
