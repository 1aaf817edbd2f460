import { type Actor, ApiError, authorize } from '@platform/shared-types';
import type { UserDoc } from '../../documents.ts';
import type { UserEvents } from '../../lib/user-events.ts';
import type { ProfilePatch } from '../users/schemas.ts';
import type { UsersDal } from '../users/users-dal.ts';

/** The signed-in user's own profile: display name, bio, avatar URL and preferences. */
export function profileService(deps: { users: UsersDal; events: UserEvents }) {
  const { users, events } = deps;
  return {
    async read(actor: Actor): Promise<UserDoc> {
      await authorize(actor, 'profile:read', { ownerId: actor.userId });
      const user = await users.findById(actor.userId);
      if (!user) throw new ApiError('NOT_FOUND', 'User not found');
      return user;
    },

    /** Sets the fields sent (null clears one); preferences merge key by key, so a client can change one without resending the rest. */
    async update(actor: Actor, patch: ProfilePatch): Promise<UserDoc> {
      await authorize(actor, 'profile:update', { ownerId: actor.userId });
      const set: Record<string, unknown> = {};
      if (patch.displayName !== undefined) set.displayName = patch.displayName;
      if (patch.bio !== undefined) set.bio = patch.bio;
      if (patch.avatarUrl !== undefined) set.avatarUrl = patch.avatarUrl;
      for (const [name, value] of Object.entries(patch.preferences ?? {})) if (value !== undefined) set[`preferences.${name}`] = value;
      const user = await users.update(actor.userId, set as Partial<UserDoc>);
      if (!user) throw new ApiError('NOT_FOUND', 'User not found');
      await events.append('user.updated', user);
      return user;
    },
  };
}

export type ProfileService = ReturnType<typeof profileService>;
