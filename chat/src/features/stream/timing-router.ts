import { ApiError, internalStreamTimingQuery, internalStreamTimingResponse } from '@platform/shared-types';
import { ApiRouter } from '@platform/shared-types/express';
import type { ChatBus } from './chat-bus.ts';

const MAX_SESSIONS = 200;

/** Service-only: when the sessions' streams started and got their first token (monitoring's live sessions). */
export function timingRouter(deps: { bus: ChatBus }): ApiRouter {
  return new ApiRouter().route(
    {
      method: 'get',
      path: '/internal/sessions/timing',
      summary: "Start and time to first token of the sessions' current or last streams (monitoring)",
      access: 'service',
      // monitoring shows it to the supervisor of the owner (or an admin) and checks that itself
      callers: ['monitoring'],
      tags: ['internal'],
      query: internalStreamTimingQuery.strict(),
      response: internalStreamTimingResponse,
      errors: ['VALIDATION_FAILED', 'UNAUTHENTICATED', 'FORBIDDEN'],
    },
    async ({ query }) => {
      const sessionIds = [...new Set(query.sessionIds.split(',').filter(Boolean))];
      if (sessionIds.length > MAX_SESSIONS) {
        throw new ApiError('VALIDATION_FAILED', `At most ${MAX_SESSIONS} sessions`, { errors: [{ path: 'query.sessionIds', message: 'too many' }] });
      }
      return { sessions: await deps.bus.streamTimings(sessionIds) };
    },
  );
}
