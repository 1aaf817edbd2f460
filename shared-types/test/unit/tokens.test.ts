import { createHmac } from 'node:crypto';
import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import { ApiError } from '../../src/errors.ts';
import { signIdentityHeaders, verifyIdentityHeaders } from '../../src/identity-signature.ts';
import { testActor, testSecrets } from '../../src/testing/index.ts';
import {
  createKeyring,
  kidOf,
  signAccessToken,
  signRefreshToken,
  signServiceToken,
  verifyAccessToken,
  verifyRefreshToken,
  verifyServiceToken,
} from '../../src/tokens.ts';

const secrets = testSecrets();
const access = createKeyring(secrets.JWT_ACCESS_SECRET);
const refresh = createKeyring(secrets.JWT_REFRESH_SECRET);
const internal = createKeyring(secrets.INTERNAL_SECRET);
const identity = { sub: 'u1', username: 'alice', email: 'alice@example.test', role: 'enduser' as const };
const now = () => Math.floor(Date.now() / 1000);

function rejectsWith(fn: () => unknown, code: string): void {
  try {
    fn();
  } catch (error) {
    expect(error).to.be.instanceOf(ApiError);
    expect((error as ApiError).code).to.equal(code);
    return;
  }
  expect.fail(`expected ${code}`);
}

function b64(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** A token hand-made with any header, signed with HMAC-SHA256 over the secret (for forgery cases). */
function forge(header: object, payload: object, secret: string): string {
  const unsigned = `${b64(header)}.${b64(payload)}`;
  return `${unsigned}.${createHmac('sha256', secret).update(unsigned).digest('base64url')}`;
}

const validPayload = () => ({ ...identity, type: 'access', jti: 'j1', iat: now(), exp: now() + 600 });

describe('tokens', () => {
  it('signs and verifies an access token with kid and all claims', () => {
    const token = signAccessToken(access, identity);
    const header = jwt.decode(token, { complete: true })?.header;
    expect(header?.alg).to.equal('HS256');
    expect(header?.kid).to.equal(kidOf(secrets.JWT_ACCESS_SECRET));
    const claims = verifyAccessToken(access, token);
    expect(claims).to.include({ sub: 'u1', username: 'alice', role: 'enduser', type: 'access' });
    expect(claims.exp - claims.iat).to.equal(15 * 60);
  });

  it('kid reveals none of the secret characters', () => {
    const kid = kidOf(secrets.JWT_ACCESS_SECRET);
    expect(kid).to.have.length(12);
    expect(secrets.JWT_ACCESS_SECRET.includes(kid.slice(0, 4))).to.equal(false);
  });

  it('rejects alg none', () => {
    const token = `${b64({ alg: 'none', typ: 'JWT', kid: access.current.kid })}.${b64(validPayload())}.`;
    rejectsWith(() => verifyAccessToken(access, token), 'UNAUTHENTICATED');
  });

  it('rejects HS512 even with the right secret', () => {
    const token = jwt.sign(validPayload(), secrets.JWT_ACCESS_SECRET, { algorithm: 'HS512', keyid: access.current.kid });
    rejectsWith(() => verifyAccessToken(access, token), 'UNAUTHENTICATED');
  });

  it('rejects an RS256 header signed with the HS secret (alg confusion)', () => {
    const token = forge({ alg: 'RS256', typ: 'JWT', kid: access.current.kid }, validPayload(), secrets.JWT_ACCESS_SECRET);
    rejectsWith(() => verifyAccessToken(access, token), 'UNAUTHENTICATED');
  });

  it('rejects a wrong secret under the right kid', () => {
    const token = forge({ alg: 'HS256', typ: 'JWT', kid: access.current.kid }, validPayload(), 'x'.repeat(64));
    rejectsWith(() => verifyAccessToken(access, token), 'UNAUTHENTICATED');
  });

  it('rejects an unknown kid and a missing kid', () => {
    const other = createKeyring(testSecrets().JWT_ACCESS_SECRET);
    rejectsWith(() => verifyAccessToken(access, signAccessToken(other, identity)), 'UNAUTHENTICATED');
    const noKid = jwt.sign(validPayload(), access.current.key, { algorithm: 'HS256' });
    rejectsWith(() => verifyAccessToken(access, noKid), 'UNAUTHENTICATED');
  });

  it('accepts tokens signed with the previous secret during rotation, and signs with the new one', () => {
    const old = createKeyring(secrets.JWT_ACCESS_SECRET);
    const rotated = createKeyring(testSecrets().JWT_ACCESS_SECRET, secrets.JWT_ACCESS_SECRET);
    const claims = verifyAccessToken(rotated, signAccessToken(old, identity));
    expect(claims.sub).to.equal('u1');
    rejectsWith(() => verifyAccessToken(old, signAccessToken(rotated, identity)), 'UNAUTHENTICATED');
  });

  it('rejects a refresh token used as access and an access token used as refresh', () => {
    const refreshWithAccessKey = signRefreshToken(access, identity, { fam: 'f1' });
    rejectsWith(() => verifyAccessToken(access, refreshWithAccessKey), 'UNAUTHENTICATED');
    rejectsWith(() => verifyAccessToken(access, signRefreshToken(refresh, identity, { fam: 'f1' })), 'UNAUTHENTICATED');
    rejectsWith(() => verifyRefreshToken(refresh, signAccessToken(refresh, identity)), 'UNAUTHENTICATED');
    expect(verifyRefreshToken(refresh, signRefreshToken(refresh, identity, { fam: 'f1' })).fam).to.equal('f1');
  });

  it('reports an expired token as TOKEN_EXPIRED, within tolerance as valid', () => {
    const expired = jwt.sign({ ...validPayload(), iat: now() - 1000, exp: now() - 31 }, access.current.key, { algorithm: 'HS256', keyid: access.current.kid });
    rejectsWith(() => verifyAccessToken(access, expired), 'TOKEN_EXPIRED');
    const justExpired = jwt.sign({ ...validPayload(), iat: now() - 1000, exp: now() - 10 }, access.current.key, {
      algorithm: 'HS256',
      keyid: access.current.kid,
    });
    expect(verifyAccessToken(access, justExpired).sub).to.equal('u1');
  });

  it('rejects iat in the future beyond the tolerance', () => {
    const future = jwt.sign({ ...validPayload(), iat: now() + 120, exp: now() + 900 }, access.current.key, { algorithm: 'HS256', keyid: access.current.kid });
    rejectsWith(() => verifyAccessToken(access, future), 'UNAUTHENTICATED');
  });

  for (const claim of ['sub', 'username', 'email', 'role', 'jti', 'type', 'exp', 'iat']) {
    it(`rejects a token missing ${claim}`, () => {
      const payload: Record<string, unknown> = validPayload();
      delete payload[claim];
      const token = forge({ alg: 'HS256', typ: 'JWT', kid: access.current.kid }, payload, secrets.JWT_ACCESS_SECRET);
      rejectsWith(() => verifyAccessToken(access, token), 'UNAUTHENTICATED');
    });
  }

  it('rejects an unknown role', () => {
    const token = forge({ alg: 'HS256', typ: 'JWT', kid: access.current.kid }, { ...validPayload(), role: 'root' }, secrets.JWT_ACCESS_SECRET);
    rejectsWith(() => verifyAccessToken(access, token), 'UNAUTHENTICATED');
  });

  it('refuses secrets shorter than 32 bytes', () => {
    expect(() => createKeyring('short')).to.throw(/32 bytes/);
  });

  describe('service tokens', () => {
    it('verify for the right audience only', () => {
      const token = signServiceToken(internal, 'chat', 'accounting');
      expect(verifyServiceToken(internal, token, 'accounting').iss).to.equal('chat');
      rejectsWith(() => verifyServiceToken(internal, token, 'monitoring'), 'UNAUTHENTICATED');
    });

    it('reject lifetimes over 60 s and access tokens posing as service tokens', () => {
      const long = jwt.sign({ type: 'service' }, internal.current.key, {
        algorithm: 'HS256',
        keyid: internal.current.kid,
        issuer: 'chat',
        audience: 'accounting',
        expiresIn: 3600,
      });
      rejectsWith(() => verifyServiceToken(internal, long, 'accounting'), 'UNAUTHENTICATED');
      rejectsWith(() => verifyServiceToken(internal, signAccessToken(internal, identity), 'accounting'), 'UNAUTHENTICATED');
    });
  });
});

describe('identity signature', () => {
  const actor = testActor('supervisor');
  const binding = { method: 'GET', path: '/api/chat/sessions', service: 'chat' };

  it('round-trips the injected headers', () => {
    const headers = signIdentityHeaders(secrets.INTERNAL_SECRET, actor, 'req-12345678', binding);
    expect(verifyIdentityHeaders(secrets.INTERNAL_SECRET, headers, binding)).to.deep.equal(actor);
  });

  it('rejects a tampered value', () => {
    const headers = signIdentityHeaders(secrets.INTERNAL_SECRET, actor, 'req-12345678', binding);
    rejectsWith(() => verifyIdentityHeaders(secrets.INTERNAL_SECRET, { ...headers, 'x-user-role': 'admin' }, binding), 'UNAUTHENTICATED');
    rejectsWith(() => verifyIdentityHeaders(secrets.INTERNAL_SECRET, { ...headers, 'x-user-id': 'someone-else' }, binding), 'UNAUTHENTICATED');
  });

  it('rejects a signature made with another secret', () => {
    const headers = signIdentityHeaders(testSecrets().INTERNAL_SECRET, actor, 'req-12345678', binding);
    rejectsWith(() => verifyIdentityHeaders(secrets.INTERNAL_SECRET, headers, binding), 'UNAUTHENTICATED');
  });

  it('rejects a stale signature (over 60 s)', () => {
    const headers = signIdentityHeaders(secrets.INTERNAL_SECRET, actor, 'req-12345678', binding, now() - 61);
    rejectsWith(() => verifyIdentityHeaders(secrets.INTERNAL_SECRET, headers, binding), 'UNAUTHENTICATED');
  });

  it('rejects duplicated headers and a missing signature', () => {
    const headers = signIdentityHeaders(secrets.INTERNAL_SECRET, actor, 'req-12345678', binding);
    rejectsWith(() => verifyIdentityHeaders(secrets.INTERNAL_SECRET, { ...headers, 'x-user-id': [actor.userId, 'x'] }, binding), 'UNAUTHENTICATED');
    const { 'x-identity-signature': _dropped, ...unsigned } = headers;
    rejectsWith(() => verifyIdentityHeaders(secrets.INTERNAL_SECRET, unsigned, binding), 'UNAUTHENTICATED');
  });

  it('binds the signature to method, path and service (a captured set is refused elsewhere)', () => {
    const headers = signIdentityHeaders(secrets.INTERNAL_SECRET, actor, 'req-12345678', binding);
    expect(verifyIdentityHeaders(secrets.INTERNAL_SECRET, headers, { ...binding, method: 'get' })).to.deep.equal(actor);
    rejectsWith(() => verifyIdentityHeaders(secrets.INTERNAL_SECRET, headers, { ...binding, method: 'DELETE' }), 'UNAUTHENTICATED');
    rejectsWith(() => verifyIdentityHeaders(secrets.INTERNAL_SECRET, headers, { ...binding, path: '/api/chat/sessions/x' }), 'UNAUTHENTICATED');
    rejectsWith(() => verifyIdentityHeaders(secrets.INTERNAL_SECRET, headers, { ...binding, service: 'auth' }), 'UNAUTHENTICATED');
  });
});
