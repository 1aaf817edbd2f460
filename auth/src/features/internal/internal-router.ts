import { ApiError, internalUsersQuery, internalUsersResponse, parseIdList } from '@platform/shared-types';
import { ApiRouter, internalRoute } from '@platform/shared-types/express';
import type { AuthContext } from '../../context.ts';
import { toPublicUser } from '../users/users-dal.ts';

/** Service-only routes (service token required; the gateway never routes /internal). */
export function internalRouter(ctx: AuthContext): ApiRouter {
  const router = new ApiRouter();
  router.route(
    {
      method: 'get',
      path: '/internal/users',
      summary: 'Public fields of the given users (unknown ids are left out)',
      ...internalRoute(),
      query: internalUsersQuery,
      response: internalUsersResponse,
    },
    async ({ query }) => {
      let ids: string[];
      try {
        ids = parseIdList(query.ids);
      } catch (error) {
        throw new ApiError('VALIDATION_FAILED', error instanceof Error ? error.message : 'bad id list', {
          errors: [{ path: 'query.ids', message: 'at most 200 ids' }],
        });
      }
      const users = await ctx.users.findMany(ids);
      return internalUsersResponse.parse({ users: users.map(toPublicUser) });
    },
  );
  return router;
}
