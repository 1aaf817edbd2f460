import type { Keyring, Logger } from '@platform/shared-types';
import type { Redis } from 'ioredis';
import type { z } from 'zod';
import { ApiKeyResolver } from '../policies/api-keys.ts';
import { corsAction, corsPolicy } from '../policies/cors.ts';
import { docsPolicy, endpointAction, healthPolicy } from '../policies/endpoints.ts';
import { identityHeadersAction, identityHeadersPolicy } from '../policies/identity-headers.ts';
import { proxyAction, proxyPolicy } from '../policies/proxy.ts';
import { rateLimitAction, rateLimitPolicy } from '../policies/rate-limit.ts';
import type { Gate } from '../policies/redis-gate.ts';
import { revocationAction, revocationPolicy } from '../policies/revocation.ts';
import { type TokenCache, verifyTokenAction, verifyTokenPolicy } from '../policies/verify-token.ts';
import { compileCondition, compilePathPattern, type Predicate } from './conditions.ts';
import type { Exchange, GatePolicy, PolicyInstance, StepPolicy } from './exchange.ts';
import type { GatewayConfig } from './gateway-config.ts';
import type { Metrics } from './metrics.ts';
import type { ServicePools, ServiceRuntime } from './services.ts';

export interface CompileDeps {
  logger: Logger;
  keyring: Keyring;
  internalSecret: string;
  gate: Gate;
  redis: Redis;
  metrics: Metrics;
  tokenCache: TokenCache;
  pools: ServicePools;
  /** resolves `Bearer sk-...` (built on first compile and kept across reloads, with its cache) */
  apiKeys?: ApiKeyResolver;
}

function apiKeysOf(deps: CompileDeps): ApiKeyResolver {
  deps.apiKeys ??= new ApiKeyResolver({ redis: deps.redis, keyring: deps.keyring, logger: deps.logger });
  return deps.apiKeys;
}

interface BuildContext {
  deps: CompileDeps;
  config: GatewayConfig;
  services: Map<string, ServiceRuntime>;
  /** the pipeline the policy is built for */
  pipeline: string;
}

/**
 * The service a request of `pipeline` goes to: the first proxy step whose condition holds (the steps run in
 * that order and the first one answers). Identity headers are signed for it (DESIGN section 3).
 */
function proxyTarget(config: GatewayConfig, pipeline: string): (ex: Exchange) => string | undefined {
  const targets: Array<{ when: Predicate; service: string }> = [];
  for (const entry of config.pipelines[pipeline]?.policies ?? []) {
    for (const step of entry.proxy ?? []) {
      const service = (step.action as { serviceEndpoint?: unknown } | undefined)?.serviceEndpoint;
      if (typeof service === 'string') targets.push({ when: compileCondition(step.condition), service });
    }
  }
  return (ex) => targets.find((target) => target.when(ex))?.service;
}

interface PolicyDefinition {
  schema: z.ZodType;
  /** answers the request itself (a pipeline needs one) */
  terminal?: boolean;
  build(action: never, ctx: BuildContext): PolicyInstance;
}

function define<S extends z.ZodType>(schema: S, build: (action: z.infer<S>, ctx: BuildContext) => PolicyInstance, terminal = false): PolicyDefinition {
  return { schema, build: build as (action: never, ctx: BuildContext) => PolicyInstance, terminal };
}

/** Every policy a config may name. */
export const POLICIES: Record<string, PolicyDefinition> = {
  cors: define(corsAction, (action) => corsPolicy(action)),
  'verify-token': define(verifyTokenAction, (_action, { deps }) =>
    verifyTokenPolicy({ keyring: deps.keyring, cache: deps.tokenCache, apiKeys: apiKeysOf(deps) }),
  ),
  revocation: define(revocationAction, (_action, { config, deps }) =>
    revocationPolicy({
      failMode: () => config.redis.failMode,
      apiKeys: apiKeysOf(deps),
      onRefusal: (reason) => deps.metrics.revocationRefusals.inc({ reason }),
    }),
  ),
  'rate-limit': define(rateLimitAction, (action, { deps, config }) =>
    rateLimitPolicy(action, {
      gate: deps.gate,
      keyPrefix: () => config.redis.keyPrefix,
      onDecision: (rule, decision, source) => deps.metrics.rateLimit.inc(rule, decision, source),
    }),
  ),
  'identity-headers': define(identityHeadersAction, (_action, { deps, config, pipeline }) =>
    identityHeadersPolicy({ internalSecret: deps.internalSecret, trustProxy: () => config.http.trustProxy, target: proxyTarget(config, pipeline) }),
  ),
  proxy: define(
    proxyAction,
    (action, { deps, services }) => {
      const service = services.get(action.serviceEndpoint) as ServiceRuntime;
      return proxyPolicy(action, {
        service,
        logger: deps.logger,
        // the instance: host:port of one of the endpoint's configured URLs (a bounded label)
        onUpstreamError: (name, kind, instance) => deps.metrics.upstreamErrors.inc({ service: name, kind, instance }),
      });
    },
    true,
  ),
  health: define(endpointAction, (action, { deps, services }) => healthPolicy(action, { services: () => services, redis: deps.redis }), true),
  docs: define(endpointAction, (action, { services }) => docsPolicy(action, { services: () => services }), true),
};

export type PipelineStage =
  | { kind: 'step'; when: Predicate; policy: StepPolicy }
  | { kind: 'gate'; members: Array<{ when: Predicate; policy: GatePolicy & { prepare?(ex: Exchange): Promise<void> } }> };

export interface CompiledRoute {
  pipeline: string;
  host: string;
  methods?: Set<string>;
  patterns: RegExp[];
  /** the same patterns ignoring case: a path that only matches these is a case variant of this route */
  casePatterns: RegExp[];
}

export interface Runtime {
  config: GatewayConfig;
  routes: CompiledRoute[];
  pipelines: Map<string, PipelineStage[]>;
  services: Map<string, ServiceRuntime>;
}

export type CompileResult = { ok: true; runtime: Runtime } | { ok: false; issues: string[] };

/**
 * Checks what the schema cannot (references between sections, each policy's action) and builds the
 * runtime: routes in pipeline order (first match wins), pipelines as stages. Adjacent gate policies
 * (revocation, rate-limit) form one stage: one Redis round trip answers all of them.
 */
export function compile(config: GatewayConfig, deps: CompileDeps): CompileResult {
  const issues: string[] = [];
  for (const name of config.policies) {
    if (name === 'metrics') issues.push(`policies: "metrics" is served on the ops listener (OPS_PORT) only, never on the public port (DESIGN 7)`);
    else if (!POLICIES[name]) issues.push(`policies: unknown policy "${name}" (known: ${Object.keys(POLICIES).join(', ')})`);
  }
  const services = deps.pools.resolve(config.serviceEndpoints);
  const base = { deps, config, services };
  const routes: CompiledRoute[] = [];
  const pipelines = new Map<string, PipelineStage[]>();

  for (const [pipelineName, pipeline] of Object.entries(config.pipelines)) {
    const stages: PipelineStage[] = [];
    let terminal = false;
    for (const endpointName of pipeline.apiEndpoints) {
      const endpoint = config.apiEndpoints[endpointName];
      if (!endpoint) {
        issues.push(`pipelines.${pipelineName}.apiEndpoints: unknown api endpoint "${endpointName}"`);
        continue;
      }
      const patterns = endpoint.paths.map(compilePathPattern);
      routes.push({
        pipeline: pipelineName,
        host: endpoint.host,
        methods: endpoint.methods ? new Set(endpoint.methods) : undefined,
        patterns,
        casePatterns: patterns.map((pattern) => new RegExp(pattern.source, 'i')),
      });
    }
    pipeline.policies.forEach((entry, index) => {
      const [policyName, steps] = Object.entries(entry)[0] as [string, GatewayConfig['pipelines'][string]['policies'][number][string]];
      const where = `pipelines.${pipelineName}.policies.${index}.${policyName}`;
      const definition = POLICIES[policyName];
      if (!definition || !config.policies.includes(policyName)) {
        issues.push(`${where}: policy "${policyName}" is not listed in policies`);
        return;
      }
      for (const [stepIndex, step] of (steps ?? [{}]).entries()) {
        const parsed = definition.schema.safeParse(step.action ?? {});
        if (!parsed.success) {
          for (const issue of parsed.error.issues) issues.push(`${where}.${stepIndex}.action.${issue.path.join('.')}: ${issue.message}`);
          continue;
        }
        const action = parsed.data as { serviceEndpoint?: string };
        if (policyName === 'proxy' && !services.has(action.serviceEndpoint ?? '')) {
          issues.push(`${where}.${stepIndex}.action.serviceEndpoint: unknown service endpoint "${action.serviceEndpoint}"`);
          continue;
        }
        const when = compileCondition(step.condition);
        const policy = definition.build(parsed.data as never, { ...base, pipeline: pipelineName });
        if (definition.terminal) terminal = true;
        if (policy.kind === 'step') stages.push({ kind: 'step', when, policy });
        else {
          const last = stages[stages.length - 1];
          if (last?.kind === 'gate') last.members.push({ when, policy });
          else stages.push({ kind: 'gate', members: [{ when, policy }] });
        }
      }
    });
    if (!terminal) issues.push(`pipelines.${pipelineName}: needs a terminal policy (proxy, health or docs)`);
    pipelines.set(pipelineName, stages);
  }
  if (issues.length > 0) return { ok: false, issues };
  return { ok: true, runtime: { config, routes, pipelines, services } };
}

/**
 * First route (in config order) whose host, method and path match. A path whose first match ignoring case
 * is a route it does not match exactly (`/api/auth/LOGIN` before the generic `/api/auth/*`) is no route at
 * all: it must not reach a looser pipeline than the one its canonical spelling gets (DESIGN 7).
 */
export function matchRoute(runtime: Runtime, ex: Pick<Exchange, 'method' | 'matchPath'>, host: string | undefined): CompiledRoute | undefined {
  let hostname: string | undefined; // worked out for the first route that names a host (most say '*')
  for (const route of runtime.routes) {
    if (route.host !== '*') {
      hostname ??= (host ?? '').replace(/:\d+$/, '').toLowerCase();
      if (route.host.toLowerCase() !== hostname) continue;
    }
    if (route.methods && !route.methods.has(ex.method)) continue;
    for (const loose of route.casePatterns) {
      if (loose.test(ex.matchPath)) return route.patterns.some((exact) => exact.test(ex.matchPath)) ? route : undefined;
    }
  }
  return undefined;
}
