import { nodeEnvSchema, portSchema, secretsSchema } from '@platform/shared-types';
import { z } from 'zod';

export const configSchema = secretsSchema.extend({
  NODE_ENV: nodeEnvSchema,
  PORT: portSchema(3003),
  HOST: z.string().default('127.0.0.1'),
  LOG_LEVEL: z.string().optional(),
  PG_URL: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL'),
  PG_DB: z
    .string()
    .regex(/^[a-z_][a-z0-9_]*$/)
    .default('monitoring'),
  REDIS_URL: z.string().regex(/^rediss?:\/\//, 'must be a redis:// URL'),
});

export type Config = z.infer<typeof configSchema>;
