import { Counter, collectDefaultMetrics, type Metric, Registry } from 'prom-client';

/**
 * A labelled counter kept in a plain map and turned into Prometheus series only when scraped: prom-client's own
 * `inc(labels)` hashes (sorts and joins) the label object on every call, which on the per-request path cost
 * more than the rest of the bookkeeping together. Label values are positional, in `labelNames` order.
 */
export class FastCounter {
  readonly name: string;
  readonly help: string;
  readonly type = 'counter';
  readonly aggregator = 'sum';
  readonly #labelNames: readonly string[];
  readonly #series = new Map<string, { labels: Record<string, string>; value: number }>();

  constructor(name: string, help: string, labelNames: readonly string[], registry: Registry) {
    this.name = name;
    this.help = help;
    this.#labelNames = labelNames;
    registry.registerMetric(this as unknown as Metric);
  }

  inc(...values: string[]): void {
    const key = values.join('\u0000');
    const series = this.#series.get(key);
    if (series) series.value += 1;
    else this.#series.set(key, { labels: Object.fromEntries(this.#labelNames.map((name, i) => [name, values[i] ?? ''])), value: 1 });
  }

  get() {
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values: [...this.#series.values()].map((s) => ({ labels: s.labels, value: s.value })),
    };
  }

  reset(): void {
    this.#series.clear();
  }
}

/** A histogram with one label, kept like FastCounter: a bucket search and three additions per observation. */
export class FastHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #labelName: string;
  readonly #buckets: readonly number[];
  readonly #series = new Map<string, { counts: number[]; sum: number; count: number }>();

  constructor(name: string, help: string, labelName: string, buckets: readonly number[], registry: Registry) {
    this.name = name;
    this.help = help;
    this.#labelName = labelName;
    this.#buckets = buckets;
    registry.registerMetric(this as unknown as Metric);
  }

  observe(label: string, value: number): void {
    let series = this.#series.get(label);
    if (!series) {
      series = { counts: this.#buckets.map(() => 0), sum: 0, count: 0 };
      this.#series.set(label, series);
    }
    series.sum += value;
    series.count += 1;
    const buckets = this.#buckets;
    for (let i = 0; i < buckets.length; i++) {
      if (value <= (buckets[i] as number)) {
        (series.counts as number[])[i] = (series.counts[i] as number) + 1;
        break;
      }
    }
  }

  get() {
    const values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> = [];
    for (const [label, series] of this.#series) {
      let cumulative = 0;
      this.#buckets.forEach((le, i) => {
        cumulative += series.counts[i] as number;
        values.push({ labels: { le, [this.#labelName]: label }, value: cumulative, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { le: '+Inf', [this.#labelName]: label }, value: series.count, metricName: `${this.name}_bucket` });
      values.push({ labels: { [this.#labelName]: label }, value: series.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { [this.#labelName]: label }, value: series.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.#series.clear();
  }
}

/** Prometheus metrics of one gateway instance (own registry, so several instances in one process never clash). */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'gateway_' });
  return {
    registry,
    /** route, method, status */
    requests: new FastCounter('gateway_requests_total', 'Requests by route, method and status', ['route', 'method', 'status'], registry),
    /** by route, seconds */
    latency: new FastHistogram(
      'gateway_request_duration_seconds',
      'Time to the end of the response, by route',
      'route',
      [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registry,
    ),
    /** rule, decision, source */
    rateLimit: new FastCounter(
      'gateway_rate_limit_decisions_total',
      'Rate-limit decisions by rule, decision and who decided (redis, memory)',
      ['rule', 'decision', 'source'],
      registry,
    ),
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
