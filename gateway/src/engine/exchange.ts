import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AccessClaims, Actor } from '@platform/shared-types';
import type { BodyFraming } from './framing.ts';

/** One request on its way through a pipeline. Policies read and extend it. */
export interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  requestId: string;
  method: string;
  /** the path as the client sent it (validated), forwarded unchanged */
  path: string;
  /** decoded path without a trailing slash, for matching */
  matchPath: string;
  /** `?...` or '' */
  query: string;
  clientIp: string;
  /** pipeline name, for logs and metrics */
  route: string;
  startedAt: number;
  token?: string;
  claims?: AccessClaims;
  actor?: Actor;
  /** set for `Bearer sk-...` requests: the key's hash (never the key) and the Redis entry it was resolved from */
  apiKey?: { hash: string; keyId: string; entry: string };
  /** headers to send upstream; the engine prefills them without hop-by-hop and client identity headers */
  upstreamHeaders: Record<string, string | string[]>;
  /** how the client delimited the body (checked at entry; the proxy frames what it forwards from it) */
  bodyFraming: BodyFraming;
  /** a request body a policy had to read (the rate limiter's body field); the proxy sends it instead of the stream */
  bufferedBody?: Buffer;
  /** headers every response of this request carries (CORS, RateLimit-*) */
  responseHeaders: Record<string, string>;
  /** run when the response is over (finished or the client left): lease releases */
  onClose: Array<() => void>;
  /** set once a policy has answered the request */
  answered: boolean;
}

/** Checks a gate policy needs answered by Redis (or the in-memory fallback), all in one round trip. */
export type GateCheck =
  | { kind: 'revoked-jti'; key: string; jti: string }
  | { kind: 'revoked-before'; key: string; userId: string; iat: number; iatMs?: number }
  /** the API key's entry must still exist (else the request is refused like a revoked token); `expected` is the entry as resolved */
  | { kind: 'api-key'; key: string; expected: string }
  | { kind: 'window'; key: string; rule: string; limit: number; periodMs: number }
  | { kind: 'concurrency'; key: string; rule: string; limit: number; leaseMs: number; leaseId: string };

export interface RuleDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  resetMs: number;
  retryAfterMs: number;
}

export interface GateResult {
  revoked: boolean;
  /** who answered: redis, the in-memory fallback, or nobody (fail-closed with Redis down) */
  source: 'redis' | 'memory' | 'unavailable';
  decisions: Array<RuleDecision | undefined>;
  /** the API key's entry as Redis holds it now, when it differs from the one the request was resolved with (a role change) */
  apiKeyEntry?: string;
  /** Redis is down and this instance has no loaded copy of the revocations: nobody can vouch for a token */
  revocationUnknown?: true;
}

export type StepPolicy = { kind: 'step'; run(ex: Exchange): void | Promise<void> };
/**
 * `apply` gets the result of the whole gate call of its stage: the decisions for its own `checks` start at `offset`
 * (a stage's members share one list of checks, in member order).
 */
export type GatePolicy = {
  kind: 'gate';
  collect(ex: Exchange): GateCheck[];
  apply(ex: Exchange, result: GateResult, checks: GateCheck[], offset: number): void;
};
export type PolicyInstance = StepPolicy | GatePolicy;
