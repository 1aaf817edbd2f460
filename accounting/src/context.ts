import { type Action, type Actor, authorize, bearerToken } from '@platform/shared-types';
import type { Request } from 'express';
import type { Knex } from 'knex';
import type { Config } from './config.ts';
import type { SupervisorCheck } from './relationships.ts';

/** What the routers need. */
export interface AccountingContext {
  db: Knex;
  config: Config;
  isSupervisorOf: SupervisorCheck;
}

/**
 * Authorizes `action` on `ownerId`'s resource through the one authorization table; a supervisor rule is
 * checked with monitoring (forwarding the user's token) only when the decision depends on it.
 */
export async function authorizeOn(ctx: AccountingContext, req: Request, actor: Actor, action: Action, ownerId: string): Promise<void> {
  await authorize(actor, action, { ownerId }, (supervisorId, studentId) =>
    ctx.isSupervisorOf(supervisorId, studentId, req.userToken ?? bearerToken(req.headers.authorization)),
  );
}
