import { type Actor, ApiError, authorize, type Role } from '@platform/shared-types';
import { withLock } from '@platform/shared-types/redis';
import type { Redis } from 'ioredis';
import type { UserDoc, UserStatus } from '../../documents.ts';
import type { UserEvents } from '../../lib/user-events.ts';
import type { AccountsService, NewAccount } from '../accounts/accounts-service.ts';
import type { ApiKeysService } from '../api-keys/api-keys-service.ts';
import type { SessionsService } from '../sessions/sessions-service.ts';
import type { UsersDal } from '../users/users-dal.ts';

export interface AdminDeps {
  users: UsersDal;
  events: UserEvents;
  redis: Redis;
  /** where the lock that serialises changes removing an active admin lives */
  adminsLockKey: string;
  accounts: Pick<AccountsService, 'createUser'>;
  sessions: Pick<SessionsService, 'revokeAllSessions'>;
  apiKeys: Pick<ApiKeysService, 'syncUser'>;
}

/** Admin work on other users: list, create, read, and role or status changes with their consequences. */
export function adminService(deps: AdminDeps) {
  const { users, events } = deps;

  async function found(id: string): Promise<UserDoc> {
    const user = await users.findById(id);
    if (!user) throw new ApiError('NOT_FOUND', 'User not found');
    return user;
  }

  /** Applies the change; the last active admin cannot demote or disable itself (nor be removed by a racing change). */
  async function apply(target: UserDoc, change: { role?: Role; status?: UserStatus }, losesAdmin: boolean): Promise<UserDoc | null> {
    if (losesAdmin && (await users.countActiveAdmins()) <= 1) {
      throw new ApiError('CONFLICT', 'This is the last active admin: promote another admin first');
    }
    // conditional on the state we checked, so a concurrent change is not silently overwritten
    return users.update(target._id, change, { role: target.role, status: target.status });
  }

  return {
    async list(actor: Actor, filter: Parameters<UsersDal['list']>[0]) {
      await authorize(actor, 'users:list', {});
      return users.list(filter);
    },

    async create(actor: Actor, input: NewAccount & { role: Role }): Promise<UserDoc> {
      await authorize(actor, 'users:create', {});
      const user = await deps.accounts.createUser({ ...input, emailVerified: true });
      await events.append('user.registered', user);
      return user;
    },

    async get(actor: Actor, id: string): Promise<UserDoc> {
      await authorize(actor, 'users:read', { ownerId: id });
      return found(id);
    },

    /**
     * Changes a user's role or status. Their sessions are revoked on a role change or a disable, their API keys follow
     * at once (DESIGN 5b), and the events say what changed (DESIGN 9).
     */
    async changeRoleOrStatus(actor: Actor, id: string, requested: { role?: Role; status?: UserStatus }): Promise<UserDoc> {
      await authorize(actor, 'users:update', { ownerId: id });
      const target = await found(id);
      const roleChanges = requested.role !== undefined && requested.role !== target.role;
      const statusChanges = requested.status !== undefined && requested.status !== target.status;
      if (!roleChanges && !statusChanges) return target;
      const change = { ...(roleChanges ? { role: requested.role } : {}), ...(statusChanges ? { status: requested.status } : {}) };
      const losesAdmin =
        target.role === 'admin' &&
        target.status === 'active' &&
        ((roleChanges && requested.role !== 'admin') || (statusChanges && requested.status === 'disabled'));
      // changes that remove an active admin are serialised, so two admins demoting themselves at once cannot leave none
      const user = losesAdmin ? await withLock(deps.redis, deps.adminsLockKey, () => apply(target, change, true)) : await apply(target, change, false);
      if (!user) throw new ApiError('CONFLICT', 'The user changed meanwhile; reload and retry');
      if (roleChanges || user.status === 'disabled') await deps.sessions.revokeAllSessions(id);
      await deps.apiKeys.syncUser(user);
      if (roleChanges) await events.append('user.role_changed', user, { previousRole: target.role });
      if (statusChanges) await events.append(user.status === 'disabled' ? 'user.disabled' : 'user.updated', user);
      return user;
    },
  };
}

export type AdminService = ReturnType<typeof adminService>;
