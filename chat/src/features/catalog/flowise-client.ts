import { ApiError } from '@platform/shared-types';
import { z } from 'zod';

/** the part of Flowise's chatflow record a sync needs (Flowise answers many more fields) */
const remoteChatflow = z.object({ id: z.string().min(1).max(128), name: z.string().max(500).default(''), deployed: z.boolean().nullish() });
export type RemoteChatflow = { id: string; name: string; deployed: boolean };

/** Flowise's admin API: `GET /api/v1/chatflows` with the API key as a bearer token. */
export class FlowiseClient {
  readonly #baseUrl: string;
  readonly #apiKey: string | undefined;
  readonly #timeoutMs: number;

  constructor(options: { baseUrl: string; apiKey?: string; timeoutMs: number }) {
    this.#baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.#apiKey = options.apiKey;
    this.#timeoutMs = options.timeoutMs;
  }

  async listChatflows(): Promise<RemoteChatflow[]> {
    let response: Response;
    try {
      response = await fetch(`${this.#baseUrl}/api/v1/chatflows`, {
        headers: { accept: 'application/json', ...(this.#apiKey ? { authorization: `Bearer ${this.#apiKey}` } : {}) },
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (error) {
      throw new ApiError('UPSTREAM_UNAVAILABLE', 'Flowise is unreachable', { status: 502, cause: error });
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new ApiError('UPSTREAM_UNAVAILABLE', `Flowise answered ${response.status} to the chatflow list`, { status: 502 });
    }
    const parsed = z.array(remoteChatflow).safeParse(await response.json().catch(() => undefined));
    if (!parsed.success) throw new ApiError('UPSTREAM_UNAVAILABLE', 'Flowise answered a chatflow list of another shape', { status: 502 });
    return parsed.data.map((c) => ({ id: c.id, name: c.name || c.id, deployed: c.deployed === true }));
  }
}
