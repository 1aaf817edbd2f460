import { ApiError, type PublicUser, parseIdList } from '@platform/shared-types';
import { toPublicUser, type UsersDal } from './users-dal.ts';

/** What other services read about users (service-only routes). */
export function usersService(deps: { users: Pick<UsersDal, 'findMany'> }) {
  return {
    /** Public fields of the users of a comma-separated id list (unknown ids are left out; at most 200 ids). */
    async publicUsers(idList: string): Promise<PublicUser[]> {
      let ids: string[];
      try {
        ids = parseIdList(idList);
      } catch (error) {
        throw new ApiError('VALIDATION_FAILED', error instanceof Error ? error.message : 'bad id list', {
          errors: [{ path: 'query.ids', message: 'at most 200 ids' }],
        });
      }
      return (await deps.users.findMany(ids)).map(toPublicUser);
    },
  };
}

export type UsersService = ReturnType<typeof usersService>;
