import { Counter, Gauge, Histogram, serviceRegistry } from '@platform/shared-types/ops';

/**
 * chat's domain metrics on the process registry (the ops listener serves them). Labels are the configured
 * model id and provider name (closed lists from the catalog), never user or session ids.
 */
const registers = [serviceRegistry()];

export const chatMetrics = {
  streamsOpen: new Gauge({ name: 'chat_streams_open', help: 'Chat streams running now', labelNames: ['model', 'provider'], registers }),
  streams: new Counter({ name: 'chat_streams_total', help: 'Chat streams ended, by outcome', labelNames: ['model', 'provider', 'outcome'], registers }),
  timeToFirstToken: new Histogram({
    name: 'chat_time_to_first_token_seconds',
    help: 'From the stream opening to the first text from the provider',
    labelNames: ['model', 'provider'],
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
    registers,
  }),
  tokens: new Counter({
    name: 'chat_tokens_total',
    help: 'Tokens of streams, by direction (input, output), model and provider',
    labelNames: ['direction', 'model', 'provider'],
    registers,
  }),
  speculativeStarts: new Counter({
    name: 'chat_speculative_starts_total',
    help: 'Provider calls started alongside their reservation, by how the reservation answered (confirmed, refused: the call was cut and nothing shown or charged)',
    labelNames: ['model', 'provider', 'outcome'],
    registers,
  }),
  providerErrors: new Counter({ name: 'chat_provider_errors_total', help: 'Provider streams that failed', labelNames: ['model', 'provider'], registers }),
};

type OutboxStats = { depth: number; oldestAgeSeconds: number };
let outboxSource: { stats(): Promise<OutboxStats> } | undefined;
let reading: Promise<OutboxStats> | undefined;
/** one MongoDB read serves both outbox gauges of one scrape; no outbox (or no answer): NaN */
const readOutbox = (): Promise<OutboxStats> => {
  const source = outboxSource;
  if (!source) return Promise.resolve({ depth: Number.NaN, oldestAgeSeconds: Number.NaN });
  reading ??= source
    .stats()
    .catch(() => ({ depth: Number.NaN, oldestAgeSeconds: Number.NaN }))
    .finally(() => {
      reading = undefined;
    });
  return reading;
};

new Gauge({
  name: 'chat_charge_outbox_depth',
  help: "Charges waiting in the outbox for accounting (running streams' checkpoints excluded)",
  registers,
  async collect() {
    this.set((await readOutbox()).depth);
  },
});
new Gauge({
  name: 'chat_charge_outbox_oldest_age_seconds',
  help: 'Age of the oldest charge waiting in the outbox (0 when empty)',
  registers,
  async collect() {
    this.set((await readOutbox()).oldestAgeSeconds);
  },
});

/** The outbox the gauges read at scrape time (the process's chat runtime; the outbox is shared by all instances). */
export function watchOutbox(outbox: { stats(): Promise<OutboxStats> }): void {
  outboxSource = outbox;
}
