import { fileURLToPath } from 'node:url';
import { baseConfigSchema, portSchema } from '@platform/shared-types';
import { z } from 'zod';

export const DEFAULT_GATEWAY_CONFIG = fileURLToPath(new URL('../config/gateway.config.yml', import.meta.url));

const positiveInteger = z
  .string()
  .regex(/^[1-9][0-9]*$/, 'must be a positive integer')
  .optional();

/** Process environment of the gateway. Routing, policies and limits live in the YAML file GATEWAY_CONFIG names. */
export const configSchema = baseConfigSchema({ port: 8080 }).extend({
  /** the private ops listener (Prometheus /metrics); never published (DESIGN 7). 0 picks a free port (tests) */
  OPS_PORT: portSchema(9464),
  OPS_HOST: z.string().default('127.0.0.1'),
  /** on SIGTERM: ms during which /readyz (ops listener) fails while requests are still served, before closing */
  SHUTDOWN_DRAIN_MS: z.coerce.number().int().min(0).max(300_000).default(0),
  AUTH_URL: z.url().default('http://127.0.0.1:3000'),
  ACCOUNTING_URL: z.url().default('http://127.0.0.1:3001'),
  CHAT_URL: z.url().default('http://127.0.0.1:3002'),
  MONITORING_URL: z.url().default('http://127.0.0.1:3003'),
  // several instances of a service, comma separated (the gateway balances over them); default: the one *_URL
  AUTH_URLS: z.string().min(1).optional(),
  ACCOUNTING_URLS: z.string().min(1).optional(),
  CHAT_URLS: z.string().min(1).optional(),
  MONITORING_URLS: z.string().min(1).optional(),
  GATEWAY_CONFIG: z.string().min(1).default(DEFAULT_GATEWAY_CONFIG),
  // read by the shipped routing file through ${VAR:-default}; listed here so they are documented and checked
  RATE_LIMIT_FAIL_MODE: z.enum(['open', 'closed']).optional(),
  RATE_LIMIT_PREFIX: z.string().min(1).optional(),
  CORS_ORIGINS: z.string().optional(),
  GATEWAY_TRUST_PROXY: z.enum(['true', 'false']).optional(),
  GATEWAY_HEADERS_TIMEOUT_MS: z.coerce.number().int().positive().optional(),
  GATEWAY_BODY_IDLE_TIMEOUT_MS: z.coerce.number().int().positive().optional(),
  GATEWAY_KEEP_ALIVE_TIMEOUT_MS: z.coerce.number().int().positive().optional(),
  GATEWAY_MAX_CONNECTIONS: z.coerce.number().int().positive().optional(),
  GATEWAY_MAX_CONNECTIONS_PER_CLIENT: z.coerce.number().int().positive().optional(),
  // requests per minute: of one user, of one API key, of sign-ins (per account, per address), of other public auth routes
  RATE_LIMIT_USER_PER_MINUTE: positiveInteger,
  RATE_LIMIT_API_KEY_PER_MINUTE: positiveInteger,
  RATE_LIMIT_LOGIN_PER_MINUTE: positiveInteger,
  RATE_LIMIT_LOGIN_IP_PER_MINUTE: positiveInteger,
  RATE_LIMIT_PUBLIC_AUTH_PER_MINUTE: positiveInteger,
  // upstream pools and per-user caps of long-lived answers (DESIGN 10)
  GATEWAY_CHAT_CONNECTIONS: positiveInteger,
  GATEWAY_CHAT_LONG_LIVED_CONNECTIONS: positiveInteger,
  RATE_LIMIT_STREAM_STARTS_PER_MINUTE: positiveInteger,
  RATE_LIMIT_STREAMS_AT_ONCE: positiveInteger,
  RATE_LIMIT_EVENT_STREAMS_AT_ONCE: positiveInteger,
  RATE_LIMIT_DOWNLOADS_AT_ONCE: positiveInteger,
  RATE_LIMIT_OBSERVE_STREAMS_AT_ONCE: positiveInteger,
});

export type Config = z.infer<typeof configSchema>;

/** Values `${VAR:-default}` in the YAML file may refer to: the process environment, then the parsed config (so tests can pass URLs in). */
export function substitutionEnv(config: Config, env: Record<string, string | undefined> = process.env): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = { ...env };
  for (const [name, value] of Object.entries(config)) {
    if (name.includes('SECRET')) continue; // secrets never go into the routing file
    if (value !== undefined) out[name] = String(value);
  }
  for (const service of ['AUTH', 'ACCOUNTING', 'CHAT', 'MONITORING'] as const) out[`${service}_URLS`] = config[`${service}_URLS`] ?? config[`${service}_URL`];
  return out;
}
