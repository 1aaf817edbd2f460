import { z } from 'zod';
import { MIN_SECRET_BYTES } from './tokens.ts';

const secret = (name: string) =>
  z
    .string({ error: `${name} is required` })
    .refine((value) => Buffer.byteLength(value) >= MIN_SECRET_BYTES, `${name} must be at least ${MIN_SECRET_BYTES} bytes`);

/** Secrets every part needs (DESIGN section 2). There are no defaults: dev runs generate them. */
export const secretsSchema = z.object({
  JWT_ACCESS_SECRET: secret('JWT_ACCESS_SECRET'),
  JWT_ACCESS_SECRET_PREVIOUS: secret('JWT_ACCESS_SECRET_PREVIOUS').optional(),
  JWT_REFRESH_SECRET: secret('JWT_REFRESH_SECRET'),
  INTERNAL_SECRET: secret('INTERNAL_SECRET'),
});

export const nodeEnvSchema = z.enum(['development', 'test', 'production']).default('development');
export const portSchema = (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback);

/** A service's private ops listener (Prometheus /metrics, DESIGN 7); unset: see `opsAddress` in ops.ts. */
export const opsListenerSchema = {
  OPS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  OPS_HOST: z.string().min(1).optional(),
};

/** pino's levels; anything else in LOG_LEVEL is a configuration error, not a crash at the first log line */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const logLevelSchema = z.enum(LOG_LEVELS).optional();
export const redisUrlSchema = z.string().regex(/^rediss?:\/\//, 'must be a redis:// URL');

/**
 * What every part reads: the secrets, NODE_ENV, where it listens (PORT, HOST), LOG_LEVEL (a pino level; unset:
 * silent in tests, info otherwise) and REDIS_URL. Each part extends it with its own settings.
 */
export function baseConfigSchema(defaults: { port: number }) {
  return secretsSchema.extend({
    NODE_ENV: nodeEnvSchema,
    PORT: portSchema(defaults.port),
    HOST: z.string().min(1).default('127.0.0.1'),
    LOG_LEVEL: logLevelSchema,
    REDIS_URL: redisUrlSchema,
  });
}

/** The base of the four services behind the gateway: the base block and the private ops listener. */
export function serviceConfigSchema(defaults: { port: number }) {
  return baseConfigSchema(defaults).extend(opsListenerSchema);
}

/** PG_URL (the server) and PG_DB (the database name, default `db`) of a PostgreSQL-backed service. */
export function postgresConfig(db: string) {
  return {
    PG_URL: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL'),
    PG_DB: z
      .string()
      .regex(/^[a-z_][a-z0-9_]*$/)
      .default(db),
  };
}

/** MONGO_URL (the server) and MONGO_DB (the database name, default `db`) of a MongoDB-backed service. */
export function mongoConfig(db: string) {
  return {
    MONGO_URL: z.string().regex(/^mongodb(\+srv)?:\/\//, 'must be a mongodb:// URL'),
    MONGO_DB: z.string().default(db),
  };
}

/** Parses once, freezes, and exits the process on bad config (names the fields, never the values). */
export function loadConfig<S extends z.ZodType>(schema: S, env: Record<string, string | undefined> = process.env): Readonly<z.infer<S>> {
  const result = parseConfig(schema, env);
  if (!result.ok) {
    process.stderr.write(`invalid configuration:\n${result.issues.map((issue) => `  - ${issue}`).join('\n')}\n`);
    process.exit(1);
  }
  return result.config;
}

/** The testable core of loadConfig. */
export function parseConfig<S extends z.ZodType>(
  schema: S,
  env: Record<string, string | undefined>,
): { ok: true; config: Readonly<z.infer<S>> } | { ok: false; issues: string[] } {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    return { ok: false, issues: parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`) };
  }
  return { ok: true, config: deepFreeze(parsed.data) };
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}
