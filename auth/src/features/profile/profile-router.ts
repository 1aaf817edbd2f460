import { ApiRouter } from '@platform/shared-types/express';
import { meResponse, profilePatchBody } from '../users/schemas.ts';
import { userWithProfile } from '../users/users-dal.ts';
import type { ProfileService } from './profile-service.ts';

export function profileRouter(profiles: ProfileService): ApiRouter {
  const router = new ApiRouter();
  const tags = ['profile'];

  router.route({ method: 'get', path: '/api/profile', summary: 'Own profile', access: 'user', tags, response: meResponse }, async ({ actor }) =>
    userWithProfile(await profiles.read(actor)),
  );

  router.route(
    {
      method: 'patch',
      path: '/api/profile',
      summary: 'Update display name, bio, avatar URL or preferences',
      access: 'user',
      tags,
      body: profilePatchBody,
      response: meResponse,
    },
    async ({ actor, body }) => userWithProfile(await profiles.update(actor, body)),
  );
  return router;
}
