import type { Actor, PublicUser, UserEvent } from '@platform/shared-types';
import type { Knex } from 'knex';

export interface AccountRow {
  user_id: string;
  username: string;
  email: string;
  role: string;
  disabled: boolean;
  available: string;
  reserved: string;
}

/** Accounts: the identity accounting keeps of each user, and its balance columns. Every function runs on `knex`, or inside `trx` when one is given. */
export function accountsDal(knex: Knex) {
  return {
    /** Creates the account of a verified identity on its first request (no call to auth); existing rows are kept. */
    async ensureAccount(actor: Actor, trx?: Knex.Transaction): Promise<void> {
      const db = trx ?? knex;
      await db('accounts').insert({ user_id: actor.userId, username: actor.username, email: actor.email, role: actor.role }).onConflict('user_id').ignore();
    },

    /** An account from auth's view of a user; an existing one is kept. */
    async insertFromAuth(user: PublicUser, trx?: Knex.Transaction): Promise<void> {
      const db = trx ?? knex;
      await db('accounts')
        .insert({ user_id: user.id, username: user.username, email: user.email, role: user.role, disabled: user.status === 'disabled' })
        .onConflict('user_id')
        .ignore();
    },

    async findAccount(userId: string, trx?: Knex.Transaction): Promise<AccountRow | undefined> {
      const db = trx ?? knex;
      return db<AccountRow>('accounts').where({ user_id: userId }).first();
    },

    /**
     * Applies a user event: the identity it carries becomes the account's, unless a newer event was already
     * applied (at-least-once delivery may replay old entries). Idempotent: a redelivered event writes nothing.
     */
    async applyUserEvent(event: UserEvent, trx?: Knex.Transaction): Promise<void> {
      const db = trx ?? knex;
      const at = new Date(event.occurredAt);
      const row = {
        user_id: event.user.id,
        username: event.user.username,
        email: event.user.email,
        role: event.user.role,
        disabled: event.user.status === 'disabled',
        identity_at: at,
        updated_at: db.fn.now(),
      };
      await db('accounts')
        .insert(row)
        .onConflict('user_id')
        .merge(['username', 'email', 'role', 'disabled', 'identity_at', 'updated_at'])
        .where(function newerOnly() {
          // an event of the same instant is applied only when it changes something: a redelivered one is a no-op
          this.whereNull('accounts.identity_at')
            .orWhere('accounts.identity_at', '<', at)
            .orWhere(function sameInstantChange() {
              this.where('accounts.identity_at', '=', at).whereRaw(
                '(accounts.username, accounts.email, accounts.role, accounts.disabled) IS DISTINCT FROM (excluded.username, excluded.email, excluded.role, excluded.disabled)',
              );
            });
        });
    },
  };
}

export type AccountsDal = ReturnType<typeof accountsDal>;
