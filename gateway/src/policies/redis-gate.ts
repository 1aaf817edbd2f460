import { issuedAtMs, type Logger, type RevocationMirror } from '@platform/shared-types';
import type { Redis } from 'ioredis';
import type { GateCheck, GateResult, RuleDecision } from '../engine/exchange.ts';

/**
 * One atomic Lua script answers every check of a request: revocation (DESIGN section 5: a token issued at or
 * before `revoked:before`, compared in ms, is dead; the same rule as `isRevokedBefore`) and every
 * rate-limit rule. Windows are GCRA (a theoretical arrival time per key, burst = limit); concurrency
 * rules are a sorted set of leases scored by expiry. Nothing is written unless every rule of the request
 * allows, so a refused request never spends quota. Redis' own clock is used, so all gateway instances agree.
 *
 * The requests that reach the gate in the same event-loop turn go in one call (one round trip, one
 * command's client overhead for all of them); the script decides them one after the other, each exactly
 * as if it were alone. ARGV: group count, then per group its check count and each check's arguments;
 * KEYS: every check's key in the same order.
 *
 * Redis' own work per request is kept small (on a shared machine it competes with the gateway for a core and is
 * the tail of the gate's round trip): every plain key of the whole call (revoked jti, revoked-before, API-key
 * entry, window state) is read with one MGET up front, and a window key written by an earlier group of the same
 * call is read from the script's own table, so each group still sees what the groups before it wrote (two
 * requests of one user in one call are decided one after the other). Concurrency rules keep their sorted-set
 * calls. The reply is flat, one array per group: {1} for a revoked token or an API key whose entry is gone
 * (deleted, expired, user disabled); else {0, then allowed (1 or 0), remaining, resetMs, retryAfterMs for each
 * rate rule (window or concurrency) in check order, then the API key's entry when it differs from the expected one}.
 */
export const GATE_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local groups = tonumber(ARGV[1])
-- first pass: the plain keys, in check order (arguments per kind: j 0, b 1, k 1, w 2, c 3)
local skip = {j = 1, b = 2, k = 2, w = 3, c = 4}
local plain = {}
local a = 2
local k = 0
for g = 1, groups do
  local n = tonumber(ARGV[a])
  a = a + 1
  for i = 1, n do
    k = k + 1
    local kind = ARGV[a]
    if kind ~= 'c' then plain[#plain + 1] = KEYS[k] end
    a = a + skip[kind]
  end
end
local values = {}
if #plain > 0 then values = redis.call('MGET', unpack(plain)) end
-- second pass: decide each group in order
local written = {}
local writes = {}
local replies = {}
local p = 0
a = 2
k = 0
for g = 1, groups do
  local n = tonumber(ARGV[a])
  a = a + 1
  local out = {0}
  local o = 1
  local nw = 0
  local allowed = true
  local revoked = false
  local changed = false
  for i = 1, n do
    k = k + 1
    local key = KEYS[k]
    local kind = ARGV[a]
    local value = false
    if kind ~= 'c' then
      p = p + 1
      value = values[p]
    end
    if kind == 'j' then
      if value then revoked = true end
    elseif kind == 'b' then
      local before = value and tonumber(value)
      -- whole seconds (older values) cover their whole second; ms values as they are
      if before and before < 100000000000 then before = before * 1000 + 999 end
      if before and tonumber(ARGV[a + 1]) <= before then revoked = true end
    elseif kind == 'k' then
      if not value then revoked = true elseif value ~= ARGV[a + 1] then changed = value end
    elseif kind == 'w' then
      local limit = tonumber(ARGV[a + 1])
      local period = tonumber(ARGV[a + 2])
      local interval = period / limit
      local tat = written[key] or (value and tonumber(value)) or now
      if tat < now then tat = now end
      local newTat = tat + interval
      local allowAt = newTat - period
      if now < allowAt then
        allowed = false
        out[o + 1] = 0
        out[o + 2] = 0
        out[o + 3] = math.ceil(tat - now)
        out[o + 4] = math.ceil(allowAt - now)
      else
        out[o + 1] = 1
        out[o + 2] = math.floor((period - (newTat - now)) / interval)
        out[o + 3] = math.ceil(newTat - now)
        out[o + 4] = 0
        writes[nw + 1] = 'w'
        writes[nw + 2] = key
        writes[nw + 3] = newTat
        writes[nw + 4] = math.ceil(newTat - now)
        writes[nw + 5] = false
        nw = nw + 5
      end
      o = o + 4
    else
      local limit = tonumber(ARGV[a + 1])
      local lease = tonumber(ARGV[a + 2])
      redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
      local count = redis.call('ZCARD', key)
      if count >= limit then
        allowed = false
        local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
        local wait = 1000
        if first[2] then wait = math.max(1, math.ceil(tonumber(first[2]) - now)) end
        out[o + 1] = 0
        out[o + 2] = 0
        out[o + 3] = wait
        out[o + 4] = wait
      else
        out[o + 1] = 1
        out[o + 2] = limit - count - 1
        out[o + 3] = 0
        out[o + 4] = 0
        writes[nw + 1] = 'c'
        writes[nw + 2] = key
        writes[nw + 3] = now + lease
        writes[nw + 4] = lease
        writes[nw + 5] = ARGV[a + 3]
        nw = nw + 5
      end
      o = o + 4
    end
    a = a + skip[kind]
  end
  if revoked then
    replies[g] = {1}
  else
    if allowed then
      for w = 1, nw, 5 do
        if writes[w] == 'w' then
          redis.call('SET', writes[w + 1], writes[w + 2], 'PX', math.max(1, writes[w + 3]))
          written[writes[w + 1]] = writes[w + 2]
        else
          redis.call('ZADD', writes[w + 1], writes[w + 2], writes[w + 4])
          redis.call('PEXPIRE', writes[w + 1], writes[w + 3])
        end
      end
    end
    if changed then out[o + 1] = changed end
    replies[g] = out
  end
end
return replies
`;

/** most requests decided in one script call */
const MAX_BATCH = 128;

export const RELEASE_SCRIPT = `redis.call('ZREM', KEYS[1], ARGV[1]) return 1`;

/** {1} revoked, else {0, four integers per rate rule, the changed API-key entry?} */
type GroupReply = Array<number | string>;
type GateRedis = Redis & {
  /** keys and arguments as two lists (ioredis flattens them into the command; no spread copies) */
  gate(keyCount: number, keys: string[], args: string[]): Promise<GroupReply[]>;
  gateRelease(key: string, id: string): Promise<number>;
};

export function defineGateCommands(redis: Redis): GateRedis {
  redis.defineCommand('gate', { lua: GATE_SCRIPT });
  redis.defineCommand('gateRelease', { numberOfKeys: 1, lua: RELEASE_SCRIPT });
  return redis as GateRedis;
}

/** The per-instance fallback: the same decisions, in process memory. */
export class MemoryLimiter {
  readonly #tat = new Map<string, number>();
  readonly #leases = new Map<string, Map<string, number>>();

  decide(checks: GateCheck[], now = Date.now()): GateResult {
    this.#sweep(now);
    const decisions: Array<RuleDecision | undefined> = [];
    const writes: Array<() => void> = [];
    let allowed = true;
    for (const check of checks) {
      if (check.kind === 'window') {
        const interval = check.periodMs / check.limit;
        const tat = Math.max(this.#tat.get(check.key) ?? now, now);
        const newTat = tat + interval;
        const allowAt = newTat - check.periodMs;
        if (now < allowAt) {
          allowed = false;
          decisions.push({ allowed: false, limit: check.limit, remaining: 0, resetMs: Math.ceil(tat - now), retryAfterMs: Math.ceil(allowAt - now) });
        } else {
          decisions.push({
            allowed: true,
            limit: check.limit,
            remaining: Math.floor((check.periodMs - (newTat - now)) / interval),
            resetMs: Math.ceil(newTat - now),
            retryAfterMs: 0,
          });
          writes.push(() => this.#tat.set(check.key, newTat));
        }
      } else if (check.kind === 'concurrency') {
        const leases = this.#leases.get(check.key) ?? new Map<string, number>();
        for (const [id, expires] of leases) if (expires <= now) leases.delete(id);
        if (leases.size >= check.limit) {
          allowed = false;
          const wait = Math.max(1, Math.min(...leases.values()) - now);
          decisions.push({ allowed: false, limit: check.limit, remaining: 0, resetMs: wait, retryAfterMs: wait });
        } else {
          decisions.push({ allowed: true, limit: check.limit, remaining: check.limit - leases.size - 1, resetMs: 0, retryAfterMs: 0 });
          writes.push(() => {
            leases.set(check.leaseId, now + check.leaseMs);
            this.#leases.set(check.key, leases);
          });
        }
      } else {
        decisions.push(undefined); // revocation cannot be known without Redis
      }
    }
    if (allowed) for (const write of writes) write();
    return { revoked: false, source: 'memory', decisions };
  }

  release(key: string, leaseId: string): void {
    const leases = this.#leases.get(key);
    leases?.delete(leaseId);
    if (leases?.size === 0) this.#leases.delete(key);
  }

  #lastSweep = 0;
  #sweep(now: number): void {
    if (now - this.#lastSweep < 10_000) return;
    this.#lastSweep = now;
    for (const [key, tat] of this.#tat) if (tat <= now) this.#tat.delete(key);
    for (const [key, leases] of this.#leases) {
      for (const [id, expires] of leases) if (expires <= now) leases.delete(id);
      if (leases.size === 0) this.#leases.delete(key);
    }
  }
}

export interface Gate {
  decide(checks: GateCheck[]): Promise<GateResult>;
  release(key: string, leaseId: string, source: GateResult['source']): void;
}

/**
 * Revocation without Redis: this instance's copy (fed by the revocation stream). Never fail-open: without a
 * loaded copy the answer is "unknown" and the token is refused.
 */
function revocationFromMirror(checks: GateCheck[], mirror: RevocationMirror | undefined): Pick<GateResult, 'revoked' | 'revocationUnknown'> {
  const jti = checks.find((check) => check.kind === 'revoked-jti');
  const before = checks.find((check) => check.kind === 'revoked-before');
  if (!jti && !before) return { revoked: false };
  if (!mirror?.synced) return { revoked: false, revocationUnknown: true };
  const token = { jti: jti?.jti ?? '', sub: before?.userId ?? '', iat: before?.iat ?? 0, iatMs: before?.iatMs };
  return { revoked: mirror.isRevoked(token) };
}

/**
 * Redis when it answers; else the in-memory limiter (fail-open) or "unavailable" (fail-closed) for rate limits,
 * and the local revocation copy for revocation. Recovers when ioredis reconnects.
 */
export function createGate(deps: {
  redis: GateRedis;
  logger: Logger;
  failMode: () => 'open' | 'closed';
  onFallback?: () => void;
  revocations?: RevocationMirror;
}): Gate {
  const memory = new MemoryLimiter();
  let degraded = false;
  const noteDown = (error: unknown) => {
    deps.onFallback?.();
    if (!degraded) {
      degraded = true;
      deps.logger.warn({ err: { message: (error as Error)?.message ?? String(error) }, failMode: deps.failMode() }, 'redis unavailable: rate limits degraded');
    }
  };
  const fallback = (checks: GateCheck[]): GateResult => {
    if (deps.failMode() === 'closed') return { revoked: false, source: 'unavailable', decisions: checks.map(() => undefined) };
    const revocation = revocationFromMirror(checks, deps.revocations);
    // a revoked token spends no quota, as with Redis
    if (revocation.revoked) return { revoked: true, source: 'memory', decisions: checks.map(() => undefined) };
    return { ...memory.decide(checks), ...revocation };
  };

  const toResult = (checks: GateCheck[], reply: GroupReply): GateResult => {
    if (reply[0] === 1) return { revoked: true, source: 'redis', decisions: checks.map(() => undefined) };
    let at = 1;
    const decisions: Array<RuleDecision | undefined> = [];
    for (const check of checks) {
      if (check.kind !== 'window' && check.kind !== 'concurrency') {
        decisions.push(undefined);
        continue;
      }
      decisions.push({
        allowed: reply[at] === 1,
        limit: check.limit,
        remaining: Number(reply[at + 1] ?? 0),
        resetMs: Number(reply[at + 2] ?? 0),
        retryAfterMs: Number(reply[at + 3] ?? 0),
      });
      at += 4;
    }
    const entry = reply[at];
    return { revoked: false, source: 'redis', decisions, ...(typeof entry === 'string' ? { apiKeyEntry: entry } : {}) };
  };

  interface Waiting {
    checks: GateCheck[];
    resolve(result: GateResult): void;
  }
  let batch: Waiting[] = [];

  /** Sends every request that reached the gate during this event-loop turn as one script call. */
  const flush = async () => {
    if (batch.length === 0) return;
    const waiting = batch;
    batch = [];
    if (deps.redis.status !== 'ready') {
      noteDown(new Error(`redis ${deps.redis.status}`));
      for (const w of waiting) w.resolve(fallback(w.checks));
      return;
    }
    const keys: string[] = [];
    const args: string[] = [String(waiting.length)];
    for (const { checks } of waiting) {
      args.push(String(checks.length));
      for (const check of checks) {
        keys.push(check.key);
        if (check.kind === 'revoked-jti') args.push('j');
        else if (check.kind === 'revoked-before') args.push('b', String(issuedAtMs(check)));
        else if (check.kind === 'api-key') args.push('k', check.expected);
        else if (check.kind === 'window') args.push('w', String(check.limit), String(check.periodMs));
        else args.push('c', String(check.limit), String(check.leaseMs), check.leaseId);
      }
    }
    let replies: GroupReply[];
    try {
      replies = await deps.redis.gate(keys.length, keys, args);
    } catch (error) {
      noteDown(error);
      for (const w of waiting) w.resolve(fallback(w.checks));
      return;
    }
    if (degraded) {
      degraded = false;
      deps.logger.info('redis is back: rate limits and revocation in Redis again');
    }
    waiting.forEach((w, index) => {
      w.resolve(toResult(w.checks, replies[index] ?? [0]));
    });
  };

  return {
    decide(checks) {
      if (checks.length === 0) return Promise.resolve({ revoked: false, source: 'redis', decisions: [] });
      return new Promise<GateResult>((resolve) => {
        if (batch.length === 0) setImmediate(() => void flush());
        batch.push({ checks, resolve });
        if (batch.length >= MAX_BATCH) void flush(); // bounded script run time; the scheduled flush finds an empty batch
      });
    },
    release(key, leaseId, source) {
      if (source === 'memory') return memory.release(key, leaseId);
      if (source !== 'redis') return;
      deps.redis.gateRelease(key, leaseId).catch((error: unknown) => {
        // the lease expires on its own (leaseMs) when Redis cannot take the release
        deps.logger.warn({ err: { message: (error as Error).message } }, 'lease release failed');
      });
    },
  };
}
