import { randomUUID } from 'node:crypto';
import { ApiError } from '@platform/shared-types';
import { z } from 'zod';
import type { Exchange, GateCheck, GatePolicy, RuleDecision } from '../engine/exchange.ts';
import { readBody } from './body.ts';
import type { Gate } from './redis-gate.ts';

/**
 * One rule per step (Express Gateway style: steps carry conditions). `window` rules allow `limit` requests
 * per `windowSeconds` (GCRA, burst = limit); `concurrency` rules allow `limit` requests at once, each holding
 * a lease until its response is over (or `leaseSeconds`, should the gateway die first).
 * Keys: `by: user` (falls back to the client IP when no one is signed in; API-key requests count under their user),
 * `api-key` (per API key; requests without one are not counted), `ip`, or `ip-body`: the client IP plus
 * the first present of `bodyFields` from a JSON body (the login identifier, to slow credential stuffing).
 */
export const rateLimitAction = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_.-]+$/),
    type: z.enum(['window', 'concurrency']).default('window'),
    limit: z.coerce.number().int().min(1),
    windowSeconds: z.coerce.number().min(0.001).default(60),
    by: z.enum(['user', 'api-key', 'ip', 'ip-body']).default('user'),
    bodyFields: z.array(z.string()).default([]),
    maxBodyBytes: z.coerce.number().int().min(1).default(16_384),
    leaseSeconds: z.coerce.number().min(1).default(600),
  })
  .strict()
  .refine((rule) => rule.by !== 'ip-body' || rule.bodyFields.length > 0, 'ip-body rules need bodyFields');
export type RateLimitRule = z.infer<typeof rateLimitAction>;

export interface RateLimitDeps {
  gate: Gate;
  keyPrefix: () => string;
  onDecision?: (rule: string, decision: 'allowed' | 'limited', source: string) => void;
}

function bodyIdentifier(ex: Exchange, fields: string[]): string {
  if (!ex.bufferedBody || ex.bufferedBody.length === 0) return '';
  try {
    const parsed: unknown = JSON.parse(ex.bufferedBody.toString('utf8'));
    if (!parsed || typeof parsed !== 'object') return '';
    for (const field of fields) {
      const value = (parsed as Record<string, unknown>)[field];
      if (typeof value === 'string' && value.length > 0) return value.trim().toLowerCase().slice(0, 256);
    }
  } catch {
    // not JSON: the service answers 400; the IP part of the key still counts
  }
  return '';
}

function subject(ex: Exchange, rule: RateLimitRule): string {
  if (rule.by === 'user' && ex.actor) return `u:${ex.actor.userId}`;
  if (rule.by === 'api-key' && ex.apiKey) return `k:${ex.apiKey.keyId}`;
  if (rule.by === 'ip-body') return `ib:${ex.clientIp}:${bodyIdentifier(ex, rule.bodyFields)}`;
  return `ip:${ex.clientIp}`;
}

/** The decision that tells the client most: a refusal with the longest wait, else the rule with the least left. */
function headline(decisions: RuleDecision[]): RuleDecision | undefined {
  let pick: RuleDecision | undefined;
  for (const d of decisions) {
    if (!pick) pick = d;
    else if (!d.allowed && (pick.allowed || d.retryAfterMs > pick.retryAfterMs)) pick = d;
    else if (d.allowed && pick.allowed && d.remaining < pick.remaining) pick = d;
  }
  return pick;
}

export function rateLimitPolicy(rule: RateLimitRule, deps: RateLimitDeps): GatePolicy & { prepare(ex: Exchange): Promise<void> } {
  return {
    kind: 'gate',
    async prepare(ex) {
      if (rule.by === 'ip-body' && ex.bufferedBody === undefined) ex.bufferedBody = await readBody(ex.req, rule.maxBodyBytes);
    },
    collect(ex): GateCheck[] {
      if (rule.by === 'api-key' && !ex.apiKey) return [];
      const key = `${deps.keyPrefix()}${rule.name}:${subject(ex, rule)}`;
      if (rule.type === 'concurrency') {
        return [{ kind: 'concurrency', key, rule: rule.name, limit: rule.limit, leaseMs: Math.round(rule.leaseSeconds * 1000), leaseId: randomUUID() }];
      }
      return [{ kind: 'window', key, rule: rule.name, limit: rule.limit, periodMs: Math.round(rule.windowSeconds * 1000) }];
    },
    apply(ex, result, checks, offset) {
      if (result.source === 'unavailable') throw new ApiError('UPSTREAM_UNAVAILABLE', 'Rate limiter unavailable');
      const decisions: RuleDecision[] = [];
      for (const [index, check] of checks.entries()) {
        const decision = result.decisions[offset + index];
        if (!decision) continue;
        decisions.push(decision);
        deps.onDecision?.(rule.name, decision.allowed ? 'allowed' : 'limited', result.source);
        if (check.kind === 'concurrency' && decision.allowed) {
          const source = result.source;
          const release = () => deps.gate.release(check.key, check.leaseId, source);
          if (ex.res.closed)
            release(); // the client already left
          else ex.onClose.push(release);
        }
      }
      mergeHeaders(ex, decisions);
      const refused = decisions.find((d) => !d.allowed);
      if (refused) {
        const retryAfter = Math.max(1, Math.ceil(refused.retryAfterMs / 1000));
        throw new ApiError('RATE_LIMITED', `Rate limit "${rule.name}" exceeded; retry in ${retryAfter} s`, {
          headers: { 'retry-after': String(retryAfter) },
          extensions: { retryAfter },
        });
      }
    },
  };
}

/** RateLimit-* headers describe the tightest rule seen so far in this request. */
function mergeHeaders(ex: Exchange, decisions: RuleDecision[]): void {
  const previous = ex.responseHeaders['ratelimit-remaining'];
  const pick = headline(decisions);
  if (!pick) return;
  if (previous !== undefined && pick.allowed && Number(previous) <= pick.remaining) return;
  ex.responseHeaders['ratelimit-limit'] = String(pick.limit);
  ex.responseHeaders['ratelimit-remaining'] = String(pick.remaining);
  ex.responseHeaders['ratelimit-reset'] = String(Math.max(0, Math.ceil((pick.allowed ? pick.resetMs : pick.retryAfterMs) / 1000)));
}
