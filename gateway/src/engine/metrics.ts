import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';

/** Prometheus metrics of one gateway instance (own registry, so several instances in one process never clash). */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'gateway_' });
  return {
    registry,
    requests: new Counter({
      name: 'gateway_requests_total',
      help: 'Requests by route, method and status',
      labelNames: ['route', 'method', 'status'],
      registers: [registry],
    }),
    latency: new Histogram({
      name: 'gateway_request_duration_seconds',
      help: 'Time to the end of the response, by route',
      labelNames: ['route'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    rateLimit: new Counter({
      name: 'gateway_rate_limit_decisions_total',
      help: 'Rate-limit decisions by rule, decision and who decided (redis, memory)',
      labelNames: ['rule', 'decision', 'source'],
      registers: [registry],
    }),
    upstreamErrors: new Counter({
      name: 'gateway_upstream_errors_total',
      help: 'Upstream failures by service, instance (host:port) and kind',
      labelNames: ['service', 'kind', 'instance'],
      registers: [registry],
    }),
    revocationRefusals: new Counter({
      name: 'gateway_revocation_refusals_total',
      help: 'Requests refused by the revocation check: revoked tokens, or no answer about them',
      labelNames: ['reason'],
      registers: [registry],
    }),
    redisFallbacks: new Counter({ name: 'gateway_redis_fallbacks_total', help: 'Decisions taken without Redis', registers: [registry] }),
    configReloads: new Counter({ name: 'gateway_config_reloads_total', help: 'Config reloads by result', labelNames: ['result'], registers: [registry] }),
  };
}
export type Metrics = ReturnType<typeof createMetrics>;
