import { AsyncLocalStorage } from 'node:async_hooks';
import { type Logger, pino } from 'pino';

export interface RequestContext {
  requestId: string;
}

/** Carries the request id through async work so every log line of a request names it. */
export const requestContext = new AsyncLocalStorage<RequestContext>();

export function currentRequestId(): string | undefined {
  return requestContext.getStore()?.requestId;
}

export const REDACTED_PATHS = [
  'authorization',
  'cookie',
  'password',
  'token',
  'accessToken',
  'refreshToken',
  'secret',
  '*.authorization',
  '*.cookie',
  '*.password',
  '*.currentPassword',
  '*.newPassword',
  '*.token',
  '*.accessToken',
  '*.refreshToken',
  '*.secret',
  'headers.authorization',
  'headers.cookie',
  'headers["set-cookie"]',
  'headers["x-service-token"]',
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-service-token"]',
];

/** What the telemetry preload (telemetry/start.mjs) publishes when tracing is on; absent when it is off. */
export interface TelemetryHooks {
  ids(): { traceId: string; spanId: string } | undefined;
  shutdown(): Promise<void>;
}
const TELEMETRY = Symbol.for('platform.telemetry');

/** The running telemetry, if the preload started it (tracing on), without importing OpenTelemetry. */
export function telemetry(): TelemetryHooks | undefined {
  return (globalThis as Record<symbol, TelemetryHooks | undefined>)[TELEMETRY];
}

/** Level: explicit, else LOG_LEVEL, else silent under NODE_ENV=test (config or process), else info. */
export function createLogger(service: string, options: { level?: string; nodeEnv?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  const nodeEnv = options.nodeEnv ?? process.env.NODE_ENV;
  const level = options.level ?? process.env.LOG_LEVEL ?? (nodeEnv === 'test' ? 'silent' : 'info');
  return pino(
    {
      name: service,
      level,
      base: { service },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      // every line of a request names its request id and, when tracing is on, its trace and span
      mixin() {
        const requestId = currentRequestId();
        const ids = telemetry()?.ids();
        if (!ids) return requestId ? { requestId } : {};
        return requestId ? { requestId, traceId: ids.traceId, spanId: ids.spanId } : { traceId: ids.traceId, spanId: ids.spanId };
      },
    },
    options.destination as pino.DestinationStream | undefined,
  );
}

export type { Logger };

/** every batchedLines writer's flush, for the one exit handler */
const flushOnExit = new Set<() => void>();

/**
 * Lines the caller builds itself (JSON in pino's shape), written to the logger's own destination and joined into
 * one write per event-loop turn (what is pending is written on exit): for one line per request on a hot path (the
 * gateway's access log), where a pino call (bindings, mixin, serialisation) and a write per line cost more than
 * the rest of the request's bookkeeping. Undefined when `level` is off. `prefix` opens each line the way pino
 * would: `{"level":30,"time":...,<bindings>`.
 */
export function batchedLines(logger: Logger, level: 'info' | 'warn' | 'error'): { write(line: string): void; prefix(): string } | undefined {
  if (!logger.isLevelEnabled(level)) return undefined;
  const stream = (logger as unknown as Record<symbol, { write(chunk: string): unknown }>)[pino.symbols.streamSym];
  if (!stream) return undefined;
  const bindings = JSON.stringify(logger.bindings()).slice(1, -1);
  const opening = `{"level":${logger.levels.values[level]},"time":`;
  let pending: string[] = [];
  const flush = () => {
    if (pending.length === 0) return;
    const lines = pending.join('');
    pending = [];
    stream.write(lines);
  };
  if (flushOnExit.size === 0)
    process.once('exit', () => {
      for (const pendingLines of flushOnExit) pendingLines();
    });
  flushOnExit.add(flush);
  return {
    prefix: () => `${opening}${Date.now()}${bindings ? `,${bindings}` : ''}`,
    write(line) {
      if (pending.length === 0) setImmediate(flush);
      pending.push(line);
    },
  };
}
