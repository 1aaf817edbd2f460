import { ApiRouter } from '@platform/shared-types/express';
import { z } from 'zod';
import type { ObserveRelay } from './observe-relay.ts';

export function observeRouter(relay: ObserveRelay): ApiRouter {
  return new ApiRouter().route(
    {
      method: 'get',
      path: '/api/observe/:studentId/:sessionId/stream',
      summary: "Watch a student's chat session live (SSE relay of chat's observe stream, with heartbeats)",
      tags: ['observe'],
      access: 'user',
      params: z.object({ studentId: z.string().min(1).max(64), sessionId: z.string().min(1).max(64) }),
      produces: 'text/event-stream',
      errors: ['FORBIDDEN', 'NOT_FOUND', 'UPSTREAM_UNAVAILABLE'],
    },
    ({ actor, params, req, res }) => relay.relay(actor, params.studentId, params.sessionId, req, res),
  );
}
