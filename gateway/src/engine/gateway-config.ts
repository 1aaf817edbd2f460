import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

/**
 * The routing file, in Express Gateway's shape: `http`, `apiEndpoints`, `serviceEndpoints`, `policies`,
 * `pipelines` (each a list of `{policyName: [{condition?, action?}]}`), plus our `redis` section.
 * Per-policy action schemas are checked when the pipelines are compiled (see compile.ts).
 */

export type Condition =
  | { name: 'always' }
  | { name: 'never' }
  | { name: 'pathExact'; path: string }
  | { name: 'pathMatch'; pattern: string }
  | { name: 'method'; methods: string | string[] }
  | { name: 'allOf'; conditions: Condition[] }
  | { name: 'oneOf'; conditions: Condition[] }
  | { name: 'not'; condition: Condition };

export const conditionSchema: z.ZodType<Condition> = z.lazy(() =>
  z.discriminatedUnion('name', [
    z.object({ name: z.literal('always') }).strict(),
    z.object({ name: z.literal('never') }).strict(),
    z.object({ name: z.literal('pathExact'), path: z.string().startsWith('/') }).strict(),
    z
      .object({ name: z.literal('pathMatch'), pattern: z.string().min(1) })
      .strict()
      .refine((c) => isValidRegex(c.pattern), 'pattern is not a valid regular expression'),
    z.object({ name: z.literal('method'), methods: z.union([z.string(), z.array(z.string()).min(1)]) }).strict(),
    z.object({ name: z.literal('allOf'), conditions: z.array(conditionSchema).min(1) }).strict(),
    z.object({ name: z.literal('oneOf'), conditions: z.array(conditionSchema).min(1) }).strict(),
    z.object({ name: z.literal('not'), condition: conditionSchema }).strict(),
  ]),
);

function isValidRegex(pattern: string): boolean {
  try {
    new RegExp(pattern);
    return true;
  } catch {
    return false;
  }
}

const toArray = <T>(value: T | T[]): T[] => (Array.isArray(value) ? value : [value]);
const pathPattern = z.string().regex(/^\/[A-Za-z0-9._~:/*-]*$/, 'a path starts with / and uses plain characters, :param segments and a trailing *');

const apiEndpointSchema = z
  .object({
    host: z.string().default('*'),
    paths: z.union([pathPattern, z.array(pathPattern).min(1)]).transform(toArray),
    methods: z
      .union([z.string(), z.array(z.string()).min(1)])
      .transform((m) => toArray(m).map((x) => x.toUpperCase()))
      .optional(),
  })
  .strict();

const serviceEndpointSchema = z
  .object({
    url: z.url(),
    readyPath: z.string().startsWith('/').default('/ready'),
    openapiPath: z.string().startsWith('/').default('/openapi.json'),
    /** sockets of the ordinary pool */
    connections: z.coerce.number().int().min(1).max(1024).default(64),
    /** sockets of the long-lived pool (proxy `pool: long-lived`: event streams, relays, downloads, model runs) */
    longLivedConnections: z.coerce.number().int().min(1).max(16_384).default(1024),
    connectTimeoutMs: z.coerce.number().int().min(1).default(2_000),
    headersTimeoutMs: z.coerce.number().int().min(1).default(30_000),
  })
  .strict();

const stepSchema = z
  .object({
    condition: conditionSchema.optional(),
    action: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

const pipelineSchema = z
  .object({
    apiEndpoints: z.array(z.string()).min(1),
    policies: z.array(z.record(z.string(), z.array(stepSchema).nullable()).refine((p) => Object.keys(p).length === 1, 'one policy per list entry')),
  })
  .strict();

const booleanish = z.union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')]);

export const gatewayConfigSchema = z
  .object({
    http: z
      .object({
        port: z.coerce.number().int().min(0).max(65535),
        host: z.string().default('127.0.0.1'),
        /** trust X-Forwarded-For/-Proto from the client (only behind another proxy) */
        trustProxy: booleanish.default(false),
        /** the whole request head (line and headers) must arrive within this, from its first byte or the connection's start */
        headersTimeoutMs: z.coerce.number().int().min(100).max(600_000).default(15_000),
        /** a request body that sends nothing for this long is cut off (the connection closes) */
        bodyIdleTimeoutMs: z.coerce.number().int().min(100).max(3_600_000).default(30_000),
        /** an idle kept-alive client connection closes after this */
        keepAliveTimeoutMs: z.coerce.number().int().min(100).max(600_000).default(30_000),
        /** client connections open at once; past it new ones get 503 and are closed */
        maxConnections: z.coerce.number().int().min(1).max(1_000_000).default(10_000),
        /** client connections open at once from one address (behind trustProxy: the proxy's); past it 429 and closed */
        maxConnectionsPerClient: z.coerce.number().int().min(1).max(1_000_000).default(256),
      })
      .strict(),
    redis: z
      .object({
        /** open: fall back to a per-instance in-memory limiter when Redis is down; closed: refuse with 503 */
        failMode: z.enum(['open', 'closed']).default('open'),
        keyPrefix: z.string().default('rl:'),
        commandTimeoutMs: z.coerce.number().int().min(10).max(10_000).default(250),
      })
      .strict()
      .default({ failMode: 'open', keyPrefix: 'rl:', commandTimeoutMs: 250 }),
    reload: z
      .object({ debounceMs: z.coerce.number().int().min(0).max(10_000).default(150) })
      .strict()
      .default({ debounceMs: 150 }),
    apiEndpoints: z.record(z.string(), apiEndpointSchema),
    serviceEndpoints: z.record(z.string(), serviceEndpointSchema),
    policies: z.array(z.string()).min(1),
    pipelines: z.record(z.string(), pipelineSchema),
  })
  .strict();

export type GatewayConfig = z.infer<typeof gatewayConfigSchema>;
export type ApiEndpointConfig = GatewayConfig['apiEndpoints'][string];
export type ServiceEndpointConfig = GatewayConfig['serviceEndpoints'][string];
export type StepConfig = z.infer<typeof stepSchema>;

const VARIABLE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** `${VAR}` and `${VAR:-default}` in string values (after YAML parsing, so a value can never inject YAML structure). */
export function substitute(value: unknown, env: Record<string, string | undefined>, missing: string[], path = ''): unknown {
  if (typeof value === 'string') {
    return value.replace(VARIABLE, (_match, name: string, fallback: string | undefined) => {
      const found = env[name];
      if (found !== undefined && found !== '') return found;
      if (fallback !== undefined) return fallback;
      missing.push(`${path || '(root)'}: \${${name}} is not set and has no default`);
      return '';
    });
  }
  if (Array.isArray(value)) return value.map((item, index) => substitute(item, env, missing, `${path}.${index}`));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, substitute(inner, env, missing, path ? `${path}.${key}` : key)]));
  }
  return value;
}

export type ParsedConfig = { ok: true; config: GatewayConfig } | { ok: false; issues: string[] };

/** YAML text -> substituted -> schema-checked config, or the reasons it is not one. */
export function parseGatewayConfig(text: string, env: Record<string, string | undefined>): ParsedConfig {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (error) {
    return { ok: false, issues: [`YAML: ${(error as Error).message.split('\n')[0]}`] };
  }
  const missing: string[] = [];
  const substituted = substitute(raw, env, missing);
  if (missing.length > 0) return { ok: false, issues: missing };
  const parsed = gatewayConfigSchema.safeParse(substituted);
  if (!parsed.success) return { ok: false, issues: parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`) };
  return { ok: true, config: parsed.data };
}
