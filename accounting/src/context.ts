import { type Action, type Actor, authorize, type SupervisorCheck } from '@platform/shared-types';
import type { Knex } from 'knex';
import type { Config } from './config.ts';
import { accountsDal } from './features/accounts/accounts-dal.ts';
import { ensureKnownAccount, type UserLookup } from './features/accounts/accounts-service.ts';
import type { StoredReplies } from './features/reconcile/chat-replies.ts';

/** What the routers need. */
export interface AccountingContext {
  db: Knex;
  config: Config;
  isSupervisorOf: SupervisorCheck;
  /** auth's view of a user accounting has not heard of yet */
  lookupUser: UserLookup;
  /** chat's stored replies, for reconciliation */
  storedReplies: StoredReplies;
}

/**
 * Authorizes `action` on `ownerId`'s resource through the one authorization table; a supervisor rule is
 * checked with monitoring (forwarding the user's token) only when the decision depends on it. Once allowed, an
 * owner accounting has not heard of yet is looked up in auth and created just in time (never a 404 for a user
 * auth created a moment ago).
 */
export async function authorizeOn(ctx: AccountingContext, userToken: string | undefined, actor: Actor, action: Action, ownerId: string): Promise<void> {
  await authorize(actor, action, { ownerId }, (supervisorId, studentId) => ctx.isSupervisorOf(supervisorId, studentId, userToken));
  if (ownerId !== actor.userId) await ensureKnownAccount(accountsDal(ctx.db), ctx.lookupUser, ownerId);
}
