import {
  ApiError,
  abortReservationBody,
  type ErrorCode,
  finalizeReservationBody,
  initializeReservationBody,
  internalActiveResponse,
  internalBalancesQuery,
  internalBalancesResponse,
  parseIdList,
  renewReservationBody,
  reservationResponse,
} from '@platform/shared-types';
import { ApiRouter, internalRoute, requireActor } from '@platform/shared-types/express';
import { z } from 'zod';
import { type AccountingContext, authorizeOn } from '../../context.ts';
import { userId } from '../../schemas.ts';
import { type ApiKeysService, reservationApiKey } from '../api-keys/api-keys-service.ts';
import { creditsDal } from '../credits/credits-dal.ts';
import type { ReservationsService } from './reservations-service.ts';

function idList(value: string): string[] {
  try {
    return parseIdList(value).filter((id) => id.length <= 64);
  } catch (error) {
    throw new ApiError('VALIDATION_FAILED', (error as Error).message, { errors: [{ path: 'query.userIds', message: 'too many ids' }] });
  }
}

/** A route that changes an existing reservation: service-only, answered with the reservation, works after the user token expired. */
function changeRoute<B extends z.ZodType>(action: string, summary: string, body: B) {
  return {
    method: 'post' as const,
    path: `/internal/streaming-sessions/${action}`,
    summary: `${summary} (service-only; works after the user token expired)`,
    ...internalRoute(),
    body,
    response: reservationResponse,
    errors: ['NOT_FOUND', 'FORBIDDEN'] satisfies ErrorCode[],
  };
}

export function reservationsRouter(ctx: AccountingContext, streams: ReservationsService, apiKeys: Pick<ApiKeysService, 'initializeThroughKey'>): ApiRouter {
  const { db } = ctx;
  return new ApiRouter()
    .route(
      {
        method: 'post',
        path: '/internal/streaming-sessions/initialize',
        summary: "Reserve a stream's worst case for the user whose bearer token is sent (service-only); idempotent on reservationId",
        ...internalRoute(),
        body: initializeReservationBody.strict(),
        response: reservationResponse,
        errors: ['INSUFFICIENT_CREDITS', 'NOT_FOUND', 'CONFLICT', 'FORBIDDEN'],
      },
      async ({ body, req }) => {
        const actor = requireActor(req); // the user's own token: reservations are made only for a signed-in user
        const { apiKeyId: named, ...input } = body;
        const apiKeyId = reservationApiKey(actor, named);
        // through an API key its credit limit applies too (DESIGN 5b)
        if (apiKeyId) return apiKeys.initializeThroughKey(actor, input, apiKeyId);
        return streams.initialize(actor, input);
      },
    )
    .route(changeRoute('renew', "Keep a running stream's reservation alive for another TTL", renewReservationBody.strict()), async ({ body, req }) =>
      streams.renew(body, req.actor?.userId),
    )
    .route(
      changeRoute(
        'finalize',
        "Charge the actual usage at the reservation's prices (beyond the hold or after an expiry: from the balance, shortfall recorded) and release the rest",
        finalizeReservationBody.strict(),
      ),
      async ({ body, req }) => streams.finalize(body, req.actor?.userId),
    )
    .route(changeRoute('abort', 'Charge what was produced and release the rest', abortReservationBody.strict()), async ({ body, req }) =>
      streams.abort(body, req.actor?.userId),
    )
    .route(
      {
        method: 'get',
        path: '/internal/streaming-sessions/active',
        summary: 'Open reservations of the given users (service-only, for monitoring)',
        ...internalRoute(),
        query: z.object({ userIds: internalBalancesQuery.shape.userIds }).strict(),
        response: internalActiveResponse,
      },
      async ({ query }) => ({ sessions: await streams.active(idList(query.userIds)) }),
    )
    .route(
      {
        method: 'get',
        path: '/internal/credits/balances',
        summary: 'Available and reserved credits of the given users; unknown users count as zero (service-only)',
        ...internalRoute(),
        query: internalBalancesQuery.strict(),
        response: internalBalancesResponse,
      },
      async ({ query }) => {
        const ids = idList(query.userIds);
        const found = await creditsDal(db).balances(ids);
        return { balances: ids.map((id) => ({ userId: id, available: found.get(id)?.available ?? 0, reserved: found.get(id)?.reserved ?? 0 })) };
      },
    )
    .route(
      {
        method: 'get',
        path: '/api/streaming-sessions/active/:userId',
        summary: "A user's open streaming reservations (admin, or a supervisor of that user)",
        tags: ['streaming'],
        access: 'user',
        params: z.object({ userId }),
        response: internalActiveResponse,
        errors: ['FORBIDDEN'],
      },
      async ({ actor, userToken, params }) => {
        await authorizeOn(ctx, userToken, actor, 'streams:read-active', params.userId);
        return { sessions: await streams.active([params.userId]) };
      },
    );
}
