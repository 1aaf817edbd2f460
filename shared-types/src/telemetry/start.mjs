// Starts OpenTelemetry tracing for this process (only when preload.mjs found OTEL_EXPORTER_OTLP_ENDPOINT).
// Spans go over OTLP/HTTP (JSON) to $OTEL_EXPORTER_OTLP_ENDPOINT/v1/traces; W3C traceparent is read on every
// inbound request and written on every outbound one (node:http, undici), so one trace follows a request from
// the gateway through the services to the stores and LLM providers.
import { readFileSync } from 'node:fs';
import { register } from 'node:module';
import { join } from 'node:path';

const TELEMETRY = Symbol.for('platform.telemetry');

/** The part's name: OTEL_SERVICE_NAME, else its package name without the scope (`@platform/chat` -> chat). */
function serviceName() {
  if (process.env.OTEL_SERVICE_NAME) return process.env.OTEL_SERVICE_NAME;
  try {
    const manifest = JSON.parse(readFileSync(join(process.cwd(), 'package.json'), 'utf8'));
    return String(manifest.name ?? 'platform').replace(/^@[^/]+\//, '');
  } catch {
    return 'platform';
  }
}

export async function startTelemetry() {
  // ESM modules (our .ts files import express, ioredis...) are hooked through import-in-the-middle;
  // CommonJS requires (knex -> pg, mongoose -> mongodb) through require-in-the-middle
  register('@opentelemetry/instrumentation/hook.mjs', import.meta.url);
  const [{ NodeSDK }, { OTLPTraceExporter }, api, http, undici, express, ioredis, pg, mongodb] = await Promise.all([
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/api'),
    import('@opentelemetry/instrumentation-http'),
    import('@opentelemetry/instrumentation-undici'),
    import('@opentelemetry/instrumentation-express'),
    import('@opentelemetry/instrumentation-ioredis'),
    import('@opentelemetry/instrumentation-pg'),
    import('@opentelemetry/instrumentation-mongodb'),
  ]);
  const sdk = new NodeSDK({
    serviceName: serviceName(),
    autoDetectResources: false,
    // batched (OTEL_BSP_* tune it), JSON over HTTP; metrics stay on Prometheus, logs on pino (stdout)
    traceExporter: new OTLPTraceExporter(),
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: [
      new http.HttpInstrumentation({
        // the ops listener's scrapes are not traffic worth a trace
        ignoreIncomingRequestHook: (req) => (req.url ?? '').startsWith('/metrics'),
      }),
      new undici.UndiciInstrumentation(),
      // request handler spans only: a span per middleware and router layer would drown the trace
      new express.ExpressInstrumentation({ ignoreLayersType: ['middleware', 'router'] }),
      new ioredis.IORedisInstrumentation({ requireParentSpan: true }),
      new pg.PgInstrumentation({ requireParentSpan: true }),
      new mongodb.MongoDBInstrumentation({ requireParentSpan: true }),
    ],
  });
  sdk.start();
  // read by the logger (trace id in every log line) and onShutdown (flush before exit) without importing OTel
  globalThis[TELEMETRY] = {
    ids() {
      const span = api.trace.getActiveSpan();
      if (!span) return undefined;
      const { traceId, spanId } = span.spanContext();
      return { traceId, spanId };
    },
    shutdown: () => sdk.shutdown(),
  };
}
