import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import { decodeRevocation, encodeRevocation, isRevokedBefore, type Revocation, RevocationMirror, revokedBeforeMs, revokes } from '../../src/revocation.ts';
import { watchStreamToken } from '../../src/stream-lifetime.ts';
import { testActor, testSecrets } from '../../src/testing/index.ts';
import { createKeyring, signAccessToken, verifyAccessToken } from '../../src/tokens.ts';

describe('revocation rules (DESIGN section 5)', () => {
  it('compares revoked:before in ms: issued at or before is dead, strictly after lives', () => {
    const at = 1_800_000_000_500;
    expect(isRevokedBefore({ iat: 1_800_000_000, iatMs: at - 1 }, at)).to.equal(true);
    expect(isRevokedBefore({ iat: 1_800_000_000, iatMs: at }, at)).to.equal(true);
    expect(isRevokedBefore({ iat: 1_800_000_000, iatMs: at + 1 }, at)).to.equal(false);
    // no sub-second precision: the same second cannot be shown to be after
    expect(isRevokedBefore({ iat: 1_800_000_000 }, at)).to.equal(true);
    expect(isRevokedBefore({ iat: 1_800_000_001 }, at)).to.equal(false);
    expect(isRevokedBefore({ iat: 1 }, undefined)).to.equal(false);
  });

  it('reads old whole-second values as covering their second', () => {
    expect(revokedBeforeMs('1800000000')).to.equal(1_800_000_000_999);
    expect(revokedBeforeMs('1800000000123')).to.equal(1_800_000_000_123);
    expect(revokedBeforeMs(null)).to.equal(undefined);
    expect(revokedBeforeMs('junk')).to.equal(undefined);
  });

  it('signs iat and iatMs from one instant, and refuses a token whose iatMs disagrees with iat', () => {
    const keyring = createKeyring(testSecrets().JWT_ACCESS_SECRET);
    const actor = testActor();
    const claims = verifyAccessToken(keyring, signAccessToken(keyring, { sub: actor.userId, username: actor.username, email: actor.email, role: actor.role }));
    expect(claims.iatMs).to.be.a('number');
    expect(Math.floor((claims.iatMs as number) / 1000)).to.equal(claims.iat);
    const iat = Math.floor(Date.now() / 1000);
    const payload = { sub: actor.userId, username: actor.username, email: actor.email, role: actor.role, type: 'access', jti: randomUUID(), iat };
    const forged = (iatMs: unknown) => jwt.sign({ ...payload, iatMs }, keyring.current.key, { algorithm: 'HS256', keyid: keyring.current.kid, expiresIn: 600 });
    // a later iatMs on an early iat would slip past revoked:before: refused
    expect(() => verifyAccessToken(keyring, forged((iat + 5) * 1000))).to.throw('iatMs');
    expect(() => verifyAccessToken(keyring, forged('soon'))).to.throw('iatMs');
    expect(verifyAccessToken(keyring, forged(iat * 1000 + 999)).iatMs).to.equal(iat * 1000 + 999);
  });

  it('round-trips stream entries and ignores malformed ones', () => {
    const jti: Revocation = { kind: 'jti', jti: 'j1', untilMs: 5 };
    const before: Revocation = { kind: 'before', userId: 'u1', atMs: 1_800_000_000_123, untilMs: 9 };
    expect(decodeRevocation(encodeRevocation(jti))).to.deep.equal(jti);
    expect(decodeRevocation(encodeRevocation(before))).to.deep.equal(before);
    expect(decodeRevocation(['kind', 'jti', 'until', 'x'])).to.equal(undefined);
    expect(decodeRevocation(['kind', 'other', 'until', '5'])).to.equal(undefined);
  });
});

describe('RevocationMirror', () => {
  const token = (overrides: Partial<{ jti: string; sub: string; iat: number; iatMs: number }> = {}) => ({
    jti: randomUUID(),
    sub: 'u1',
    iat: 1_800_000_000,
    iatMs: 1_800_000_000_100,
    ...overrides,
  });

  it('is not synced (cannot vouch for tokens) until a replay loaded', () => {
    const mirror = new RevocationMirror();
    expect(mirror.synced).to.equal(false);
    mirror.reset([]);
    expect(mirror.synced).to.equal(true);
  });

  it('answers jti and revoked:before revocations until they lapse, and keeps the latest before', () => {
    const mirror = new RevocationMirror();
    const now = 1_800_000_001_000;
    const dead = token();
    mirror.reset([{ kind: 'jti', jti: dead.jti, untilMs: now + 1000 }], now);
    expect(mirror.isRevoked(dead, now)).to.equal(true);
    expect(mirror.isRevoked(dead, now + 1000)).to.equal(false);
    mirror.apply({ kind: 'before', userId: 'u1', atMs: 1_800_000_000_200, untilMs: now + 5000 }, now);
    mirror.apply({ kind: 'before', userId: 'u1', atMs: 1_800_000_000_050, untilMs: now + 5000 }, now); // older: ignored
    expect(mirror.isRevoked(token({ iatMs: 1_800_000_000_150 }), now)).to.equal(true);
    expect(mirror.isRevoked(token({ iatMs: 1_800_000_000_250 }), now)).to.equal(false);
    expect(mirror.isRevoked(token({ sub: 'u2' }), now)).to.equal(false);
    mirror.prune(now + 6000);
    expect(mirror.size).to.equal(0);
  });

  it('tells listeners, and a reset replaces the copy', () => {
    const mirror = new RevocationMirror();
    const seen: Revocation[] = [];
    const stop = mirror.onRevocation((r) => seen.push(r));
    const later = Date.now() + 60_000;
    mirror.apply({ kind: 'jti', jti: 'a', untilMs: later });
    mirror.reset([{ kind: 'jti', jti: 'b', untilMs: later }]);
    stop();
    mirror.apply({ kind: 'jti', jti: 'c', untilMs: later });
    expect(seen.map((r) => (r.kind === 'jti' ? r.jti : ''))).to.deep.equal(['a', 'b']);
    expect(mirror.isRevoked(token({ jti: 'a' }))).to.equal(false);
    expect(mirror.isRevoked(token({ jti: 'b' }))).to.equal(true);
    expect(revokes({ kind: 'before', userId: 'u1', atMs: 1_800_000_000_100, untilMs: later }, token())).to.equal(true);
  });
});

describe('watchStreamToken', () => {
  const claimsFor = (ttlSeconds: number) => {
    const keyring = createKeyring(testSecrets().JWT_ACCESS_SECRET);
    const actor = testActor();
    return verifyAccessToken(
      keyring,
      signAccessToken(keyring, { sub: actor.userId, username: actor.username, email: actor.email, role: actor.role }, { ttlSeconds }),
    );
  };

  it('ends once on revocation of its token, not on others', () => {
    const mirror = new RevocationMirror();
    const claims = claimsFor(600);
    const ends: string[] = [];
    watchStreamToken({ claims, revocations: mirror, onEnd: (reason) => ends.push(reason.code) });
    mirror.apply({ kind: 'jti', jti: 'someone-else', untilMs: Date.now() + 60_000 });
    expect(ends).to.deep.equal([]);
    mirror.apply({ kind: 'before', userId: claims.sub, atMs: Date.now(), untilMs: Date.now() + 60_000 });
    mirror.apply({ kind: 'jti', jti: claims.jti, untilMs: Date.now() + 60_000 });
    expect(ends).to.deep.equal(['TOKEN_REVOKED']);
  });

  it('ends at once when the token is already revoked, and with TOKEN_EXPIRED at exp', async function () {
    this.timeout(5_000);
    const mirror = new RevocationMirror();
    const revoked = claimsFor(600);
    mirror.apply({ kind: 'jti', jti: revoked.jti, untilMs: Date.now() + 60_000 });
    const ends: string[] = [];
    watchStreamToken({ claims: revoked, revocations: mirror, onEnd: (reason) => ends.push(reason.code) });
    expect(ends).to.deep.equal(['TOKEN_REVOKED']);
    const expiring = claimsFor(1);
    const expired = await new Promise<string>((resolve) => {
      watchStreamToken({ claims: expiring, revocations: mirror, onEnd: (reason) => resolve(reason.code) });
    });
    expect(expired).to.equal('TOKEN_EXPIRED');
    expect(Date.now()).to.be.at.least(expiring.exp * 1000);
  });

  it('stops watching when the stream closes first', () => {
    const mirror = new RevocationMirror();
    const claims = claimsFor(600);
    const ends: string[] = [];
    const stop = watchStreamToken({ claims, revocations: mirror, onEnd: (reason) => ends.push(reason.code) });
    stop();
    mirror.apply({ kind: 'jti', jti: claims.jti, untilMs: Date.now() + 60_000 });
    expect(ends).to.deep.equal([]);
  });
});
