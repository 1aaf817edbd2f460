import { internalRepliesQuery, internalRepliesResponse } from '@platform/shared-types';
import { ApiRouter, internalRoute } from '@platform/shared-types/express';
import type { SessionsService } from './sessions-service.ts';

/** Service-only: the metered replies chat stored, for accounting's reconciliation (DESIGN 4: service token only). */
export function repliesRouter(deps: { sessions: SessionsService }): ApiRouter {
  return new ApiRouter().route(
    {
      // every user's usage: only the reconciling service may read it
      ...internalRoute(['accounting']),
      method: 'get',
      path: '/internal/replies',
      summary: 'Metered assistant replies stored in [from, to), with their reservation id, status, usage and credits (accounting reconciles them)',
      query: internalRepliesQuery,
      response: internalRepliesResponse,
    },
    ({ query }) => deps.sessions.meteredReplies({ ...query, from: new Date(query.from), to: new Date(query.to) }),
  );
}
