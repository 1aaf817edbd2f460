import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ApiError } from '@platform/shared-types';
import { z } from 'zod';
import type { BcryptPool } from './bcrypt-pool.ts';

export const PASSWORD_MIN_CHARS = 10;
export const PASSWORD_MAX_CHARS = 128;
/** bcrypt reads only this many bytes of its input; longer passwords are pre-hashed (see bcryptInput). */
export const BCRYPT_MAX_BYTES = 72;

/** The shipped list (auth/common-passwords.txt), lower-cased; `#` lines are comments. */
export const COMMON_PASSWORDS: ReadonlySet<string> = new Set(
  readFileSync(new URL('../../common-passwords.txt', import.meta.url), 'utf8')
    .split('\n')
    .map((line) => line.trim().toLowerCase())
    .filter((line) => line.length > 0 && !line.startsWith('#')),
);

const chars = (value: string) => [...value].length;

/** Shape of a new password in a body: length in characters (code points), 10 to 128. */
export const newPasswordSchema = z
  .string()
  .refine((value) => chars(value) >= PASSWORD_MIN_CHARS, `must be at least ${PASSWORD_MIN_CHARS} characters`)
  .refine((value) => chars(value) <= PASSWORD_MAX_CHARS, `must be at most ${PASSWORD_MAX_CHARS} characters`);

/** A presented (existing) password: bounded so nobody makes us hash megabytes. */
export const presentedPasswordSchema = z.string().min(1).max(1024);

/** Rules that need the account: not the username, not the email (or its local part), not a common password. */
export function assertPasswordAllowed(password: string, account: { username: string; email: string }): void {
  const lower = password.normalize('NFKC').toLowerCase();
  const email = account.email.toLowerCase();
  const problems: string[] = [];
  if (lower === account.username.toLowerCase()) problems.push('must not be the username');
  if (lower === email || lower === email.split('@')[0]) problems.push('must not be the email address');
  if (COMMON_PASSWORDS.has(lower)) problems.push('is too common');
  if (problems.length > 0) {
    throw new ApiError('VALIDATION_FAILED', 'Password not allowed', { errors: problems.map((message) => ({ path: 'body.password', message })) });
  }
}

/**
 * bcrypt ignores everything past 72 bytes, so two long passwords sharing a 72-byte prefix would match.
 * Every password is therefore fed to bcrypt as base64(SHA-256(NFC utf-8)): 44 bytes, with no truncation
 * and no NUL bytes, so all 128 characters count.
 */
export function bcryptInput(password: string): string {
  return createHash('sha256').update(password.normalize('NFC'), 'utf8').digest('base64');
}

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  verify(password: string, hash: string): Promise<boolean>;
  /** burns the same work as a real verify, for accounts that do not exist */
  verifyDummy(password: string): Promise<void>;
}

export async function createPasswordHasher(pool: BcryptPool, cost: number): Promise<PasswordHasher> {
  // A real hash at the configured cost, so unknown accounts cost exactly as much as known ones.
  const dummyHash = await pool.hash(bcryptInput(`dummy:${randomUUID()}`), cost);
  return {
    hash: (password) => pool.hash(bcryptInput(password), cost),
    verify: (password, hash) => pool.compare(bcryptInput(password), hash),
    verifyDummy: async (password) => {
      await pool.compare(bcryptInput(password), dummyHash);
    },
  };
}
