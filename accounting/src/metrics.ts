import { Counter, Histogram, LATENCY_BUCKETS, serviceRegistry } from '@platform/shared-types/ops';

/** accounting's domain metrics on the process registry (the ops listener serves them); no user ids as labels. */
const registers = [serviceRegistry()];

export const accountingMetrics = {
  reservationsOpened: new Counter({ name: 'accounting_reservations_opened_total', help: 'Stream reservations opened', registers }),
  /** status: finalized, aborted */
  reservationsSettled: new Counter({
    name: 'accounting_reservations_settled_total',
    help: 'Stream reservations settled, by status',
    labelNames: ['status'],
    registers,
  }),
  reservationsExpired: new Counter({ name: 'accounting_reservations_expired_total', help: 'Reservations expired by the sweeper', registers }),
  creditsCharged: new Counter({ name: 'accounting_credits_charged_total', help: 'Credits charged for streams (settlements)', registers }),
  shortfalls: new Counter({ name: 'accounting_shortfalls_total', help: 'Settlements that charged less than the cost (balance ran out)', registers }),
  shortfallCredits: new Counter({ name: 'accounting_shortfall_credits_total', help: 'Credits of cost that could not be charged', registers }),
  /** kind: single (one call) or batch (one acc_batch transaction) */
  ledgerCall: new Histogram({
    name: 'accounting_ledger_call_duration_seconds',
    help: 'Time of one ledger round trip (reserve, settle or a batch of them)',
    labelNames: ['kind'],
    buckets: LATENCY_BUCKETS,
    registers,
  }),
  batchSize: new Histogram({
    name: 'accounting_batch_size',
    help: 'Calls of one account sent together as one batch',
    buckets: [1, 2, 4, 8, 16, 32, 64],
    registers,
  }),
};

/** Times `work` into the ledger call histogram. */
export async function timedLedgerCall<T>(kind: 'single' | 'batch', work: () => Promise<T>): Promise<T> {
  const end = accountingMetrics.ledgerCall.startTimer({ kind });
  try {
    return await work();
  } finally {
    end();
  }
}
