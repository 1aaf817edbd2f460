/**
 * Service-to-service contract (DESIGN section 4): the /internal routes one service offers another, with
 * zod schemas both sides use (the callee to validate, the caller for types). Every call carries a service
 * token for the callee's audience; calls made for a user also carry the user's bearer token.
 */
import { z } from 'zod';
import { ROLES } from './roles.ts';

const id = z.string().min(1).max(64);
const tokens = z.number().int().min(0).max(10_000_000);

// ---- auth ----
/** GET /internal/users?ids=a,b,c (at most 200 ids) */
export const internalUsersQuery = z.object({
  ids: z
    .string()
    .min(1)
    .max(200 * 65),
});
export const publicUser = z
  .object({
    id,
    username: z.string(),
    email: z.string(),
    role: z.enum(ROLES),
    status: z.enum(['active', 'disabled']),
    emailVerified: z.boolean(),
    displayName: z.string().optional(),
    createdAt: z.string(),
  })
  .meta({ id: 'User', description: 'A user as others may see it (never the password hash or tokens)' });
export type PublicUser = z.infer<typeof publicUser>;
export const internalUsersResponse = z.object({ users: z.array(publicUser) });

// ---- monitoring ----
/** GET /internal/relationships/check?supervisorId=&studentId= */
export const relationshipCheckQuery = z.object({ supervisorId: id, studentId: id });
export const relationshipCheckResponse = z.object({ supervises: z.boolean(), relationshipId: z.string().optional(), since: z.string().optional() });
export type RelationshipCheck = z.infer<typeof relationshipCheckResponse>;

// ---- accounting ----
/** GET /internal/models/prices: every model accounting has a price for (the one source of prices, DESIGN 8). */
export const modelPriceView = z.object({ modelId: id, inputPer1k: z.number().int().min(1), outputPer1k: z.number().int().min(1) });
export type ModelPriceView = z.infer<typeof modelPriceView>;
export const internalPricesResponse = z.object({ prices: z.array(modelPriceView) });
/**
 * PUT /internal/models/prices/:modelId: chat announces a model added at runtime with its first prices; accounting
 * keeps a price it already holds (admins change prices in accounting) and answers the price in force.
 */
export const registerModelPriceBody = z.object({
  displayName: z.string().min(1).max(200),
  inputPer1k: z.number().int().min(1).max(1_000_000_000),
  outputPer1k: z.number().int().min(1).max(1_000_000_000),
});
/** POST /internal/streaming-sessions/initialize: reserves the worst case; idempotent on reservationId (chat generates it). */
export const initializeReservationBody = z.object({
  reservationId: z.uuid(),
  sessionId: id,
  modelId: id,
  inputTokens: tokens,
  maxOutputTokens: tokens.min(1),
  /** the API key the request came with (the `akid` of the caller's token); its credit limit applies (DESIGN 5b) */
  apiKeyId: id.optional(),
});
export const reservationResponse = z.object({
  reservationId: z.uuid(),
  userId: id,
  status: z.enum(['open', 'finalized', 'aborted', 'expired']),
  reservedCredits: z.number().int(),
  chargedCredits: z.number().int(),
  releasedCredits: z.number().int(),
  availableCredits: z.number().int(),
  expiresAt: z.string(),
  /** the prices accounting charges this reservation with (fixed when it was made): the one source of price */
  prices: z.object({ inputPer1k: z.number().int().min(1), outputPer1k: z.number().int().min(1) }).optional(),
  /** credits of the usage that could not be charged (the balance ran out); recorded, never dropped */
  shortfallCredits: z.number().int().min(0).optional(),
  /** how long the reservation lives without a renewal; a running stream renews well within it */
  ttlSeconds: z.number().int().min(1).optional(),
  /**
   * a reservation made through an API key (initialize): what the key's credit limit still allows after it, or null
   * when the key has no limit; absent when not reported. A hint for the caller (chat decides from it whether it may
   * start the provider alongside the next reservation), never a promise: the reservation is the decision.
   */
  apiKeyRemainingCredits: z.number().int().min(0).nullable().optional(),
});
export type ReservationResponse = z.infer<typeof reservationResponse>;
/** POST /internal/streaming-sessions/renew: keeps a running stream's reservation alive (answers its current state). */
export const renewReservationBody = z.object({ reservationId: z.uuid() });
/** POST /internal/streaming-sessions/finalize: charges the actual usage at the reservation's prices (beyond the hold or after an expiry: from the balance, up to what is left), releases the rest. Works without the user's token. */
export const finalizeReservationBody = z.object({ reservationId: z.uuid(), inputTokens: tokens, outputTokens: tokens });
/** POST /internal/streaming-sessions/abort: charges what was produced. Works without the user's token. */
export const abortReservationBody = z.object({ reservationId: z.uuid(), inputTokens: tokens.optional(), outputTokens: tokens });
/** POST /internal/usage/record: usage that was not reserved (recorded, not charged twice). */
export const recordUsageBody = z.object({
  userId: id,
  modelId: id,
  inputTokens: tokens,
  outputTokens: tokens,
  credits: z.number().int().min(0),
  sessionId: id.optional(),
  reservationId: z.uuid().optional(),
});
/** GET /internal/credits/balances?userIds=a,b (for monitoring's student list) */
export const internalBalancesQuery = z.object({
  userIds: z
    .string()
    .min(1)
    .max(200 * 65),
});
export const internalBalancesResponse = z.object({ balances: z.array(z.object({ userId: id, available: z.number().int(), reserved: z.number().int() })) });
/** GET /internal/streaming-sessions/active?userIds=a,b */
export const activeReservation = z.object({
  reservationId: z.uuid(),
  userId: id,
  sessionId: id,
  modelId: id,
  reservedCredits: z.number().int(),
  startedAt: z.string(),
});
export const internalActiveResponse = z.object({ sessions: z.array(activeReservation) });

// ---- chat ----
/**
 * GET /internal/sessions/:id/observe?userId=<owner> (SSE): replays the events of the running (or last) stream
 * and follows live, whichever chat instance holds it. 404 when the session is not owned by userId.
 * Events are the public stream events (session, delta, done, interrupted, error) plus `feedback`.
 */
export const observeQuery = z.object({ userId: id });

/**
 * GET /internal/sessions/timing?sessionIds=a,b (at most 200; monitoring's live sessions): when each session's
 * current (or last) stream started and when its first token came, as chat measured them; sessions chat has no
 * recent stream of are left out. timeToFirstTokenMs is null until the first token.
 */
export const MAX_TIMING_SESSIONS = 200;
/** `sessionIds` is read as the distinct ids of the comma-separated list */
export const internalStreamTimingQuery = z.strictObject({
  sessionIds: z
    .string()
    .min(1)
    .max(MAX_TIMING_SESSIONS * 65)
    .transform((list) => [...new Set(list.split(',').filter(Boolean))])
    .pipe(z.array(z.string()).max(MAX_TIMING_SESSIONS, `at most ${MAX_TIMING_SESSIONS} sessions`)),
});
export const streamTiming = z.object({
  sessionId: id,
  streamId: z.string(),
  startedAt: z.string(),
  firstTokenAt: z.string().nullable(),
  timeToFirstTokenMs: z.number().int().min(0).nullable(),
});
export const internalStreamTimingResponse = z.object({ sessions: z.array(streamTiming) });

/**
 * GET /internal/replies?from=&to=&after=&limit= (accounting's reconciliation): the assistant replies chat stored in
 * [from, to) that were metered (carry a reservation id), oldest first, paged by `after` (the last messageId seen).
 * Replies of deleted sessions are kept as billing receipts (`deleted`, no text) so a charge never loses its reply.
 */
export const internalRepliesQuery = z
  .strictObject({
    from: z.iso.datetime({ offset: true }),
    to: z.iso.datetime({ offset: true }),
    after: z
      .string()
      .regex(/^[0-9a-f]{24}$/)
      .optional(),
    limit: z.coerce.number().int().min(1).max(1000).default(500),
  })
  .refine((query) => Date.parse(query.from) < Date.parse(query.to), { path: ['from'], message: 'from must be before to' });
export const storedReply = z.object({
  messageId: z.string(),
  reservationId: z.string(),
  userId: id,
  sessionId: z.string(),
  modelId: z.string().optional(),
  status: z.enum(['complete', 'interrupted', 'error']),
  usage: z.object({ inputTokens: tokens, outputTokens: tokens }).optional(),
  /** the credits accounting answered; absent while the charge waits in chat's outbox (`chargePending`) */
  credits: z.number().int().optional(),
  chargePending: z.boolean().optional(),
  deleted: z.boolean().optional(),
  createdAt: z.string(),
});
export type StoredReply = z.infer<typeof storedReply>;
export const internalRepliesResponse = z.object({ replies: z.array(storedReply), next: z.string().optional() });

/** Splits a comma-separated id list from a query string (deduplicated, bounded). */
export function parseIdList(value: string, max = 200): string[] {
  const ids = [
    ...new Set(
      value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    ),
  ];
  if (ids.length > max) throw new Error(`at most ${max} ids`);
  return ids;
}
