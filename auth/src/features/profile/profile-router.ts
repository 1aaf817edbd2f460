import { ApiRouter } from '@platform/shared-types/express';
import { meResponse, profilePatchBody } from '../users/schemas.ts';
import { toProfile, toPublicUser } from '../users/users-dal.ts';
import type { ProfileService } from './profile-service.ts';

export function profileRouter(profiles: ProfileService): ApiRouter {
  const router = new ApiRouter();
  const tags = ['profile'];
  const view = (user: Awaited<ReturnType<ProfileService['read']>>) => ({ user: toPublicUser(user), profile: toProfile(user) });

  router.route({ method: 'get', path: '/api/profile', summary: 'Own profile', access: 'user', tags, response: meResponse }, async ({ actor }) =>
    view(await profiles.read(actor)),
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
    async ({ actor, body }) => view(await profiles.update(actor, body)),
  );
  return router;
}
