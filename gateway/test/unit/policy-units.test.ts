import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { ApiError, createKeyring, verifyIdentityHeaders } from '@platform/shared-types';
import { createTestAuth, testActor } from '@platform/shared-types/testing';
import { expect } from 'chai';
import type { Exchange, GateResult } from '../../src/engine/exchange.ts';
import { corsAction, corsPolicy } from '../../src/policies/cors.ts';
import { identityHeadersPolicy } from '../../src/policies/identity-headers.ts';
import { rateLimitAction, rateLimitPolicy } from '../../src/policies/rate-limit.ts';
import type { Gate } from '../../src/policies/redis-gate.ts';
import { revocationPolicy } from '../../src/policies/revocation.ts';
import { TokenCache, verifyTokenPolicy } from '../../src/policies/verify-token.ts';

/** A real IncomingMessage/ServerResponse pair without a network, for policies that only read and write headers. */
function exchange(headers: Record<string, string> = {}, method = 'GET'): Exchange {
  const req = new IncomingMessage(new Socket());
  req.headers = headers;
  req.method = method;
  const res = new ServerResponse(req);
  return {
    req,
    res,
    requestId: 'req-unit-0001',
    method,
    path: '/api/x',
    matchPath: '/api/x',
    query: '',
    clientIp: '10.0.0.7',
    route: 'unit',
    startedAt: 0,
    upstreamHeaders: {},
    responseHeaders: {},
    onClose: [],
    answered: false,
    bodyFraming: { kind: 'none' },
  };
}

function catchError(fn: () => void): ApiError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ApiError) return error;
    throw error;
  }
  throw new Error('expected an ApiError');
}

describe('unit: policies', () => {
  const auth = createTestAuth();

  it('verify-token sets the actor from a valid token and refuses a missing one', () => {
    const policy = verifyTokenPolicy({ keyring: createKeyring(auth.secrets.JWT_ACCESS_SECRET), cache: new TokenCache() });
    const actor = testActor('supervisor');
    const ex = exchange({ authorization: `Bearer ${auth.token(actor)}` });
    policy.run(ex);
    expect(ex.actor).to.deep.equal(actor);
    expect(catchError(() => policy.run(exchange())).code).to.equal('UNAUTHENTICATED');
    expect(catchError(() => policy.run(exchange({ authorization: 'Basic abc' }))).code).to.equal('UNAUTHENTICATED');
  });

  it('identity-headers signs the actor and sets forwarding headers (client X-Forwarded-For only when trusted)', () => {
    const actor = testActor();
    const ex = exchange({ 'x-forwarded-for': '6.6.6.6', host: 'gw.example' });
    ex.actor = actor;
    ex.upstreamHeaders = { 'x-user-id': 'smuggled-by-a-policy' };
    identityHeadersPolicy({ internalSecret: auth.secrets.INTERNAL_SECRET, trustProxy: () => false, target: () => 'chat' }).run(ex);
    const binding = { method: ex.method, path: ex.path, service: 'chat' };
    expect(verifyIdentityHeaders(auth.secrets.INTERNAL_SECRET, ex.upstreamHeaders as Record<string, string>, binding)).to.deep.equal(actor);
    expect(ex.upstreamHeaders['x-request-id']).to.equal('req-unit-0001');
    expect(ex.upstreamHeaders['x-forwarded-for']).not.to.include('6.6.6.6');
    expect(ex.upstreamHeaders['x-forwarded-host']).to.equal('gw.example');
    const trusted = exchange({ 'x-forwarded-for': '6.6.6.6' });
    identityHeadersPolicy({ internalSecret: auth.secrets.INTERNAL_SECRET, trustProxy: () => true, target: () => 'chat' }).run(trusted);
    expect(trusted.upstreamHeaders['x-forwarded-for']).to.match(/^6\.6\.6\.6, /);
    expect(trusted.upstreamHeaders).not.to.have.property('x-user-id');
  });

  it('cors answers an allowed preflight and says nothing to other origins', () => {
    const policy = corsPolicy(corsAction.parse({ origin: 'https://a.test, https://b.test', credentials: true }));
    const preflight = exchange({ origin: 'https://b.test', 'access-control-request-method': 'POST' }, 'OPTIONS');
    policy.run(preflight);
    expect(preflight.answered).to.equal(true);
    expect(preflight.res.statusCode).to.equal(204);
    expect(preflight.responseHeaders['access-control-allow-origin']).to.equal('https://b.test');
    expect(preflight.responseHeaders['access-control-allow-credentials']).to.equal('true');
    const other = exchange({ origin: 'https://evil.test' });
    policy.run(other);
    expect(other.answered).to.equal(false);
    expect(other.responseHeaders).not.to.have.property('access-control-allow-origin');
  });

  it('revocation asks for both keys of the token and refuses a revoked one', () => {
    const policy = revocationPolicy({ failMode: () => 'open' });
    const ex = exchange();
    expect(policy.collect(ex)).to.deep.equal([]);
    ex.claims = { sub: 'u1', username: 'u', email: 'u@x', role: 'enduser', type: 'access', jti: 'j1', iat: 100, exp: 200 };
    const checks = policy.collect(ex);
    expect(checks).to.deep.equal([
      { kind: 'revoked-jti', key: 'revoked:jti:j1', jti: 'j1' },
      { kind: 'revoked-before', key: 'revoked:before:u1', userId: 'u1', iat: 100 },
    ]);
    ex.claims = { ...ex.claims, iatMs: 100_250 };
    expect(policy.collect(ex)[1]).to.deep.equal({ kind: 'revoked-before', key: 'revoked:before:u1', userId: 'u1', iat: 100, iatMs: 100_250 });
    const revoked: GateResult = { revoked: true, source: 'redis', decisions: [undefined, undefined] };
    expect(catchError(() => policy.apply(ex, revoked, checks, 0)).code).to.equal('TOKEN_REVOKED');
    // the checks of one verified claims object are built once; another token's claims get their own keys
    expect(policy.collect(ex)).to.equal(policy.collect(ex));
    ex.claims = { ...ex.claims, sub: 'u2', jti: 'j2' };
    expect(policy.collect(ex).map((check) => check.key)).to.deep.equal(['revoked:jti:j2', 'revoked:before:u2']);
  });

  it("rate-limit reads its decisions at its offset in the stage's one gate result", () => {
    const gate: Gate = { decide: async () => ({ revoked: false, source: 'redis', decisions: [] }), release: () => undefined };
    const byUser = rateLimitPolicy(rateLimitAction.parse({ name: 'user', limit: 5 }), { gate, keyPrefix: () => 'p:' });
    const ex = exchange();
    const checks = byUser.collect(ex);
    const allowed = { allowed: true, limit: 5, remaining: 4, resetMs: 12_000, retryAfterMs: 0 };
    const refused = { allowed: false, limit: 5, remaining: 0, resetMs: 9_000, retryAfterMs: 2_100 };
    // revocation's two checks come first in the stage: the rule's decision is the third
    const result: GateResult = { revoked: false, source: 'redis', decisions: [undefined, undefined, refused, allowed] };
    expect(catchError(() => byUser.apply(ex, result, checks, 2)).code).to.equal('RATE_LIMITED');
    const fresh = exchange();
    byUser.apply(fresh, result, checks, 3);
    expect(fresh.responseHeaders['ratelimit-remaining']).to.equal('4');
  });

  it('rate-limit keys by user, IP, or IP plus a normalised body field, and refuses with Retry-After', () => {
    const gate: Gate = { decide: async () => ({ revoked: false, source: 'redis', decisions: [] }), release: () => undefined };
    const deps = { gate, keyPrefix: () => 'p:' };
    const byUser = rateLimitPolicy(rateLimitAction.parse({ name: 'user', limit: 5 }), deps);
    const ex = exchange();
    expect(byUser.collect(ex)[0]?.key).to.equal('p:user:ip:10.0.0.7'); // nobody signed in: the IP
    ex.actor = testActor();
    expect(byUser.collect(ex)[0]?.key).to.equal(`p:user:u:${ex.actor.userId}`);
    const byBody = rateLimitPolicy(rateLimitAction.parse({ name: 'login', limit: 5, by: 'ip-body', bodyFields: ['email', 'username'] }), deps);
    ex.bufferedBody = Buffer.from(JSON.stringify({ username: '  Alice ' }));
    expect(byBody.collect(ex)[0]?.key).to.equal('p:login:ib:10.0.0.7:alice');
    const checks = byUser.collect(ex);
    const error = catchError(() =>
      byUser.apply(
        ex,
        { revoked: false, source: 'redis', decisions: [{ allowed: false, limit: 5, remaining: 0, resetMs: 9_000, retryAfterMs: 2_100 }] },
        checks,
        0,
      ),
    );
    expect(error.code).to.equal('RATE_LIMITED');
    expect(error.headers?.['retry-after']).to.equal('3');
    expect(ex.responseHeaders['ratelimit-remaining']).to.equal('0');
    expect(catchError(() => byUser.apply(ex, { revoked: false, source: 'unavailable', decisions: [undefined] }, checks, 0)).code).to.equal(
      'UPSTREAM_UNAVAILABLE',
    );
  });
});
