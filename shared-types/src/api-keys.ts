/**
 * API keys (DESIGN 5b): auth writes `apikey:<sha256 hex>`, the gateway reads it with the revocation checks.
 * Shared so both sides agree on the format, the hash and the entry.
 */
import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { ROLES } from './roles.ts';

export const API_KEY_PREFIX = 'sk-';
/** random bytes behind the prefix (DESIGN: at least 32) */
export const API_KEY_RANDOM_BYTES = 32;
/** `sk-` + base64url of 32 bytes (43 characters) */
export const API_KEY_PATTERN = /^sk-[A-Za-z0-9_-]{43,}$/;
/** how many characters of a key are shown back in listings, so a user can tell keys apart */
export const API_KEY_SHOWN_PREFIX_LENGTH = 10;
/** minted access tokens for API-key requests live at most this long (DESIGN 2) */
export const MINTED_TOKEN_TTL_SECONDS = 300;
/** last-used times are written at most once per this many seconds per key */
export const API_KEY_LAST_USED_GRANULARITY_SECONDS = 60;

export function generateApiKey(): string {
  return `${API_KEY_PREFIX}${randomBytes(API_KEY_RANDOM_BYTES).toString('base64url')}`;
}

export function looksLikeApiKey(token: string): boolean {
  return token.startsWith(API_KEY_PREFIX);
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export const apiKeyRedisKeys = {
  /** = JSON apiKeyEntry; TTL until the key's expiry when it has one */
  entry: (sha256Hex: string) => `apikey:${sha256Hex}`,
  /** = unix seconds of the last request with the key (coarse, see API_KEY_LAST_USED_GRANULARITY_SECONDS) */
  lastUsed: (keyId: string) => `apikey:lastused:${keyId}`,
};

export const apiKeyEntry = z.object({
  keyId: z.string().min(1).max(64),
  userId: z.string().min(1).max(64),
  username: z.string().min(1),
  email: z.string().min(1),
  role: z.enum(ROLES),
  /** ISO time; the gateway refuses the key from then on even if the Redis TTL has not fired yet */
  expiresAt: z.string().optional(),
});
export type ApiKeyEntry = z.infer<typeof apiKeyEntry>;

/** GET /internal/api-keys/:id (auth): who owns a key and its credit limit; accounting asks on a key's first reservation */
export const internalApiKeyResponse = z.object({
  id: z.string(),
  userId: z.string(),
  creditLimit: z.number().int().min(0).nullable(),
  deleted: z.boolean(),
});
export type InternalApiKey = z.infer<typeof internalApiKeyResponse>;
