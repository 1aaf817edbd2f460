import { randomUUID } from 'node:crypto';
import {
  type Actor,
  ApiError,
  type Keyring,
  kidOf,
  type Logger,
  type RefreshClaims,
  signAccessToken,
  signRefreshToken,
  verifyAccessToken,
  verifyRefreshToken,
} from '@platform/shared-types';
import type { Redis } from 'ioredis';
import type { Config } from '../../config.ts';
import type { UserDoc } from '../../documents.ts';
import type { PasswordHasher } from '../../lib/passwords.ts';
import { openWithToken, sealWithToken, sha256 } from '../../lib/secrets.ts';
import type { UserEvents } from '../../lib/user-events.ts';
import { authMetrics } from '../../metrics.ts';
import type { OneTimeTokens } from '../accounts/one-time-tokens.ts';
import { normaliseEmail, type UsersDal, usernameKey } from '../users/users-dal.ts';
import { loginLockout } from './login-lockout.ts';
import { revocationWriter } from './revocation.ts';
import type { SessionsDal } from './sessions-dal.ts';

export interface DeviceInfo {
  userAgent?: string;
  ip?: string;
}

export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  tokenType: 'Bearer';
  /** access token lifetime in seconds */
  expiresIn: number;
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

export interface SessionsDeps {
  config: Config;
  logger: Logger;
  redis: Redis;
  /** refresh tokens */
  dal: SessionsDal;
  users: UsersDal;
  oneTimeTokens: Pick<OneTimeTokens, 'deleteExpired'>;
  passwords: PasswordHasher;
  events: UserEvents;
  accessKeyring: Keyring;
  refreshKeyring: Keyring;
}

export function sessionsService(deps: SessionsDeps) {
  const { config, redis, dal, users, passwords, events, accessKeyring, refreshKeyring } = deps;
  const revocation = revocationWriter(redis, config.ACCESS_TOKEN_TTL_SECONDS);
  const lockout = loginLockout(redis, config);
  const key = (name: string) => `${config.REDIS_KEY_PREFIX}${name}`;

  /** Signs a pair and stores its refresh token (hashed) in `family`, which began at `familyStartedAt`. */
  async function issuePair(user: UserDoc, family: string, device: DeviceInfo, familyStartedAt: Date) {
    const identity = { sub: user._id.toString(), username: user.username, email: user.email, role: user.role };
    const accessJti = randomUUID();
    const accessToken = signAccessToken(accessKeyring, identity, { jti: accessJti, ttlSeconds: config.ACCESS_TOKEN_TTL_SECONDS });
    const refreshToken = signRefreshToken(refreshKeyring, identity, { fam: family, ttlSeconds: config.REFRESH_TOKEN_TTL_SECONDS });
    const now = Date.now();
    const doc = await dal.create({
      tokenHash: sha256(refreshToken),
      userId: user._id,
      family,
      familyStartedAt,
      device: { userAgent: device.userAgent ?? null, ip: device.ip ?? null },
      expiresAt: new Date(now + config.REFRESH_TOKEN_TTL_SECONDS * 1000),
      accessJti,
      accessExpiresAt: new Date(now + config.ACCESS_TOKEN_TTL_SECONDS * 1000),
    });
    const pair: TokenPair = { accessToken, refreshToken, tokenType: 'Bearer', expiresIn: config.ACCESS_TOKEN_TTL_SECONDS };
    return { pair, doc };
  }

  // FerretDB does not apply conditional updates atomically (two `updateOne({status: 'active'})` can both
  // match), so the decisions that must have one winner are taken in Redis: SET NX for the rotation claim,
  // and a family marker written before the Mongo revocation and read by refresh after its own writes.
  const familyRevokedKey = (family: string) => key(`family-revoked:${family}`);
  const rotationKey = (tokenHash: string) => key(`rotated:${tokenHash}`);

  async function markFamiliesRevoked(families: string[]): Promise<void> {
    if (families.length === 0) return;
    const batch = redis.multi();
    for (const family of families) batch.set(familyRevokedKey(family), '1', 'EX', config.REFRESH_TOKEN_TTL_SECONDS);
    await batch.exec();
  }

  async function revokeFamily(family: string): Promise<void> {
    await markFamiliesRevoked([family]);
    const live = await dal.liveAccessTokens({ family });
    await dal.revokeActive({ family });
    await revocation.revokeJtis(live);
  }

  /** Every session of the user: all families, their live access tokens, and `revoked:before` (DESIGN section 5). */
  async function revokeAllSessions(userId: string): Promise<void> {
    await markFamiliesRevoked(await dal.families(userId));
    const live = await dal.liveAccessTokens({ userId });
    await dal.revokeActive({ userId });
    await Promise.all([revocation.revokeJtis(live), revocation.revokeBefore(userId)]);
  }

  // Login failures are counted per account, or per identifier when no account matches, so both look alike.
  const lockSubject = (user: UserDoc | null, identifier: string): string => (user ? `user:${user._id.toString()}` : `id:${sha256(identifier)}`);

  /** What the tokens of a session are derived from: if any of it changes, a session issued from the old state is stale. */
  const sessionState = (user: UserDoc) =>
    [user.passwordHash, user.passwordChangedAt?.getTime() ?? 0, user.status, user.emailVerified, user.role, user.username, user.email].join('\u0000');

  function assertMaySignIn(user: UserDoc): void {
    if (!user.emailVerified) throw new ApiError('EMAIL_NOT_VERIFIED', 'Verify your email address first');
    if (user.status !== 'active') throw new ApiError('FORBIDDEN', 'This account is disabled');
  }

  /**
   * Issues a new family for `verified` (whose password was just checked), then reads the user again. A password
   * change, disable or role change either happened before that read (seen here: the family is revoked, and the
   * sign-in fails or is redone for the new role) or after our family was stored (so its own revocation finds it).
   */
  async function issueFresh(verified: UserDoc, device: DeviceInfo): Promise<{ pair: TokenPair; user: UserDoc }> {
    let user = verified;
    for (let attempt = 0; attempt < 3; attempt++) {
      const family = randomUUID();
      const { pair } = await issuePair(user, family, device, new Date());
      const current = await users.findById(user._id.toString());
      if (current && sessionState(current) === sessionState(user)) return { pair, user: current };
      await revokeFamily(family);
      if (!current || current.passwordHash !== verified.passwordHash) throw new ApiError('INVALID_CREDENTIALS', 'Wrong username, email or password');
      assertMaySignIn(current);
      user = current;
    }
    throw new ApiError('CONFLICT', 'The account changed while signing in; try again');
  }

  async function login(input: { email?: string; username?: string; password: string }, device: DeviceInfo): Promise<{ pair: TokenPair; user: UserDoc }> {
    const identifier = input.email !== undefined ? `email:${normaliseEmail(input.email)}` : `username:${usernameKey(input.username ?? '')}`;
    const user = input.email !== undefined ? await users.findByEmail(input.email) : await users.findByUsername(input.username ?? '');
    const subject = lockSubject(user, identifier);
    await lockout.assertNotLocked(subject, device.ip);
    // Same bcrypt work whether or not the account exists.
    let ok = false;
    if (user) ok = await passwords.verify(input.password, user.passwordHash);
    else await passwords.verifyDummy(input.password);
    // bcrypt took a while: the password checked must still be the account's password.
    const current = user && ok ? await users.findById(user._id.toString()) : null;
    if (!user || !current || current.passwordHash !== user.passwordHash) {
      await lockout.recordFailure(subject, device.ip);
      throw new ApiError('INVALID_CREDENTIALS', 'Wrong username, email or password');
    }
    await lockout.recordSuccess(subject, device.ip);
    assertMaySignIn(current);
    return issueFresh(current, device);
  }

  return {
    issuePair,
    revokeAllSessions,

    /** Forgets every failed sign-in of the user (a password reset or change makes guesses at the old one moot). */
    clearLoginFailures: (userId: string) => lockout.clear(`user:${userId}`),

    async login(input: { email?: string; username?: string; password: string }, device: DeviceInfo): Promise<{ pair: TokenPair; user: UserDoc }> {
      try {
        const signedIn = await login(input, device);
        authMetrics.logins.inc({ outcome: 'success' });
        return signedIn;
      } catch (error) {
        authMetrics.logins.inc({ outcome: error instanceof ApiError ? error.code.toLowerCase() : 'error' });
        throw error;
      }
    },

    /**
     * Rotation with reuse detection. The new token is stored first; then one request wins the rotation of the
     * old token (Redis SET NX, holding the new pair sealed under the old token for the grace window). A request
     * that loses the race deletes its own token and answers with the winner's pair, which only the holder of
     * the old token can unseal. After the window, presenting the retired token is reuse: the family dies.
     */
    async refresh(token: string, device: DeviceInfo): Promise<{ pair: TokenPair; user: UserDoc }> {
      const claims: RefreshClaims = verifyRefreshToken(refreshKeyring, token);
      const tokenHash = sha256(token);
      const doc = await dal.findByHash(tokenHash);
      if (!doc || doc.userId.toString() !== claims.sub || doc.family !== claims.fam) throw new ApiError('TOKEN_REVOKED', 'Refresh token is not valid');
      if (doc.status === 'revoked' || (await redis.exists(familyRevokedKey(doc.family)))) throw new ApiError('TOKEN_REVOKED', 'Refresh token was revoked');
      const user = await users.findById(claims.sub);
      if (user?.status !== 'active') {
        await revokeFamily(doc.family);
        throw new ApiError('TOKEN_REVOKED', 'The account is not active');
      }
      // A family signed in with a password that has been changed since is dead, even if its revocation was missed.
      const familyStartedAt = doc.familyStartedAt ?? doc.createdAt;
      if (user.passwordChangedAt && familyStartedAt.getTime() < user.passwordChangedAt.getTime()) {
        await revokeFamily(doc.family);
        throw new ApiError('TOKEN_REVOKED', 'The password was changed after this session began');
      }
      const fromWinner = async (): Promise<{ pair: TokenPair; user: UserDoc }> => {
        const sealed = await redis.get(rotationKey(tokenHash));
        const opened = sealed ? openWithToken(token, doc._id.toString(), sealed) : undefined;
        if (opened) {
          if (await redis.exists(familyRevokedKey(doc.family))) throw new ApiError('TOKEN_REVOKED', 'Refresh token was revoked');
          return { pair: JSON.parse(opened) as TokenPair, user };
        }
        // Retired and past the grace window: someone replays an old token.
        await revokeFamily(doc.family);
        deps.logger.warn({ userId: claims.sub, family: doc.family }, 'retired refresh token reused: family revoked');
        authMetrics.refreshReuse.inc();
        throw new ApiError('TOKEN_REUSED', 'This refresh token was already used; every session of its family is signed out');
      };
      if (doc.status === 'rotated') return fromWinner();
      if (doc.expiresAt.getTime() <= Date.now()) throw new ApiError('TOKEN_EXPIRED', 'Refresh token expired');

      const issued = await issuePair(user, doc.family, device, familyStartedAt);
      const sealed = sealWithToken(token, doc._id.toString(), JSON.stringify(issued.pair));
      let won = false;
      try {
        won = (await redis.set(rotationKey(tokenHash), sealed, 'PX', config.REFRESH_REUSE_GRACE_SECONDS * 1000 + 1, 'NX')) === 'OK';
        if (won) await dal.markRotated(doc._id);
      } catch (error) {
        // Nothing half done: the old token stays active and usable.
        await Promise.allSettled([dal.deleteById(issued.doc._id), won ? redis.del(rotationKey(tokenHash)) : undefined]);
        throw error;
      }
      if (!won) {
        await dal.deleteById(issued.doc._id);
        return fromWinner();
      }
      // A revocation that raced with us either left its marker (seen here) or revoked our new token in Mongo.
      if (await redis.exists(familyRevokedKey(doc.family))) {
        await dal.revokeActive({ family: doc.family });
        throw new ApiError('TOKEN_REVOKED', 'Refresh token was revoked');
      }
      return { pair: issued.pair, user };
    },

    /** Signs out one session: its refresh family (from the token, or found by the access jti) and the access token. */
    async logout(actor: Actor, options: { refreshToken?: string; bearer?: string }): Promise<void> {
      const families = new Set<string>();
      if (options.refreshToken) {
        const doc = await dal.findByHash(sha256(options.refreshToken));
        if (doc && doc.userId.toString() === actor.userId) families.add(doc.family);
      }
      if (actor.jti) {
        const doc = await dal.findByAccessJti(actor.userId, actor.jti);
        if (doc) families.add(doc.family);
      }
      for (const family of families) await revokeFamily(family);
      if (actor.jti) {
        let expiresAt = nowSeconds() + config.ACCESS_TOKEN_TTL_SECONDS;
        if (options.bearer) {
          try {
            const claims = verifyAccessToken(accessKeyring, options.bearer);
            if (claims.jti === actor.jti) expiresAt = claims.exp;
          } catch {
            // keep the longest possible lifetime
          }
        }
        await revocation.revokeJtis([{ jti: actor.jti, expiresAt }]);
      }
      const user = await users.findById(actor.userId);
      if (user) await events.append('user.logged_out', user);
    },

    async logoutAll(actor: Actor): Promise<void> {
      await revokeAllSessions(actor.userId);
      const user = await users.findById(actor.userId);
      if (user) await events.append('user.logged_out', user);
    },

    /** Verified claims of the caller's own access token and the key ids in use (never a secret's characters). */
    tokenInfo(actor: Actor, token: string | undefined) {
      if (!token) throw new ApiError('UNAUTHENTICATED', 'Send the access token as a bearer token');
      const claims = verifyAccessToken(accessKeyring, token);
      if (claims.sub !== actor.userId) throw new ApiError('UNAUTHENTICATED', 'The bearer token is not the signed-in user');
      const header = JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString('utf8')) as { kid?: string; alg?: string };
      return {
        claims,
        kid: header.kid ?? '',
        currentKid: accessKeyring.current.kid,
        acceptedKids: [...accessKeyring.byKid.keys()],
        refreshKid: kidOf(config.JWT_REFRESH_SECRET),
        algorithm: header.alg ?? 'HS256',
      };
    },

    /** Deletes expired refresh and one-time tokens (there is no TTL index on FerretDB). */
    async sweepExpired(): Promise<{ refreshTokens: number; oneTimeTokens: number }> {
      const now = new Date();
      const refreshTokens = await dal.deleteExpired(now);
      return { refreshTokens, oneTimeTokens: await deps.oneTimeTokens.deleteExpired(now) };
    },
  };
}

export type SessionsService = ReturnType<typeof sessionsService>;
