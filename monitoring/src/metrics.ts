import { Counter, Gauge, serviceRegistry } from '@platform/shared-types/ops';

/** monitoring's domain metrics on the process registry (the ops listener serves them); no user ids as labels. */
const registers = [serviceRegistry()];

export const monitoringMetrics = {
  observersOpen: new Gauge({ name: 'monitoring_observers_open', help: 'Observe relays open now (supervisors watching a stream)', registers }),
  /** kind: connect (chat unreachable), refused (chat answered with an error), broken (the stream broke off) */
  relayErrors: new Counter({ name: 'monitoring_relay_errors_total', help: 'Observe relay failures by kind', labelNames: ['kind'], registers }),
};
