import { Counter, Gauge, serviceRegistry } from '@platform/shared-types/ops';

/** auth's domain metrics on the process registry (the ops listener serves them); no user ids as labels. */
const registers = [serviceRegistry()];

export const authMetrics = {
  /** outcome: `success` or the lower-cased error code (a closed list) */
  logins: new Counter({ name: 'auth_logins_total', help: 'Sign-in attempts by outcome', labelNames: ['outcome'], registers }),
  /** scope: `address` (one account from one client address) or `account` (every address) */
  lockouts: new Counter({ name: 'auth_lockouts_total', help: 'Locks set after too many failed sign-ins', labelNames: ['scope'], registers }),
  refreshReuse: new Counter({
    name: 'auth_refresh_reuse_detections_total',
    help: 'Retired refresh tokens presented again (the family was revoked)',
    registers,
  }),
  bcryptQueueDepth: new Gauge({ name: 'auth_bcrypt_queue_depth', help: 'bcrypt jobs waiting for a worker thread', registers }),
};
