import { randomUUID } from 'node:crypto';
import { createLogger } from '@platform/shared-types';
import { storeUrls } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import type { GateCheck, GateResult } from '../../src/engine/exchange.ts';
import { createGate, defineGateCommands, type Gate } from '../../src/policies/redis-gate.ts';
import { runPrefix } from '../support/harness.ts';

/**
 * The gate's one script call against the real Redis, with several requests in one call (they reach the gate in the
 * same event-loop turn): each is decided as if it were alone, in order, and a refusal of one never touches another.
 */
describe('gateway: the Redis gate decides a whole batch in one call', () => {
  let redis: ReturnType<typeof defineGateCommands>;
  let gate: Gate;
  let prefix: string;
  let calls = 0;

  before(async () => {
    redis = defineGateCommands(new Redis(storeUrls().REDIS_URL, { maxRetriesPerRequest: 0 }));
    await redis.ping();
    const gateCommand = redis.gate.bind(redis);
    // counts the script calls, so a test can tell that its requests went in one
    redis.gate = (keyCount, keys, args) => {
      calls++;
      return gateCommand(keyCount, keys, args);
    };
    gate = createGate({ redis, logger: createLogger('gate-test', { level: 'silent', nodeEnv: 'test' }), failMode: () => 'open' });
  });
  beforeEach(() => {
    prefix = runPrefix();
    calls = 0;
  });
  after(() => redis.disconnect());

  const token = (jti: string, userId: string, iatMs: number): GateCheck[] => [
    { kind: 'revoked-jti', key: `${prefix}revoked:jti:${jti}`, jti },
    { kind: 'revoked-before', key: `${prefix}revoked:before:${userId}`, userId, iat: Math.floor(iatMs / 1000), iatMs },
  ];
  const window = (name: string, limit: number): GateCheck => ({ kind: 'window', key: `${prefix}${name}`, rule: name, limit, periodMs: 60_000 });
  const apiKey = (hash: string, expected: string): GateCheck => ({ kind: 'api-key', key: `${prefix}apikey:${hash}`, expected });
  /** every request in the same turn: one script call */
  const together = (...requests: GateCheck[][]): Promise<GateResult[]> => Promise.all(requests.map((checks) => gate.decide(checks)));

  it('refuses a revoked jti, a token issued before revoked:before and a deleted API key, and lets the others of the call through', async () => {
    const now = Date.now();
    await redis.set(`${prefix}revoked:jti:dead`, '1');
    await redis.set(`${prefix}revoked:before:u2`, String(now));
    const entry = JSON.stringify({ keyId: 'k1', userId: 'u4' });
    await redis.set(`${prefix}apikey:live`, entry);
    const results = await together(
      [...token('dead', 'u1', now - 1000), window('rl:u1', 10)],
      [...token('alive-2', 'u2', now - 1000), window('rl:u2', 10)],
      [...token('alive-3', 'u3', now - 1000), window('rl:u3', 10)],
      [apiKey('live', entry), window('rl:k1', 10)],
      [apiKey('deleted', entry), window('rl:k2', 10)],
      [...token('alive-6', 'u2', now + 1000), window('rl:u6', 10)],
    );
    expect(calls).to.equal(1);
    expect(results.map((r) => r.revoked)).to.deep.equal([true, true, false, false, true, false]);
    expect(results.map((r) => r.source)).to.deep.equal(Array(6).fill('redis'));
    expect(results[2]?.decisions).to.deep.equal([undefined, undefined, { allowed: true, limit: 10, remaining: 9, resetMs: 6000, retryAfterMs: 0 }]);
    expect(results[3]?.apiKeyEntry).to.equal(undefined);
    // a refused request spends no quota: the revoked ones' windows were never written
    expect(await redis.exists(`${prefix}rl:u1`, `${prefix}rl:u2`, `${prefix}rl:k2`)).to.equal(0);
    expect(await redis.exists(`${prefix}rl:u3`, `${prefix}rl:k1`, `${prefix}rl:u6`)).to.equal(3);
  });

  it("hands back an API key's entry when Redis holds another one (a role change), limited or not", async () => {
    const fresh = JSON.stringify({ keyId: 'k1', role: 'supervisor' });
    await redis.set(`${prefix}apikey:h`, fresh);
    await redis.set(`${prefix}rl:full`, String(Date.now() + 120_000), 'PX', 60_000);
    const [allowed, limited] = await together([apiKey('h', 'stale'), window('rl:k', 10)], [apiKey('h', 'stale'), window('rl:full', 1)]);
    expect(allowed?.apiKeyEntry).to.equal(fresh);
    expect(allowed?.decisions[1]?.allowed).to.equal(true);
    expect(limited?.apiKeyEntry).to.equal(fresh);
    expect(limited?.decisions[1]?.allowed).to.equal(false);
  });

  it('decides requests of one user in one call one after the other: a limit of 3 lets exactly 3 of 7 through', async () => {
    const results = await together(...Array.from({ length: 7 }, () => [...token(randomUUID(), 'same', Date.now()), window('rl:same', 3)]));
    expect(calls).to.equal(1);
    expect(results.map((r) => r.decisions[2]?.allowed)).to.deep.equal([true, true, true, false, false, false, false]);
    expect(results.map((r) => r.decisions[2]?.remaining)).to.deep.equal([2, 1, 0, 0, 0, 0, 0]);
    expect(results[3]?.decisions[2]?.retryAfterMs).to.be.within(1, 20_000);
  });

  it('spends nothing of any rule when one rule of the request refuses, and counts leases across the call', async () => {
    const lease = (id: string): GateCheck => ({ kind: 'concurrency', key: `${prefix}streams`, rule: 'streams', limit: 2, leaseMs: 60_000, leaseId: id });
    await redis.set(`${prefix}rl:closed`, String(Date.now() + 120_000), 'PX', 60_000);
    const results = await together([lease('a'), window('rl:open', 5)], [lease('b'), window('rl:closed', 1)], [lease('c')], [lease('d')]);
    expect(results.map((r) => r.decisions[0]?.allowed)).to.deep.equal([true, true, true, false]);
    expect(results[1]?.decisions[1]?.allowed).to.equal(false);
    // the second request was refused by its window rule: its lease was never taken, so the third got one
    expect(await redis.zrange(`${prefix}streams`, 0, -1)).to.have.members(['a', 'c']);
    gate.release(`${prefix}streams`, 'a', 'redis');
    const [next] = await together([lease('e')]);
    expect(next?.decisions[0]).to.include({ allowed: true, remaining: 0 });
  });
});
