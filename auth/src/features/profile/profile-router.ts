import { ApiError, authorize } from '@platform/shared-types';
import { ApiRouter } from '@platform/shared-types/express';
import type { AuthContext } from '../../context.ts';
import type { UserDoc } from '../../models.ts';
import { meResponse, profilePatchBody } from '../users/schemas.ts';
import { toProfile, toPublicUser } from '../users/users-dal.ts';

export function profileRouter(ctx: AuthContext): ApiRouter {
  const router = new ApiRouter();
  const tags = ['profile'];

  router.route({ method: 'get', path: '/api/profile', summary: 'Own profile', access: 'user', tags, response: meResponse }, async ({ actor }) => {
    await authorize(actor, 'profile:read', { ownerId: actor.userId });
    const user = await ctx.users.findById(actor.userId);
    if (!user) throw new ApiError('NOT_FOUND', 'User not found');
    return { user: toPublicUser(user), profile: toProfile(user) };
  });

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
    async ({ actor, body }) => {
      await authorize(actor, 'profile:update', { ownerId: actor.userId });
      const set: Record<string, unknown> = {};
      if (body.displayName !== undefined) set.displayName = body.displayName;
      if (body.bio !== undefined) set.bio = body.bio;
      if (body.avatarUrl !== undefined) set.avatarUrl = body.avatarUrl;
      // Preferences merge key by key, so a client can change one without resending the rest.
      for (const [name, value] of Object.entries(body.preferences ?? {})) if (value !== undefined) set[`preferences.${name}`] = value;
      const user = await ctx.users.update(actor.userId, set as Partial<UserDoc>);
      if (!user) throw new ApiError('NOT_FOUND', 'User not found');
      await ctx.events.append('user.updated', user);
      return { user: toPublicUser(user), profile: toProfile(user) };
    },
  );
  return router;
}
