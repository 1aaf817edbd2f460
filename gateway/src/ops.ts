import type { RequestListener } from 'node:http';
import { type OpsProbes, createOpsHandler as opsHandlerOf } from '@platform/shared-types/ops';
import type { Metrics } from './engine/metrics.ts';

/**
 * The private ops listener (DESIGN 7): Prometheus `/metrics` of this gateway and its `/livez` and `/readyz`
 * probes, on its own port (`OPS_PORT`, bound to `OPS_HOST`, 127.0.0.1 unless set), never on the public one. The
 * handler is the one every part uses. (The public `/health` asks every service: a probe there would take every
 * gateway out of rotation when one service is down.)
 */
export function createOpsHandler(metrics: Metrics, probes: OpsProbes): RequestListener {
  return opsHandlerOf(metrics.registry, probes);
}
