import { randomUUID } from 'node:crypto';
import { type Actor, ApiError, type RefreshClaims, signAccessToken, signRefreshToken, verifyAccessToken, verifyRefreshToken } from '@platform/shared-types';
import type { AuthContext } from '../../context.ts';
import { openWithToken, sealWithToken, sha256 } from '../../lib/secrets.ts';
import type { UserDoc } from '../../models.ts';
import { normaliseEmail, usernameKey } from '../users/users-dal.ts';
import { revocationWriter } from './revocation.ts';
import { sessionsDal } from './sessions-dal.ts';

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

export function sessionsService(ctx: AuthContext) {
  const { config, redis, users, passwords, events } = ctx;
  const dal = sessionsDal(ctx.models);
  const revocation = revocationWriter(redis, config.ACCESS_TOKEN_TTL_SECONDS);
  const key = (name: string) => `${config.REDIS_KEY_PREFIX}${name}`;

  /** Signs a pair and stores its refresh token (hashed) in `family`. */
  async function issuePair(user: UserDoc, family: string, device: DeviceInfo) {
    const identity = { sub: user._id.toString(), username: user.username, email: user.email, role: user.role };
    const accessJti = randomUUID();
    const accessToken = signAccessToken(ctx.accessKeyring, identity, { jti: accessJti, ttlSeconds: config.ACCESS_TOKEN_TTL_SECONDS });
    const refreshToken = signRefreshToken(ctx.refreshKeyring, identity, { fam: family, ttlSeconds: config.REFRESH_TOKEN_TTL_SECONDS });
    const now = Date.now();
    const doc = await dal.create({
      tokenHash: sha256(refreshToken),
      userId: user._id,
      family,
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

  // ---- login lockout: counted per account, or per identifier when no account matches, so both look alike ----
  async function lockSubject(user: UserDoc | null, identifier: string): Promise<string> {
    return user ? `user:${user._id.toString()}` : `id:${sha256(identifier)}`;
  }

  async function lockedFor(subject: string): Promise<number> {
    const ttl = await redis.ttl(key(`login-lock:${subject}`));
    return Math.max(ttl, 0);
  }

  async function recordFailure(subject: string): Promise<void> {
    const failures = key(`login-failures:${subject}`);
    const count = await redis.incr(failures);
    if (count === 1) await redis.expire(failures, config.LOGIN_FAILURE_WINDOW_SECONDS);
    if (count >= config.LOGIN_MAX_FAILURES) {
      await redis
        .multi()
        .set(key(`login-lock:${subject}`), '1', 'EX', config.LOGIN_LOCK_SECONDS)
        .del(failures)
        .exec();
    }
  }

  function lockedError(seconds: number): ApiError {
    return new ApiError('ACCOUNT_LOCKED', 'Too many failed sign-in attempts; try again later', { headers: { 'Retry-After': String(seconds) } });
  }

  return {
    issuePair,
    revokeAllSessions,

    async login(input: { email?: string; username?: string; password: string }, device: DeviceInfo): Promise<{ pair: TokenPair; user: UserDoc }> {
      const identifier = input.email !== undefined ? `email:${normaliseEmail(input.email)}` : `username:${usernameKey(input.username ?? '')}`;
      const user = input.email !== undefined ? await users.findByEmail(input.email) : await users.findByUsername(input.username ?? '');
      const subject = await lockSubject(user, identifier);
      const locked = await lockedFor(subject);
      if (locked > 0) throw lockedError(locked);
      // Same bcrypt work whether or not the account exists.
      let ok = false;
      if (user) ok = await passwords.verify(input.password, user.passwordHash);
      else await passwords.verifyDummy(input.password);
      if (!user || !ok) {
        await recordFailure(subject);
        throw new ApiError('INVALID_CREDENTIALS', 'Wrong username, email or password');
      }
      await redis.del(key(`login-failures:${subject}`));
      if (!user.emailVerified) throw new ApiError('EMAIL_NOT_VERIFIED', 'Verify your email address first');
      if (user.status !== 'active') throw new ApiError('FORBIDDEN', 'This account is disabled');
      const { pair } = await issuePair(user, randomUUID(), device);
      return { pair, user };
    },

    /**
     * Rotation with reuse detection. The new token is stored first; then one request wins the rotation of the
     * old token (Redis SET NX, holding the new pair sealed under the old token for the grace window). A request
     * that loses the race deletes its own token and answers with the winner's pair, which only the holder of
     * the old token can unseal. After the window, presenting the retired token is reuse: the family dies.
     */
    async refresh(token: string, device: DeviceInfo): Promise<{ pair: TokenPair; user: UserDoc }> {
      const claims: RefreshClaims = verifyRefreshToken(ctx.refreshKeyring, token);
      const tokenHash = sha256(token);
      const doc = await dal.findByHash(tokenHash);
      if (!doc || doc.userId.toString() !== claims.sub || doc.family !== claims.fam) throw new ApiError('TOKEN_REVOKED', 'Refresh token is not valid');
      if (doc.status === 'revoked' || (await redis.exists(familyRevokedKey(doc.family)))) throw new ApiError('TOKEN_REVOKED', 'Refresh token was revoked');
      const user = await users.findById(claims.sub);
      if (user?.status !== 'active') {
        await revokeFamily(doc.family);
        throw new ApiError('TOKEN_REVOKED', 'The account is not active');
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
        ctx.logger.warn({ userId: claims.sub, family: doc.family }, 'retired refresh token reused: family revoked');
        throw new ApiError('TOKEN_REUSED', 'This refresh token was already used; every session of its family is signed out');
      };
      if (doc.status === 'rotated') return fromWinner();
      if (doc.expiresAt.getTime() <= Date.now()) throw new ApiError('TOKEN_EXPIRED', 'Refresh token expired');

      const issued = await issuePair(user, doc.family, device);
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
            const claims = verifyAccessToken(ctx.accessKeyring, options.bearer);
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

    /** Deletes expired refresh and one-time tokens (there is no TTL index on FerretDB). */
    async sweepExpired(): Promise<{ refreshTokens: number; oneTimeTokens: number }> {
      const now = new Date();
      const refreshTokens = await dal.deleteExpired(now);
      const oneTime = await ctx.models.OneTimeToken.deleteMany({ expiresAt: { $lt: now } });
      return { refreshTokens, oneTimeTokens: oneTime.deletedCount };
    },
  };
}

export type SessionsService = ReturnType<typeof sessionsService>;
