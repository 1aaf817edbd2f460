/**
 * Small REAL HTTP servers that speak accounting's and monitoring's /internal contracts (shared-types
 * internal-api.ts), so chat's service calls go over the wire with real tokens. They verify the service token
 * (and the user token where the contract needs it) and record every call for assertions. They answer what the
 * real services answer (accounting/test/integration/credits.test.ts pins those answers): 400 VALIDATION_FAILED
 * for a body the contract refuses, 409 for a reservation id another user or stream holds, 403 for settling
 * another user's reservation with a user token, `expired` once the sweeper would have expired it (a reservation
 * nobody renewed within `ttlSeconds`, swept at every call), renewals, and charges taken after an expiry or beyond
 * the hold from the balance with the rest recorded as shortfall; and every answer is parsed with the contract's
 * response schema before it is sent, so a stand-in cannot drift from it.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  ApiError,
  abortReservationBody,
  bearerToken,
  creditsFor,
  finalizeReservationBody,
  initializeReservationBody,
  loadModelCatalog,
  registerModelPriceBody,
  relationshipCheckQuery,
  relationshipCheckResponse,
  renewReservationBody,
  reservationResponse,
  SERVICE_TOKEN_HEADER,
  verifyAccessToken,
  verifyServiceToken,
} from '@platform/shared-types';
import type { TestAuth } from '@platform/shared-types/testing';
import type { z } from 'zod';

export interface RecordedCall {
  path: string;
  body: Record<string, unknown>;
  status: number;
  userId?: string;
}

interface Reservation {
  reservationId: string;
  userId: string;
  modelId: string;
  reserved: number;
  charged: number;
  status: z.infer<typeof reservationResponse>['status'];
  shortfall: number;
  sessionId: string;
  expiresAt: Date;
  /** set when the sweeper expired it (a later charge still lands, from the balance) */
  expiredAt?: Date;
  renewals: number;
  /** made through an API key (the stand-in enforces no key limit, so it answers apiKeyRemainingCredits: null) */
  apiKeyId?: string;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const isProblem = status >= 400;
  res.writeHead(status, { 'content-type': isProblem ? 'application/problem+json' : 'application/json' });
  res.end(JSON.stringify(body));
}

function problemBody(status: number, code: string, detail: string) {
  return { type: 'about:blank', title: code, status, code, detail, requestId: randomUUID() };
}

/** Malformed JSON is a 400 VALIDATION_FAILED, as the real services' body parser answers. */
async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  try {
    return chunks.length ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>) : {};
  } catch {
    throw new ApiError('VALIDATION_FAILED', 'Malformed JSON body');
  }
}

/** Parses a request body with the contract's schema: a refusal is the real 400 VALIDATION_FAILED. */
function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw new ApiError('VALIDATION_FAILED', 'Request body does not match the contract');
  return parsed.data;
}

async function listenOn(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

export class AccountingStandIn {
  readonly calls: RecordedCall[] = [];
  readonly balances = new Map<string, number>();
  readonly reservations = new Map<string, Reservation>();
  /** while true, finalize and abort answer 503 (accounting "down" for charges) */
  chargesDown = false;
  /** while true, initialize answers 503 */
  reservationsDown = false;
  /** while set, initialize calls wait for it before they are decided (see holdReservations) */
  #reservationGate: Promise<void> | undefined;
  /** initialize calls waiting at the gate now */
  reservationsWaiting = 0;
  /** credits every unknown user starts with */
  defaultBalance = 1_000_000;
  /** how long a reservation lives without a renewal (accounting's RESERVATION_TTL_SECONDS, default 600) */
  ttlSeconds = 600;
  url = '';
  readonly #server: Server;
  readonly #prices: Map<string, { inputPer1k: number; outputPer1k: number }>;

  constructor(auth: TestAuth, modelsFile?: string) {
    this.#prices = new Map(loadModelCatalog(modelsFile).map((m) => [m.id, m.prices]));
    this.#server = createServer((req, res) => {
      this.#handle(auth, req, res).catch((error: unknown) => {
        if (error instanceof ApiError) {
          this.calls.push({ path: new URL(req.url ?? '/', 'http://x').pathname, body: {}, status: error.status });
          return send(res, error.status, problemBody(error.status, error.code, error.message));
        }
        send(res, 500, problemBody(500, 'INTERNAL', String(error)));
      });
    });
  }

  async start(): Promise<this> {
    this.url = await listenOn(this.#server);
    return this;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /** what an admin's PUT /api/models/prices/:modelId does in accounting: changes a held price, 404 for an unknown model */
  setPrice(modelId: string, prices: { inputPer1k: number; outputPer1k: number }): void {
    if (!this.#prices.has(modelId)) throw new Error(`accounting answers 404 NOT_FOUND: no price for ${modelId}`);
    this.#prices.set(modelId, prices);
  }

  /** a price accounting already holds for a model chat does not know (its seed, or an earlier registration) */
  holdPrice(modelId: string, prices: { inputPer1k: number; outputPer1k: number }): void {
    this.#prices.set(modelId, prices);
  }

  priceOf(modelId: string): { inputPer1k: number; outputPer1k: number } | undefined {
    return this.#prices.get(modelId);
  }

  /** makes initialize calls wait (undecided) until the returned function is called: a slow accounting, under the test's control */
  holdReservations(): () => void {
    let release = () => {};
    this.#reservationGate = new Promise<void>((resolve) => {
      release = () => {
        this.#reservationGate = undefined;
        resolve();
      };
    });
    return release;
  }

  balance(userId: string): number {
    return this.balances.get(userId) ?? this.defaultBalance;
  }

  /** What accounting's sweeper does to a reservation left open past its TTL: expire it, release the hold, charge nothing. */
  expire(reservationId: string): void {
    const reservation = this.reservations.get(reservationId);
    if (reservation?.status !== 'open') return;
    reservation.status = 'expired';
    reservation.expiredAt = new Date();
    reservation.expiresAt = new Date(Date.now() - 1);
    this.balances.set(reservation.userId, this.balance(reservation.userId) + reservation.reserved);
  }

  /** the sweeper's pass: every open reservation nobody renewed within the TTL */
  #sweep(): void {
    const now = Date.now(); // one clock read per pass (the bench's burst holds hundreds of reservations)
    for (const reservation of this.reservations.values())
      if (reservation.status === 'open' && reservation.expiresAt.getTime() < now) this.expire(reservation.reservationId);
  }

  /** successful charges (finalize or abort answered 200) of one reservation */
  chargesOf(reservationId: string): RecordedCall[] {
    return this.calls.filter((c) => c.body.reservationId === reservationId && c.status === 200 && /\/(finalize|abort)$/.test(c.path));
  }

  async #handle(auth: TestAuth, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const token = req.headers[SERVICE_TOKEN_HEADER];
    try {
      verifyServiceToken(auth.internalKeyring, String(token), 'accounting');
    } catch {
      return send(res, 401, problemBody(401, 'UNAUTHENTICATED', 'service token'));
    }
    const body = await readJson(req);
    const record = (status: number, userId?: string) => this.calls.push({ path, body, status, userId });
    this.#sweep();
    if (path === '/internal/models/prices' && req.method === 'GET') {
      record(200);
      return send(res, 200, { prices: [...this.#prices].map(([modelId, p]) => ({ modelId, ...p })) });
    }
    const register = /^\/internal\/models\/prices\/([a-z0-9._-]+)$/.exec(path);
    if (register && req.method === 'PUT') {
      const modelId = register[1] as string;
      const input = parseBody(registerModelPriceBody, body);
      if (!this.#prices.has(modelId)) this.#prices.set(modelId, { inputPer1k: input.inputPer1k, outputPer1k: input.outputPer1k });
      record(200);
      return send(res, 200, { modelId, ...this.#prices.get(modelId) });
    }
    if (path === '/internal/streaming-sessions/initialize') {
      if (this.#reservationGate) {
        this.reservationsWaiting++;
        await this.#reservationGate;
        this.reservationsWaiting--;
      }
      if (this.reservationsDown) {
        record(503);
        return send(res, 503, problemBody(503, 'UPSTREAM_UNAVAILABLE', 'down'));
      }
      const bearer = bearerToken(req.headers.authorization);
      let userId: string;
      try {
        userId = verifyAccessToken(auth.accessKeyring, String(bearer)).sub;
      } catch {
        record(401);
        return send(res, 401, problemBody(401, 'UNAUTHENTICATED', 'user token'));
      }
      const input = parseBody(initializeReservationBody, body);
      const existing = this.reservations.get(input.reservationId);
      if (existing) {
        if (existing.userId !== userId || existing.sessionId !== input.sessionId || existing.modelId !== input.modelId) {
          record(409, userId);
          return send(res, 409, problemBody(409, 'CONFLICT', 'reservation id already used for another stream'));
        }
        record(200, userId);
        return send(res, 200, this.#view(existing));
      }
      const prices = this.#prices.get(input.modelId);
      if (!prices) return send(res, 404, problemBody(404, 'NOT_FOUND', 'model'));
      const reserved = creditsFor(prices, input.inputTokens, input.maxOutputTokens);
      if (this.balance(userId) < reserved) {
        record(402, userId);
        return send(res, 402, problemBody(402, 'INSUFFICIENT_CREDITS', `needs ${reserved}`));
      }
      this.balances.set(userId, this.balance(userId) - reserved);
      const reservation: Reservation = {
        reservationId: input.reservationId,
        userId,
        modelId: input.modelId,
        reserved,
        charged: 0,
        shortfall: 0,
        status: 'open',
        sessionId: input.sessionId,
        expiresAt: new Date(Date.now() + this.ttlSeconds * 1_000),
        renewals: 0,
        apiKeyId: input.apiKeyId,
      };
      this.reservations.set(input.reservationId, reservation);
      record(200, userId);
      return send(res, 200, this.#view(reservation));
    }
    if (path === '/internal/streaming-sessions/renew') {
      const input = parseBody(renewReservationBody, body);
      const reservation = this.reservations.get(input.reservationId);
      if (!reservation) {
        record(404);
        return send(res, 404, problemBody(404, 'NOT_FOUND', 'reservation'));
      }
      if (this.#otherUser(auth, req, reservation)) {
        record(403);
        return send(res, 403, problemBody(403, 'FORBIDDEN', 'reservation belongs to another user'));
      }
      // a settled (or expired) reservation is answered as it is
      if (reservation.status === 'open') {
        reservation.expiresAt = new Date(Math.max(reservation.expiresAt.getTime(), Date.now() + this.ttlSeconds * 1_000));
        reservation.renewals++;
      }
      record(200, reservation.userId);
      return send(res, 200, this.#view(reservation));
    }
    if (path === '/internal/streaming-sessions/finalize' || path === '/internal/streaming-sessions/abort') {
      if (this.chargesDown) {
        record(503);
        return send(res, 503, problemBody(503, 'UPSTREAM_UNAVAILABLE', 'down'));
      }
      const input = path.endsWith('finalize') ? parseBody(finalizeReservationBody, body) : parseBody(abortReservationBody, body);
      const reservation = this.reservations.get(input.reservationId);
      if (!reservation) {
        record(404);
        return send(res, 404, problemBody(404, 'NOT_FOUND', 'reservation'));
      }
      const other = this.#otherUser(auth, req, reservation);
      if (other) {
        record(403, other);
        return send(res, 403, problemBody(403, 'FORBIDDEN', 'reservation belongs to another user'));
      }
      if (reservation.status === 'open' || reservation.status === 'expired') {
        this.#settle(reservation, path.endsWith('finalize') ? 'finalized' : 'aborted', input.inputTokens ?? 0, input.outputTokens);
      }
      record(200, reservation.userId);
      return send(res, 200, this.#view(reservation));
    }
    send(res, 404, problemBody(404, 'NOT_FOUND', path));
  }

  /** A user token names the owner the caller expects (settling works without one, after it expired): the other user's id, if it names another. */
  #otherUser(auth: TestAuth, req: IncomingMessage, reservation: Reservation): string | undefined {
    const bearer = bearerToken(req.headers.authorization);
    if (!bearer) return undefined;
    let caller: string | undefined;
    try {
      caller = verifyAccessToken(auth.accessKeyring, bearer).sub;
    } catch {
      return undefined;
    }
    return caller !== reservation.userId ? caller : undefined;
  }

  /** The cost at the reservation's prices: the hold pays first (an open one), the rest comes from the balance up to what is left; what is not there is shortfall. */
  #settle(reservation: Reservation, status: 'finalized' | 'aborted', inputTokens: number, outputTokens: number): void {
    const prices = this.#prices.get(reservation.modelId) as { inputPer1k: number; outputPer1k: number };
    const cost = creditsFor(prices, inputTokens, outputTokens);
    const hold = reservation.status === 'open' ? reservation.reserved : 0;
    const fromHold = Math.min(hold, cost);
    const fromBalance = Math.min(cost - fromHold, this.balance(reservation.userId) + hold - fromHold);
    reservation.charged = fromHold + fromBalance;
    reservation.shortfall = cost - reservation.charged;
    reservation.status = status;
    this.balances.set(reservation.userId, this.balance(reservation.userId) + hold - reservation.charged);
  }

  #view(r: Reservation) {
    const fromHold = Math.min(r.charged, r.reserved);
    return reservationResponse.parse({
      reservationId: r.reservationId,
      userId: r.userId,
      status: r.status,
      reservedCredits: r.reserved,
      chargedCredits: r.charged,
      // nothing came back from a hold the sweeper had released already
      releasedCredits: r.status === 'open' || (r.expiredAt && r.status !== 'expired') ? 0 : r.reserved - fromHold,
      availableCredits: this.balance(r.userId),
      expiresAt: r.expiresAt.toISOString(),
      prices: this.#prices.get(r.modelId),
      shortfallCredits: r.shortfall,
      ttlSeconds: this.ttlSeconds,
      ...(r.apiKeyId ? { apiKeyRemainingCredits: null } : {}),
    });
  }
}

export class MonitoringStandIn {
  readonly calls: Array<{ supervisorId: string; studentId: string; hadUserToken: boolean }> = [];
  readonly #pairs = new Set<string>();
  url = '';
  readonly #server: Server;

  constructor(auth: TestAuth) {
    this.#server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      try {
        verifyServiceToken(auth.internalKeyring, String(req.headers[SERVICE_TOKEN_HEADER]), 'monitoring');
      } catch {
        return send(res, 401, problemBody(401, 'UNAUTHENTICATED', 'service token'));
      }
      if (url.pathname !== '/internal/relationships/check') return send(res, 404, problemBody(404, 'NOT_FOUND', url.pathname));
      const parsed = relationshipCheckQuery.safeParse(Object.fromEntries(url.searchParams));
      if (!parsed.success) return send(res, 400, problemBody(400, 'VALIDATION_FAILED', 'supervisorId and studentId are required'));
      const query = parsed.data;
      this.calls.push({ ...query, hadUserToken: bearerToken(req.headers.authorization) !== undefined });
      send(res, 200, relationshipCheckResponse.parse({ supervises: this.#pairs.has(`${query.supervisorId}>${query.studentId}`) }));
    });
  }

  supervise(supervisorId: string, studentId: string): void {
    this.#pairs.add(`${supervisorId}>${studentId}`);
  }

  async start(): Promise<this> {
    this.url = await listenOn(this.#server);
    return this;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
