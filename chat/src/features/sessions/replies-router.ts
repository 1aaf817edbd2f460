import { ApiError, internalRepliesQuery, internalRepliesResponse } from '@platform/shared-types';
import { ApiRouter } from '@platform/shared-types/express';
import type { SessionsService } from './sessions-service.ts';

/** Service-only: the metered replies chat stored, for accounting's reconciliation (DESIGN 4: service token only). */
export function repliesRouter(deps: { sessions: SessionsService }): ApiRouter {
  return new ApiRouter().route(
    {
      method: 'get',
      path: '/internal/replies',
      summary: 'Metered assistant replies stored in [from, to), with their reservation id, status, usage and credits (accounting reconciles them)',
      access: 'service',
      // every user's usage: only the reconciling service may read it
      callers: ['accounting'],
      tags: ['internal'],
      query: internalRepliesQuery.strict(),
      response: internalRepliesResponse,
      errors: ['VALIDATION_FAILED', 'UNAUTHENTICATED', 'FORBIDDEN'],
    },
    async ({ query }) => {
      const from = new Date(query.from);
      const to = new Date(query.to);
      if (from >= to) throw new ApiError('VALIDATION_FAILED', 'from must be before to', { errors: [{ path: 'query.from', message: 'bad range' }] });
      return deps.sessions.meteredReplies({ from, to, after: query.after, limit: query.limit });
    },
  );
}
