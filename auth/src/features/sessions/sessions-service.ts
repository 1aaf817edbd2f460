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

  async function revokeFamily(family: string): Promise<void> {
    const live = await dal.liveAccessTokens({ family });
    await dal.revokeActive({ family });
    await revocation.revokeJtis(live);
  }

  /** Every session of the user: all families, their live access tokens, and `revoked:before` (DESIGN section 5). */
  async function revokeAllSessions(userId: string): Promise<void> {
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
    return ttl > 0 ? ttl : 0;
  }

  async function recordFailure(subject: string): Promise<void> {
    const failures = key(`login-failures:${subject}`);
    const count = await redis.incr(failures);
    if (count === 1) await redis.expire(failures, config.LOGIN_FAILURE_WINDOW_SECONDS);
    if (count >= config.LOGIN_MAX_FAILURES) {
      await redis.multi().set(key(`login-lock:${subject}`), '1', 'EX', config.LOGIN_LOCK_SECONDS).del(failures).exec();
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
      const ok = user ? await passwords.verify(input.password, user.passwordHash) : (await passwords.verifyDummy(input.password), false);
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
     * Rotation with reuse detection. The new token is stored first, then the old one is retired with a
     * conditional update, so a request that loses a race deletes its own token and answers with the pair the
     * winner sealed under the old token (readable only with that token) during the grace window.
     */
    async refresh(token: string, device: DeviceInfo): Promise<{ pair: TokenPair; user: UserDoc }> {
      const claims: RefreshClaims = verifyRefreshToken(ctx.refreshKeyring, token);
      const tokenHash = sha256(token);
      for (let attempt = 0; attempt < 3; attempt++) {
        const doc = await dal.findByHash(tokenHash);
        if (!doc || doc.userId.toString() !== claims.sub || doc.family !== claims.fam) throw new ApiError('TOKEN_REVOKED', 'Refresh token is not valid');
        if (doc.status === 'revoked') throw new ApiError('TOKEN_REVOKED', 'Refresh token was revoked');
        if (doc.status === 'rotated') {
          const rotatedAt = doc.rotatedAt?.getTime() ?? 0;
          const sealed = doc.successor;
          if (sealed && Date.now() - rotatedAt <= config.REFRESH_REUSE_GRACE_SECONDS * 1000) {
            const opened = openWithToken(token, doc._id.toString(), sealed);
            const pair = opened ? (JSON.parse(opened) as TokenPair) : undefined;
            const successor = pair ? await dal.findByHash(sha256(pair.refreshToken)) : null;
            const user = await users.findById(claims.sub);
            if (pair && successor && successor.status !== 'revoked' && user && user.status === 'active') return { pair, user };
            throw new ApiError('TOKEN_REVOKED', 'Refresh token was revoked');
          }
          await revokeFamily(doc.family);
          ctx.logger.warn({ userId: claims.sub, family: doc.family }, 'retired refresh token reused: family revoked');
          throw new ApiError('TOKEN_REUSED', 'This refresh token was already used; every session of its family is signed out');
        }
        if (doc.expiresAt.getTime() <= Date.now()) throw new ApiError('TOKEN_EXPIRED', 'Refresh token expired');
        const user = await users.findById(claims.sub);
        if (!user || user.status !== 'active') {
          await revokeFamily(doc.family);
          throw new ApiError('TOKEN_REVOKED', 'The account is not active');
        }
        const issued = await issuePair(user, doc.family, device);
        let claimed = false;
        try {
          claimed = await dal.claimForRotation(doc._id, sealWithToken(token, doc._id.toString(), JSON.stringify(issued.pair)));
        } finally {
          if (!claimed) await dal.deleteById(issued.doc._id);
        }
        if (claimed) return { pair: issued.pair, user };
        // Lost the race (or the family was revoked meanwhile): read the token's new state and answer from it.
      }
      throw new ApiError('TOKEN_REVOKED', 'Refresh token is not valid');
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
