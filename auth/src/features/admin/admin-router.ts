import { publicUser } from '@platform/shared-types';
import { ApiRouter } from '@platform/shared-types/express';
import { z } from 'zod';
import { meResponse, newAccountBody, roleSchema, statusSchema, userResponse } from '../users/schemas.ts';
import { toPublicUser, userWithProfile } from '../users/users-dal.ts';
import type { AdminService } from './admin-service.ts';

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

export function adminRouter(admin: AdminService): ApiRouter {
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
      const { users: found, total } = await admin.list(actor, query);
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
    async ({ actor, body }) => ({ user: toPublicUser(await admin.create(actor, body)) }),
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
    async ({ actor, params }) => userWithProfile(await admin.get(actor, params.id)),
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
    async ({ actor, params, body }) => ({ user: toPublicUser(await admin.changeRoleOrStatus(actor, params.id, body)) }),
  );
  return router;
}
