import {
  ApiError,
  internalActiveResponse,
  internalBalancesResponse,
  internalStreamTimingResponse,
  internalUsersResponse,
  type PublicUser,
  type ServiceClient,
  type ServiceName,
} from '@platform/shared-types';
import type { z } from 'zod';

export type Balance = z.infer<typeof internalBalancesResponse>['balances'][number];
export type ActiveStream = z.infer<typeof internalActiveResponse>['sessions'][number];
export type StreamTiming = z.infer<typeof internalStreamTimingResponse>['sessions'][number];

const MAX_IDS = 200;

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Validates another service's answer against the shared contract; a malformed answer is that service's failure. */
function parseAnswer<S extends z.ZodType>(schema: S, body: unknown, callee: ServiceName): z.output<S> {
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw new ApiError('UPSTREAM_UNAVAILABLE', `${callee} answered outside the contract`, { status: 502 });
  return parsed.data;
}

/** The lookups monitoring makes in auth and accounting (internal-api.ts contracts), batched by 200 ids. */
export class Upstreams {
  readonly #client: ServiceClient;
  readonly #timeoutMs: number;

  constructor(client: ServiceClient, timeoutMs: number) {
    this.#client = client;
    this.#timeoutMs = timeoutMs;
  }

  /** auth GET /internal/users?ids=: the users that exist, by id */
  async users(ids: string[], userToken?: string): Promise<Map<string, PublicUser>> {
    const found = new Map<string, PublicUser>();
    for (const batch of chunks([...new Set(ids)], MAX_IDS)) {
      const { body } = await this.#client.call('auth', '/internal/users', { query: { ids: batch.join(',') }, userToken, timeoutMs: this.#timeoutMs });
      for (const user of parseAnswer(internalUsersResponse, body, 'auth').users) found.set(user.id, user);
    }
    return found;
  }

  /** accounting GET /internal/credits/balances?userIds= */
  async balances(userIds: string[], userToken?: string): Promise<Map<string, Balance>> {
    const found = new Map<string, Balance>();
    for (const batch of chunks(userIds, MAX_IDS)) {
      const { body } = await this.#client.call('accounting', '/internal/credits/balances', {
        query: { userIds: batch.join(',') },
        userToken,
        timeoutMs: this.#timeoutMs,
      });
      for (const balance of parseAnswer(internalBalancesResponse, body, 'accounting').balances) found.set(balance.userId, balance);
    }
    return found;
  }

  /** accounting GET /internal/streaming-sessions/active?userIds=: open reservations, i.e. streams running now */
  async activeStreams(userIds: string[], userToken?: string): Promise<Map<string, ActiveStream[]>> {
    const found = new Map<string, ActiveStream[]>();
    for (const batch of chunks(userIds, MAX_IDS)) {
      const { body } = await this.#client.call('accounting', '/internal/streaming-sessions/active', {
        query: { userIds: batch.join(',') },
        userToken,
        timeoutMs: this.#timeoutMs,
      });
      for (const stream of parseAnswer(internalActiveResponse, body, 'accounting').sessions) {
        const list = found.get(stream.userId) ?? [];
        list.push(stream);
        found.set(stream.userId, list);
      }
    }
    return found;
  }

  /** chat GET /internal/sessions/timing?sessionIds=: start and time to first token of the sessions' streams */
  async streamTimings(sessionIds: string[], userToken?: string): Promise<Map<string, StreamTiming>> {
    const found = new Map<string, StreamTiming>();
    for (const batch of chunks([...new Set(sessionIds)], MAX_IDS)) {
      const { body } = await this.#client.call('chat', '/internal/sessions/timing', {
        query: { sessionIds: batch.join(',') },
        userToken,
        timeoutMs: this.#timeoutMs,
      });
      for (const timing of parseAnswer(internalStreamTimingResponse, body, 'chat').sessions) found.set(timing.sessionId, timing);
    }
    return found;
  }
}
