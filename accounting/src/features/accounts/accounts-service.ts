import { ApiError, internalUsersResponse, type PublicUser, type ServiceClient } from '@platform/shared-types';
import type { AccountsDal } from './accounts-dal.ts';

/** Auth's view of a user, or undefined when auth does not know the id. */
export type UserLookup = (userId: string) => Promise<PublicUser | undefined>;

/** Asks auth (GET /internal/users, service token per DESIGN 4) for one user. UPSTREAM_UNAVAILABLE when auth is down. */
export function authUserLookup(client: ServiceClient): UserLookup {
  return async (userId) => {
    try {
      const { body } = await client.call('auth', '/internal/users', { query: { ids: userId } });
      const parsed = internalUsersResponse.safeParse(body);
      if (!parsed.success) throw new ApiError('UPSTREAM_UNAVAILABLE', 'auth answered an unexpected user list', { status: 502 });
      return parsed.data.users.find((user) => user.id === userId);
    } catch (error) {
      // an id auth refuses to look up (malformed) is simply not a user
      if (error instanceof ApiError && error.code === 'VALIDATION_FAILED') return undefined;
      throw error;
    }
  };
}

/**
 * Makes sure accounting knows `userId` before an admin or supervisor acts on it: accounting otherwise learns of
 * new users from events:users, a moment after auth created them. An id unknown here is looked up in auth and its
 * account created just in time; one auth does not know either stays unknown (the route answers 404). The
 * account's identity_at stays empty, so the user's events still apply when they arrive.
 */
export async function ensureKnownAccount(accounts: Pick<AccountsDal, 'findAccount' | 'insertFromAuth'>, lookup: UserLookup, userId: string): Promise<void> {
  if (await accounts.findAccount(userId)) return;
  const user = await lookup(userId);
  if (user) await accounts.insertFromAuth(user);
}
