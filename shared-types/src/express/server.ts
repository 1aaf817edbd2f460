import type { RequestListener, ServerOptions } from 'node:http';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { z } from 'zod';
import { type Logger, telemetry } from '../logger.ts';
import { serviceRegistry, startOpsListener } from '../ops.ts';

export interface RunningServer {
  server: Server;
  port: number;
  url: string;
  /** stops accepting, ends idle keep-alive sockets, and cuts what is still open after the grace period */
  close(graceMs?: number): Promise<void>;
}

/** Listens (port 0 picks a free port, for tests) and returns the bound address. */
export async function listen(
  handler: RequestListener,
  port: number,
  host = '127.0.0.1',
  options: { requestTimeoutMs?: number; serverOptions?: ServerOptions } = {},
): Promise<RunningServer> {
  // requestTimeout 0 suits a proxy whose request bodies may stream for long; services keep Node's default.
  // serverOptions (the gateway's edge rules) are taken as given, keep-alive timeout included
  const server = createServer(
    { ...(options.requestTimeoutMs === undefined ? {} : { requestTimeout: options.requestTimeoutMs }), ...options.serverOptions },
    handler,
  );
  if (options.serverOptions?.keepAliveTimeout === undefined) server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  return {
    server,
    port: bound,
    url: `http://${host}:${bound}`,
    close(graceMs = 5_000) {
      return new Promise<void>((resolve) => {
        const timer = setTimeout(() => server.closeAllConnections(), graceMs);
        timer.unref();
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections();
      });
    },
  };
}

/** Runs `stop` once on SIGTERM/SIGINT, then exits; a second signal exits at once. */
export function onShutdown(logger: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const handle = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(1);
    stopping = true;
    logger.info({ signal }, 'shutting down');
    // spans still batched are sent before the process exits (tracing on only)
    const flush = () =>
      telemetry()
        ?.shutdown()
        .catch(() => undefined);
    stop()
      .finally(flush)
      .then(
        () => process.exit(0),
        (error: unknown) => {
          logger.error({ err: error }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  process.once('SIGTERM', handle);
  process.once('SIGINT', handle);
}

export interface Stores {
  /** which stores answer, for /ready */
  ready(): Promise<Record<string, boolean>>;
  close(): Promise<void>;
}

export interface StartedService<S extends Stores> {
  url: string;
  port: number;
  /** the private ops listener (GET /metrics), DESIGN 7 */
  opsUrl: string;
  stores: S;
  stop(): Promise<void>;
}

/** How long a stopping service keeps serving with readiness failing, so load balancers stop sending first. */
export const drainDelaySchema = z.coerce.number().int().min(0).max(300_000).default(0);
const READINESS_PATHS = new Set(['/ready', '/readyz']);

/**
 * The life of every service process: connect its stores, build the app (not yet listening), listen,
 * and stop in the reverse order (HTTP first so in-flight requests finish, then stores). Stopping first
 * drains: readiness answers 503 for `drainMs` (default SHUTDOWN_DRAIN_MS, 0) while every other route
 * is still served, then the listener closes.
 */
export async function startService<S extends Stores>(options: {
  logger: Logger;
  port: number;
  host: string;
  /** the private ops listener: `OPS_PORT` / `OPS_HOST` of the part (never the public port) */
  ops: { port: number; host: string };
  connect: () => Promise<S>;
  build: (stores: S) => RequestListener;
  /** background work (consumers, sweepers) started after listening; returns its stopper */
  background?: (stores: S) => (() => Promise<void>) | undefined;
  drainMs?: number;
}): Promise<StartedService<S>> {
  const drainMs = options.drainMs ?? drainDelaySchema.parse(process.env.SHUTDOWN_DRAIN_MS);
  const stores = await options.connect();
  let draining = false;
  let server: RunningServer;
  let ops: RunningServer;
  try {
    const app = options.build(stores);
    const handler: RequestListener = (req, res) => {
      if (draining && READINESS_PATHS.has((req.url ?? '/').split('?')[0] as string)) {
        res.writeHead(503, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
        res.end(JSON.stringify({ status: 'draining' }));
        return;
      }
      app(req, res);
    };
    server = await listen(handler, options.port, options.host);
  } catch (error) {
    await stores.close();
    throw error;
  }
  try {
    ops = await startOpsListener({ registry: serviceRegistry(), port: options.ops.port, host: options.ops.host });
  } catch (error) {
    await server.close(0);
    await stores.close();
    throw error;
  }
  const stopBackground = options.background?.(stores);
  options.logger.info({ url: server.url, opsUrl: ops.url }, 'listening');
  return {
    url: server.url,
    port: server.port,
    opsUrl: ops.url,
    stores,
    async stop() {
      draining = true;
      if (drainMs > 0) {
        options.logger.info({ drainMs }, 'draining: readiness fails, requests still served');
        await delay(drainMs);
      }
      await stopBackground?.();
      await server.close();
      await ops.close(0);
      await stores.close();
    },
  };
}
