import {
  type AccessClaims,
  API_KEY_LAST_USED_GRANULARITY_SECONDS,
  ApiError,
  type ApiKeyEntry,
  actorFromClaims,
  apiKeyEntry,
  apiKeyRedisKeys,
  hashApiKey,
  type Keyring,
  type Logger,
  MINTED_TOKEN_TTL_SECONDS,
  signAccessToken,
  verifyAccessToken,
} from '@platform/shared-types';
import type { Redis } from 'ioredis';
import type { Exchange } from '../engine/exchange.ts';

/** a minted token is reused while it has more than this left (DESIGN 2: minted tokens live at most 5 minutes) */
const MINT_REUSE_MARGIN_SECONDS = 60;
const MAX_CACHED_KEYS = 10_000;

interface Resolved {
  entry: string;
  parsed: ApiKeyEntry;
  token: string;
  claims: AccessClaims;
}

/** The one answer for every refused key: nothing says whether it existed, and the key is never echoed. */
export function invalidApiKey(): ApiError {
  return new ApiError('UNAUTHENTICATED', 'Invalid API key', { headers: { 'www-authenticate': 'Bearer error="invalid_token"' } });
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

function parseEntry(raw: string): ApiKeyEntry | undefined {
  try {
    const parsed = apiKeyEntry.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

function expired(entry: ApiKeyEntry): boolean {
  return entry.expiresAt !== undefined && Date.parse(entry.expiresAt) <= Date.now();
}

/**
 * DESIGN 5b at the gateway: `Bearer sk-...` is resolved from auth's Redis entry, and the request goes on with an
 * access token minted here (`amr: ["api_key"]`, `akid`). Resolved entries and their minted tokens are cached per key
 * hash; every request still has the gate script confirm the entry (same round trip as the rate limits), so a
 * deleted key, a disabled user or a role change counts from the next request on. Only a key never seen by this
 * instance costs one GET before the gate.
 */
export class ApiKeyResolver {
  readonly #cache = new Map<string, Resolved>();
  readonly #lastUsedWritten = new Map<string, number>();
  readonly #redis: Redis;
  readonly #keyring: Keyring;
  readonly #logger: Logger;

  constructor(deps: { redis: Redis; keyring: Keyring; logger: Logger }) {
    this.#redis = deps.redis;
    this.#keyring = deps.keyring;
    this.#logger = deps.logger;
  }

  /** Resolves the key onto the exchange: identity, minted token, and the Authorization sent upstream. */
  async resolve(ex: Exchange, key: string): Promise<void> {
    const hash = hashApiKey(key);
    let resolved = this.#cache.get(hash);
    if (!resolved) {
      let raw: string | null;
      try {
        raw = await this.#redis.get(apiKeyRedisKeys.entry(hash));
      } catch {
        throw new ApiError('UPSTREAM_UNAVAILABLE', 'API key store unavailable', { headers: { 'retry-after': '2' } });
      }
      if (!raw) throw invalidApiKey();
      resolved = this.#build(hash, raw);
    }
    this.#apply(ex, hash, this.#fresh(hash, resolved));
  }

  /** The gate found the entry changed (a role change): the request goes on with the new identity. */
  refresh(ex: Exchange, raw: string): void {
    if (!ex.apiKey) return;
    this.#apply(ex, ex.apiKey.hash, this.#build(ex.apiKey.hash, raw));
  }

  /** The gate found the entry gone. */
  forget(hash: string): void {
    this.#cache.delete(hash);
  }

  /** Last-used time, coarse: at most one write per key per granularity per instance, never awaited. */
  noteUsed(keyId: string): void {
    const now = nowSeconds();
    const last = this.#lastUsedWritten.get(keyId) ?? 0;
    if (now - last < API_KEY_LAST_USED_GRANULARITY_SECONDS) return;
    if (this.#lastUsedWritten.size >= MAX_CACHED_KEYS) this.#lastUsedWritten.clear();
    this.#lastUsedWritten.set(keyId, now);
    this.#redis.set(apiKeyRedisKeys.lastUsed(keyId), String(now), 'EX', 400 * 86_400).catch((error: unknown) => {
      this.#logger.warn({ err: { message: (error as Error).message }, apiKeyId: keyId }, 'api key last-used write failed');
    });
  }

  #build(hash: string, raw: string): Resolved {
    const parsed = parseEntry(raw);
    if (!parsed) {
      this.#logger.error({ keyHashPrefix: hash.slice(0, 12) }, 'malformed api key entry in redis');
      throw invalidApiKey();
    }
    const resolved = this.#mint(raw, parsed);
    this.#remember(hash, resolved);
    return resolved;
  }

  #fresh(hash: string, resolved: Resolved): Resolved {
    if (resolved.claims.exp - nowSeconds() > MINT_REUSE_MARGIN_SECONDS) return resolved;
    const renewed = this.#mint(resolved.entry, resolved.parsed);
    this.#remember(hash, renewed);
    return renewed;
  }

  #mint(raw: string, parsed: ApiKeyEntry): Resolved {
    if (expired(parsed)) throw invalidApiKey();
    const identity = { sub: parsed.userId, username: parsed.username, email: parsed.email, role: parsed.role };
    // never past the key's own expiry
    const untilExpiry = parsed.expiresAt ? Math.floor((Date.parse(parsed.expiresAt) - Date.now()) / 1000) : MINTED_TOKEN_TTL_SECONDS;
    const ttlSeconds = Math.max(1, Math.min(MINTED_TOKEN_TTL_SECONDS, untilExpiry));
    const token = signAccessToken(this.#keyring, identity, { ttlSeconds, apiKeyId: parsed.keyId });
    // read back through the one verifier, so the claims are exactly what services will see
    return { entry: raw, parsed, token, claims: verifyAccessToken(this.#keyring, token) };
  }

  #remember(hash: string, resolved: Resolved): void {
    if (this.#cache.size >= MAX_CACHED_KEYS) {
      const oldest = this.#cache.keys().next().value;
      if (oldest !== undefined) this.#cache.delete(oldest);
    }
    this.#cache.set(hash, resolved);
  }

  #apply(ex: Exchange, hash: string, resolved: Resolved): void {
    if (expired(resolved.parsed)) {
      this.#cache.delete(hash);
      throw invalidApiKey();
    }
    ex.apiKey = { hash, keyId: resolved.parsed.keyId, entry: resolved.entry };
    ex.token = resolved.token;
    ex.claims = resolved.claims;
    ex.actor = actorFromClaims(resolved.claims);
    // the key itself never travels past the gateway (DESIGN 5b)
    ex.upstreamHeaders.authorization = `Bearer ${resolved.token}`;
  }
}
