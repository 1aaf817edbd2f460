import { z } from 'zod';
import { LEDGER_TYPES, MAX_CREDITS } from './domain.ts';

export const userId = z.string().min(1).max(64);
/** credits are positive integers in 1..1,000,000,000 (JSON numbers only: strings and floats are refused) */
export const credits = z.number().int().min(1).max(MAX_CREDITS);
export const tokens = z.number().int().min(0).max(10_000_000);
export const modelId = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'unknown model id format');
export const ownerQuery = z.object({ userId: userId.optional() }).strict();
export const pageQuery = z
  .object({
    userId: userId.optional(),
    page: z.coerce.number().int().min(1).max(100_000).default(1),
    limit: z.coerce.number().int().min(1).max(100).default(20),
    type: z.enum(LEDGER_TYPES).optional(),
  })
  .strict();
export const idempotencyKey = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces');
