import { type Action, type Actor, ApiError, IDEMPOTENCY_KEY_HEADER } from '@platform/shared-types';
import { ApiRouter } from '@platform/shared-types/express';
import type { Request, Response } from 'express';
import { z } from 'zod';
import { type AccountingContext, authorizeOn } from '../../context.ts';
import { credits, idempotencyKey, modelId, ownerQuery, pageQuery, tokens, userId } from '../../schemas.ts';
import type { CreditsService } from './credits-service.ts';
import type { IdempotentResult } from './idempotency.ts';

const allocationSchema = z.object({
  id: z.string(),
  userId: z.string(),
  credits: z.number().int(),
  remaining: z.number().int(),
  expiresAt: z.string().nullable(),
  notes: z.string().nullable(),
  allocatedBy: z.string(),
  createdAt: z.string(),
});
const balanceSchema = z.object({
  userId: z.string(),
  available: z.number().int(),
  reserved: z.number().int(),
  allocations: z.array(allocationSchema.pick({ id: true, credits: true, remaining: true, expiresAt: true, notes: true, createdAt: true })),
});
const allocateBody = z
  .object({ userId, credits, expiryDays: z.number().int().min(1).max(3650).optional(), notes: z.string().max(500).optional() })
  .strict()
  .meta({ id: 'AllocateCreditsRequest', examples: [{ userId: '665f1c2e9b1d8a0012345678', credits: 5000, expiryDays: 30, notes: 'term start' }] });
const deductBody = z.object({ userId, credits, reason: z.string().max(128).optional() }).strict();
const calculateBody = z
  .object({ modelId, inputTokens: tokens, outputTokens: tokens })
  .strict()
  .meta({ id: 'CalculateCreditsRequest', examples: [{ modelId: 'local-dev', inputTokens: 1200, outputTokens: 400 }] });

function keyOf(req: Request): string | undefined {
  const raw = req.headers[IDEMPOTENCY_KEY_HEADER];
  if (raw === undefined) return undefined;
  const parsed = idempotencyKey.safeParse(raw);
  if (!parsed.success)
    throw new ApiError('VALIDATION_FAILED', 'Invalid Idempotency-Key header', {
      errors: [{ path: 'headers.idempotency-key', message: parsed.error.issues[0]?.message ?? 'invalid' }],
    });
  return parsed.data;
}

interface WriteInput<B> {
  actor: Actor;
  userToken: string | undefined;
  body: B;
  req: Request;
  res: Response;
}

/** A credit write on the body's user: authorized for `action`, Idempotency-Key honoured, a replayed answer flagged. */
function idempotentWrite<B extends { userId: string }>(
  ctx: AccountingContext,
  action: Action,
  write: (by: string, body: B, key: string | undefined) => Promise<IdempotentResult<unknown>>,
) {
  return async ({ actor, userToken, body, req, res }: WriteInput<B>): Promise<void> => {
    const key = keyOf(req);
    await authorizeOn(ctx, userToken, actor, action, body.userId);
    const result = await write(actor.userId, body, key);
    if (result.replayed) res.setHeader('Idempotent-Replayed', 'true');
    res.status(result.status).json(result.body);
  };
}

export function creditsRouter(ctx: AccountingContext, credits: CreditsService): ApiRouter {
  return new ApiRouter()
    .route(
      {
        method: 'get',
        path: '/api/credits/balance',
        summary: 'Available and reserved credits with the live allocations (own; admin any; supervisor own students)',
        tags: ['credits'],
        access: 'user',
        query: ownerQuery,
        response: balanceSchema,
        errors: ['FORBIDDEN', 'NOT_FOUND'],
      },
      async ({ actor, userToken, query }) => {
        const owner = query.userId ?? actor.userId;
        await authorizeOn(ctx, userToken, actor, 'credits:read', owner);
        return credits.balanceOf(owner);
      },
    )
    .route(
      {
        method: 'get',
        path: '/api/credits/total-balance',
        summary: 'Available credits as {totalCredits} (for existing clients)',
        tags: ['credits'],
        access: 'user',
        query: ownerQuery,
        response: z.object({ totalCredits: z.number().int() }),
        errors: ['FORBIDDEN', 'NOT_FOUND'],
      },
      async ({ actor, userToken, query }) => {
        const owner = query.userId ?? actor.userId;
        await authorizeOn(ctx, userToken, actor, 'credits:read', owner);
        return { totalCredits: (await credits.balanceOf(owner)).available };
      },
    )
    .route(
      {
        method: 'post',
        path: '/api/credits/allocate',
        summary: 'Allocate credits (admin; supervisor for own students); honours Idempotency-Key',
        tags: ['credits'],
        access: 'user',
        body: allocateBody,
        status: 201,
        response: z.object({ allocation: allocationSchema, newBalance: z.number().int() }),
        errors: ['FORBIDDEN', 'NOT_FOUND', 'CONFLICT'],
      },
      idempotentWrite(ctx, 'credits:allocate', (by, body: z.output<typeof allocateBody>, key) => credits.allocate(by, body, key)),
    )
    .route(
      {
        method: 'post',
        path: '/api/credits/deduct',
        summary: 'Deduct credits (admin); honours Idempotency-Key',
        tags: ['credits'],
        access: 'user',
        body: deductBody,
        response: z.object({ userId: z.string(), deducted: z.number().int(), transactionId: z.string(), newBalance: z.number().int() }),
        errors: ['FORBIDDEN', 'NOT_FOUND', 'CONFLICT', 'INSUFFICIENT_CREDITS'],
      },
      idempotentWrite(ctx, 'credits:deduct', (by, body: z.output<typeof deductBody>, key) => credits.deduct(by, body, key)),
    )
    .route(
      {
        method: 'post',
        path: '/api/credits/calculate',
        summary: 'Integer credits for a model and token counts (per-1k prices, rounded up)',
        tags: ['credits'],
        access: 'user',
        body: calculateBody,
        response: z.object({
          modelId: z.string(),
          inputTokens: z.number(),
          outputTokens: z.number(),
          credits: z.number().int(),
          inputPer1k: z.number(),
          outputPer1k: z.number(),
        }),
        errors: ['FORBIDDEN', 'NOT_FOUND'],
      },
      async ({ actor, userToken, body }) => {
        await authorizeOn(ctx, userToken, actor, 'credits:calculate', actor.userId);
        return credits.priceOf(body);
      },
    )
    .route(
      {
        method: 'get',
        path: '/api/credits/transactions',
        summary: 'The ledger, newest first, paged (own; admin any; supervisor own students)',
        tags: ['credits'],
        access: 'user',
        query: pageQuery,
        response: z.object({
          userId: z.string(),
          page: z.number(),
          limit: z.number(),
          total: z.number(),
          transactions: z.array(
            z.object({
              id: z.string(),
              type: z.string(),
              amount: z.number().int(),
              balanceAfter: z.number().int(),
              reference: z.string().nullable(),
              allocationId: z.string().nullable(),
              reservationId: z.string().nullable(),
              apiKeyId: z.string().nullable(),
              createdBy: z.string().nullable(),
              createdAt: z.string(),
            }),
          ),
        }),
        errors: ['FORBIDDEN', 'NOT_FOUND'],
      },
      async ({ actor, userToken, query }) => {
        const owner = query.userId ?? actor.userId;
        await authorizeOn(ctx, userToken, actor, 'transactions:read', owner);
        return credits.transactionsOf(owner, query);
      },
    );
}
