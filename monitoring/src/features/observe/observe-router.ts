import { ApiRouter } from '@platform/shared-types/express';
import { z } from 'zod';
import type { ObserveService } from './observe-service.ts';

export function observeRouter(observe: ObserveService): ApiRouter {
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
    ({ actor, params, userToken, req, res }) => observe.observe(actor, { ...params, userToken, requestId: req.requestId }, res),
  );
}
