import { nodeEnvSchema, portSchema, secretsSchema } from '@platform/shared-types';
import { z } from 'zod';

export const configSchema = secretsSchema.extend({
  NODE_ENV: nodeEnvSchema,
  PORT: portSchema(8080),
  HOST: z.string().default('127.0.0.1'),
  LOG_LEVEL: z.string().optional(),
  REDIS_URL: z.string().regex(/^rediss?:\/\//, 'must be a redis:// URL'),
  AUTH_URL: z.url().default('http://127.0.0.1:3000'),
  ACCOUNTING_URL: z.url().default('http://127.0.0.1:3001'),
  CHAT_URL: z.url().default('http://127.0.0.1:3002'),
  MONITORING_URL: z.url().default('http://127.0.0.1:3003'),
});

export type Config = z.infer<typeof configSchema>;

/** DESIGN section 7: routing by prefix; paths are forwarded unchanged. */
export function routeTable(config: Config): Array<{ prefix: string; target: string; service: string }> {
  const table: Array<[string, string, string]> = [
    ['/api/auth', config.AUTH_URL, 'auth'],
    ['/api/admin', config.AUTH_URL, 'auth'],
    ['/api/profile', config.AUTH_URL, 'auth'],
    ['/api/credits', config.ACCOUNTING_URL, 'accounting'],
    ['/api/usage', config.ACCOUNTING_URL, 'accounting'],
    ['/api/models', config.ACCOUNTING_URL, 'accounting'],
    ['/api/streaming-sessions', config.ACCOUNTING_URL, 'accounting'],
    ['/api/chat', config.CHAT_URL, 'chat'],
    ['/api/sessions', config.CHAT_URL, 'chat'],
    ['/api/v1/chat', config.CHAT_URL, 'chat'],
    ['/api/supervised-students', config.MONITORING_URL, 'monitoring'],
    ['/api/monitoring', config.MONITORING_URL, 'monitoring'],
    ['/api/observe', config.MONITORING_URL, 'monitoring'],
    ['/monitoring', config.MONITORING_URL, 'monitoring'],
  ];
  return table.map(([prefix, target, service]) => ({ prefix, target, service }));
}
