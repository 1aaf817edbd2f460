import { internalUsersQuery, internalUsersResponse } from '@platform/shared-types';
import { ApiRouter, internalRoute } from '@platform/shared-types/express';
import type { UsersService } from '../users/users-service.ts';

/** Service-only routes (service token required; the gateway never routes /internal). */
export function internalRouter(users: UsersService): ApiRouter {
  return new ApiRouter().route(
    {
      method: 'get',
      path: '/internal/users',
      summary: 'Public fields of the given users (unknown ids are left out)',
      ...internalRoute(),
      query: internalUsersQuery,
      response: internalUsersResponse,
    },
    async ({ query }) => internalUsersResponse.parse({ users: await users.publicUsers(query.ids) }),
  );
}
