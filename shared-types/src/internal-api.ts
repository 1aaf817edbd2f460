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
export const publicUser = z.object({
  id,
  username: z.string(),
  email: z.string(),
  role: z.enum(ROLES),
  status: z.enum(['active', 'disabled']),
  emailVerified: z.boolean(),
  displayName: z.string().optional(),
  createdAt: z.string(),
});
export type PublicUser = z.infer<typeof publicUser>;
export const internalUsersResponse = z.object({ users: z.array(publicUser) });

// ---- monitoring ----
/** GET /internal/relationships/check?supervisorId=&studentId= */
export const relationshipCheckQuery = z.object({ supervisorId: id, studentId: id });
export const relationshipCheckResponse = z.object({ supervises: z.boolean(), relationshipId: z.string().optional(), since: z.string().optional() });
export type RelationshipCheck = z.infer<typeof relationshipCheckResponse>;

// ---- accounting ----
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
