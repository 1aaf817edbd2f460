import { nodeEnvSchema, portSchema, secretsSchema } from '@platform/shared-types';
import { z } from 'zod';

export const configSchema = secretsSchema.extend({
  NODE_ENV: nodeEnvSchema,
  PORT: portSchema(3002),
  HOST: z.string().default('127.0.0.1'),
  LOG_LEVEL: z.string().optional(),
  MONGO_URL: z.string().regex(/^mongodb(\+srv)?:\/\//, 'must be a mongodb:// URL'),
  MONGO_DB: z.string().default('chat'),
  REDIS_URL: z.string().regex(/^rediss?:\/\//, 'must be a redis:// URL'),
});

export type Config = z.infer<typeof configSchema>;
