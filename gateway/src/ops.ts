import type { RequestListener } from 'node:http';
import { createOpsHandler as opsHandlerOf } from '@platform/shared-types/ops';
import type { Metrics } from './engine/metrics.ts';

/**
 * The private ops listener (DESIGN 7): Prometheus `/metrics` of this gateway, on its own port (`OPS_PORT`,
 * bound to `OPS_HOST`, 127.0.0.1 unless set), never on the public one. The handler is the one every part uses.
 */
export function createOpsHandler(metrics: Metrics): RequestListener {
  return opsHandlerOf(metrics.registry);
}
