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
