import type { Logger } from '@platform/shared-types';
import type { Knex } from 'knex';
import { creditsDal } from './features/credits/credits-dal.ts';
import { sweepAllocations } from './features/credits/credits-service.ts';
import { forgetIdempotencyKeys } from './features/credits/idempotency.ts';
import { reservationsDal } from './features/reservations/reservations-dal.ts';
import { expireAbandonedReservations } from './features/reservations/reservations-service.ts';

/** One pass: expire open reservations past their TTL, expire due allocations, forget old idempotency keys. */
export async function sweepOnce(db: Knex, options: { idempotencyTtlHours: number }) {
  const reservations = await expireAbandonedReservations(reservationsDal(db));
  const accounts = await sweepAllocations(creditsDal(db));
  const keys = await forgetIdempotencyKeys(db, options.idempotencyTtlHours);
  return { reservations, accounts, keys };
}

/** Runs sweepOnce every intervalMs (never two at once); returns the stopper, which waits for a running pass. */
export function startSweeper(db: Knex, logger: Logger, options: { intervalMs: number; idempotencyTtlHours: number }): () => Promise<void> {
  let running: Promise<void> = Promise.resolve();
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    running = sweepOnce(db, options)
      .then((swept) => {
        if (swept.reservations + swept.accounts > 0) logger.info(swept, 'swept');
      })
      .catch((error: unknown) => logger.error({ err: error }, 'sweep failed'))
      .finally(() => {
        busy = false;
      });
  }, options.intervalMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
