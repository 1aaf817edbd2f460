import { ApiError, authorize, publicUser } from '@platform/shared-types';
import { ApiRouter } from '@platform/shared-types/express';
import { withLock } from '@platform/shared-types/redis';
import { z } from 'zod';
import type { AuthContext } from '../../context.ts';
import type { AccountsService } from '../accounts/accounts-service.ts';
import type { ApiKeysService } from '../api-keys/api-keys-service.ts';
import type { SessionsService } from '../sessions/sessions-service.ts';
import { meResponse, newAccountBody, roleSchema, statusSchema, userResponse } from '../users/schemas.ts';
import { toProfile, toPublicUser } from '../users/users-dal.ts';

const idParams = z.strictObject({ id: z.string().regex(/^[0-9a-f]{24}$/, 'must be a user id') });
const listQuery = z.strictObject({
  // NUL (which the store's regex engine fails on) is refused for every route by the shared request parser
  search: z.string().trim().min(1).max(100).optional(),
  role: roleSchema.optional(),
  status: statusSchema.optional(),
  page: z.coerce.number().int().min(1).max(10_000).default(1),
  limit: z.coerce.number().int().min(1).max(100).default(20),
});
const patchBody = z
  .strictObject({ role: roleSchema.optional(), status: statusSchema.optional() })
  .refine((body) => body.role !== undefined || body.status !== undefined, 'send role or status');
const createBody = newAccountBody.extend({ role: roleSchema.default('enduser') });

export function adminRouter(ctx: AuthContext, sessions: SessionsService, accounts: AccountsService, apiKeys: ApiKeysService): ApiRouter {
  const { users, events } = ctx;
  const router = new ApiRouter();
  const tags = ['admin'];

  router.route(
    {
      method: 'get',
      path: '/api/admin/users',
      summary: 'List users (search in username, email, display name; role and status filters; paged)',
      access: 'user',
      tags,
      query: listQuery,
      response: z.object({ users: z.array(publicUser), page: z.number(), limit: z.number(), total: z.number() }),
      errors: ['FORBIDDEN'],
    },
    async ({ actor, query }) => {
      await authorize(actor, 'users:list', {});
      const { users: found, total } = await users.list(query);
      return { users: found.map(toPublicUser), page: query.page, limit: query.limit, total };
    },
  );

  router.route(
    {
      method: 'post',
      path: '/api/admin/users',
      summary: 'Create a verified user with a role',
      access: 'user',
      tags,
      body: createBody,
      status: 201,
      response: userResponse,
      errors: ['FORBIDDEN', 'CONFLICT'],
    },
    async ({ actor, body }) => {
      await authorize(actor, 'users:create', {});
      const user = await accounts.createUser({ ...body, emailVerified: true });
      await events.append('user.registered', user);
      return { user: toPublicUser(user) };
    },
  );

  router.route(
    {
      method: 'get',
      path: '/api/admin/users/:id',
      summary: 'One user with profile',
      access: 'user',
      tags,
      params: idParams,
      response: meResponse,
      errors: ['FORBIDDEN', 'NOT_FOUND'],
    },
    async ({ actor, params }) => {
      await authorize(actor, 'users:read', { ownerId: params.id });
      const user = await users.findById(params.id);
      if (!user) throw new ApiError('NOT_FOUND', 'User not found');
      return { user: toPublicUser(user), profile: toProfile(user) };
    },
  );

  router.route(
    {
      method: 'patch',
      path: '/api/admin/users/:id',
      summary: "Change a user's role or status; their tokens are revoked",
      access: 'user',
      tags,
      params: idParams,
      body: patchBody,
      response: userResponse,
      errors: ['FORBIDDEN', 'NOT_FOUND', 'CONFLICT'],
    },
    async ({ actor, params, body }) => {
      await authorize(actor, 'users:update', { ownerId: params.id });
      const target = await users.findById(params.id);
      if (!target) throw new ApiError('NOT_FOUND', 'User not found');
      const roleChanges = body.role !== undefined && body.role !== target.role;
      const statusChanges = body.status !== undefined && body.status !== target.status;
      const losesAdmin =
        target.role === 'admin' && target.status === 'active' && ((roleChanges && body.role !== 'admin') || (statusChanges && body.status === 'disabled'));
      if (!roleChanges && !statusChanges) return { user: toPublicUser(target) };
      const apply = async () => {
        // The last active admin cannot demote or disable itself (nor be removed by a racing change of another admin).
        if (losesAdmin && (await users.countActiveAdmins()) <= 1) {
          throw new ApiError('CONFLICT', 'This is the last active admin: promote another admin first');
        }
        // Conditional on the state we checked, so a concurrent change is not silently overwritten.
        const set = { ...(roleChanges ? { role: body.role } : {}), ...(statusChanges ? { status: body.status } : {}) };
        return users.update(target._id, set, { role: target.role, status: target.status });
      };
      // Changes that remove an active admin are serialised, so two admins demoting themselves at once cannot leave none.
      const user = losesAdmin ? await withLock(ctx.redis, `${ctx.config.REDIS_KEY_PREFIX}admins-lock`, apply) : await apply();
      if (!user) throw new ApiError('CONFLICT', 'The user changed meanwhile; reload and retry');
      if (roleChanges || user.status === 'disabled') await sessions.revokeAllSessions(params.id);
      // API keys follow at once (DESIGN 5b): gone for a disabled user, the new role for everyone else
      await apiKeys.syncUser(user);
      if (roleChanges) await events.append('user.role_changed', user, { previousRole: target.role });
      if (statusChanges) await events.append(user.status === 'disabled' ? 'user.disabled' : 'user.updated', user);
      return { user: toPublicUser(user) };
    },
  );
  return router;
}
