import { internalStreamTimingQuery, internalStreamTimingResponse } from '@platform/shared-types';
import { ApiRouter, internalRoute } from '@platform/shared-types/express';
import type { ChatBus } from './chat-bus.ts';

/** Service-only: when the sessions' streams started and got their first token (monitoring's live sessions). */
export function timingRouter(deps: { bus: ChatBus }): ApiRouter {
  return new ApiRouter().route(
    {
      // monitoring shows it to the supervisor of the owner (or an admin) and checks that itself
      ...internalRoute(['monitoring']),
      method: 'get',
      path: '/internal/sessions/timing',
      summary: "Start and time to first token of the sessions' current or last streams (monitoring)",
      query: internalStreamTimingQuery,
      response: internalStreamTimingResponse,
    },
    async ({ query }) => ({ sessions: await deps.bus.streamTimings(query.sessionIds) }),
  );
}
