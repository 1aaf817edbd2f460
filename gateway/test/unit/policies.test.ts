import { createTestAuth, testActor } from '@platform/shared-types/testing';
import { expect } from 'chai';
import type { GateCheck } from '../../src/engine/exchange.ts';
import { clientResponseHeaders, upstreamRequestHeaders } from '../../src/engine/headers.ts';
import { UpstreamTimeout } from '../../src/engine/services.ts';
import { mergeOpenApi } from '../../src/policies/endpoints.ts';
import { upstreamProblem } from '../../src/policies/proxy.ts';
import { MemoryLimiter } from '../../src/policies/redis-gate.ts';
import { TokenCache } from '../../src/policies/verify-token.ts';

describe('unit: in-memory limiter (the Redis fallback)', () => {
  const window = (limit: number, periodMs = 60_000): GateCheck => ({ kind: 'window', key: 'k', rule: 'r', limit, periodMs });

  it('allows a burst of `limit`, then refuses with the time until the next slot', () => {
    const limiter = new MemoryLimiter();
    const t = 1_000_000;
    const results = Array.from({ length: 6 }, () => limiter.decide([window(5)], t).decisions[0]);
    expect(results.map((d) => d?.allowed)).to.deep.equal([true, true, true, true, true, false]);
    expect(results.map((d) => d?.remaining).slice(0, 5)).to.deep.equal([4, 3, 2, 1, 0]);
    expect(results[5]?.retryAfterMs).to.equal(12_000);
    expect(limiter.decide([window(5)], t + 12_000).decisions[0]?.allowed).to.equal(true);
  });

  it('spends nothing when any rule refuses', () => {
    const limiter = new MemoryLimiter();
    const other: GateCheck = { kind: 'window', key: 'other', rule: 'o', limit: 1, periodMs: 60_000 };
    limiter.decide([other], 0);
    expect(limiter.decide([window(2), other], 0).decisions.map((d) => d?.allowed)).to.deep.equal([true, false]);
    // `k` was not charged by the refused request: still two allowed
    expect(limiter.decide([window(2)], 0).decisions[0]?.remaining).to.equal(1);
  });

  it('holds concurrency leases until released or expired', () => {
    const limiter = new MemoryLimiter();
    const lease = (id: string): GateCheck => ({ kind: 'concurrency', key: 'c', rule: 'c', limit: 2, leaseMs: 1_000, leaseId: id });
    expect(limiter.decide([lease('a')], 0).decisions[0]?.allowed).to.equal(true);
    expect(limiter.decide([lease('b')], 0).decisions[0]?.allowed).to.equal(true);
    expect(limiter.decide([lease('c')], 0).decisions[0]?.allowed).to.equal(false);
    limiter.release('c', 'a');
    expect(limiter.decide([lease('d')], 0).decisions[0]?.allowed).to.equal(true);
    expect(limiter.decide([lease('e')], 1_001).decisions[0]?.allowed).to.equal(true);
  });
});

describe('unit: headers', () => {
  it('drops hop-by-hop headers, those named in Connection, and every client identity header', () => {
    const out = upstreamRequestHeaders({
      connection: 'close, x-secret-hop',
      'x-secret-hop': '1',
      host: 'gw',
      'transfer-encoding': 'chunked',
      authorization: 'Bearer t',
      'x-user-id': 'a, b',
      'x-username': 'root',
      'x-token-jti': 'j',
      'x-identity-signature': 's',
      'x-service-token': 't',
      'content-type': 'application/json',
    });
    expect(out).to.deep.equal({ authorization: 'Bearer t', 'content-type': 'application/json' });
    expect(
      clientResponseHeaders({ connection: 'keep-alive', 'keep-alive': 'timeout=5', 'set-cookie': ['a=1', 'b=2'], 'content-type': 'text/plain' }),
    ).to.deep.equal({
      'set-cookie': ['a=1', 'b=2'],
      'content-type': 'text/plain',
    });
  });
});

describe('unit: token cache', () => {
  it('never returns claims past exp and stays bounded', () => {
    const auth = createTestAuth();
    const cache = new TokenCache(2);
    const claims = { sub: 'u', username: 'u', email: 'u@x', role: 'enduser' as const, type: 'access' as const, jti: 'j', iat: 100, exp: 200 };
    cache.set('a', claims);
    expect(cache.get('a', 199)).to.equal(claims);
    expect(cache.get('a', 200)).to.equal(undefined);
    cache.set('b', claims);
    cache.set('c', claims);
    cache.set('d', claims);
    expect(cache.get('b', 100)).to.equal(undefined);
    expect(cache.get('d', 100)).to.equal(claims);
    expect(auth.token(testActor())).to.be.a('string');
  });
});

describe('unit: upstream errors and docs', () => {
  it('maps connect failures to 503, header timeouts to 504, the rest to 502', () => {
    expect(upstreamProblem('chat', Object.assign(new Error('x'), { code: 'ECONNREFUSED' })).error.status).to.equal(503);
    const timeout = upstreamProblem('chat', Object.assign(new Error('x'), { code: 'UND_ERR_HEADERS_TIMEOUT' }));
    expect(timeout.kind).to.equal('timeout');
    expect(timeout.error).to.include({ code: 'UPSTREAM_TIMEOUT', status: 504 });
    expect(upstreamProblem('chat', Object.assign(new Error('x'), { code: 'UND_ERR_SOCKET' })).error.status).to.equal(502);
    // the node:http client's own timeouts (src/engine/services.ts)
    expect(upstreamProblem('chat', new UpstreamTimeout('UPSTREAM_CONNECT_TIMEOUT', 'x')).error.status).to.equal(503);
    const headers = upstreamProblem('chat', new UpstreamTimeout('UPSTREAM_HEADERS_TIMEOUT', 'x'));
    expect(headers.kind).to.equal('timeout');
    expect(headers.error).to.include({ code: 'UPSTREAM_TIMEOUT', status: 504 });
    expect(upstreamProblem('chat', Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })).error.status).to.equal(502);
  });

  it('merges OpenAPI documents, drops /internal, and names the missing ones', () => {
    const doc = mergeOpenApi([
      {
        service: 'auth',
        doc: { paths: { '/api/auth/login': { post: { summary: 'login' } }, '/internal/users': { get: {} } }, components: { schemas: { User: {} } } },
      },
      { service: 'chat', doc: undefined },
    ]) as { paths: Record<string, Record<string, { tags: string[] }>>; components: { schemas: Record<string, unknown> }; 'x-unavailable-services': string[] };
    expect(doc.paths['/api/auth/login']?.post?.tags).to.deep.equal(['auth']);
    expect(doc.paths).not.to.have.property('/internal/users');
    expect(doc.components.schemas).to.have.property('User');
    expect(doc['x-unavailable-services']).to.deep.equal(['chat']);
  });
});
