import { randomUUID } from 'node:crypto';
import { type Actor, ApiError, type Logger, type Role } from '@platform/shared-types';
import type { Config } from '../../config.ts';
import { isDuplicateKeyError, type UserDoc } from '../../documents.ts';
import type { Mailer } from '../../lib/mailer.ts';
import { assertPasswordAllowed, type PasswordHasher } from '../../lib/passwords.ts';
import type { UserEvents } from '../../lib/user-events.ts';
import type { DeviceInfo, SessionsService } from '../sessions/sessions-service.ts';
import type { UsersDal } from '../users/users-dal.ts';
import type { OneTimeTokens } from './one-time-tokens.ts';

export interface NewAccount {
  username: string;
  email: string;
  password: string;
}

const invalidToken = () =>
  new ApiError('VALIDATION_FAILED', 'The link is invalid, used or expired', { errors: [{ path: 'body.token', message: 'invalid or expired' }] });

export interface AccountsDeps {
  config: Pick<Config, 'PUBLIC_URL' | 'VERIFY_TOKEN_TTL_SECONDS' | 'RESET_TOKEN_TTL_SECONDS'>;
  logger: Logger;
  users: UsersDal;
  tokens: OneTimeTokens;
  passwords: PasswordHasher;
  mailer: Mailer;
  events: UserEvents;
  sessions: Pick<SessionsService, 'revokeAllSessions' | 'clearLoginFailures' | 'issuePair'>;
}

export function accountsService(deps: AccountsDeps) {
  const { config, users, tokens, passwords, mailer, events, logger, sessions } = deps;
  // the links open the web app's screens (/app/...), which post the token to the API
  const link = (path: string, token: string) => `${config.PUBLIC_URL}${path}?token=${encodeURIComponent(token)}`;

  async function sendVerification(user: UserDoc): Promise<void> {
    const token = await tokens.issue(user._id, 'verify-email', config.VERIFY_TOKEN_TTL_SECONDS);
    await mailer.send({
      to: user.email,
      subject: 'Confirm your email address',
      text: `Hello ${user.username},\n\nconfirm your email address within 24 hours:\n${link('/app/verify-email', token)}\n`,
      meta: { kind: 'verify-email', token },
    });
  }

  async function sendReset(user: UserDoc): Promise<void> {
    const token = await tokens.issue(user._id, 'reset-password', config.RESET_TOKEN_TTL_SECONDS);
    await mailer.send({
      to: user.email,
      subject: 'Reset your password',
      text: `Hello ${user.username},\n\nreset your password within one hour:\n${link('/app/reset-password', token)}\n\nIf you did not ask for this, ignore this mail.\n`,
      meta: { kind: 'reset-password', token },
    });
  }

  /** Work that must not show in the response time (account enumeration): runs after the 202. */
  function inBackground(what: string, task: () => Promise<void>): void {
    task().catch((error: unknown) => logger.error({ err: error }, `${what} failed`));
  }

  /** Creates a user, refusing duplicates (409) and weak passwords (400). Nothing is left behind on failure. */
  async function createUser(input: NewAccount & { role: Role; emailVerified: boolean }): Promise<UserDoc> {
    assertPasswordAllowed(input.password, input);
    const taken = await users.findTaken(input.username, input.email);
    if (taken.username || taken.email) {
      const errors = [
        ...(taken.username ? [{ path: 'body.username', message: 'already taken' }] : []),
        ...(taken.email ? [{ path: 'body.email', message: 'already registered' }] : []),
      ];
      throw new ApiError('CONFLICT', taken.username ? 'Username already taken' : 'Email already registered', { errors });
    }
    const passwordHash = await passwords.hash(input.password);
    try {
      return await users.create({ ...input, passwordHash });
    } catch (error) {
      // A concurrent signup won the unique index.
      if (isDuplicateKeyError(error)) throw new ApiError('CONFLICT', 'Username or email already registered');
      throw error;
    }
  }

  return {
    createUser,

    async signup(input: NewAccount): Promise<UserDoc> {
      const user = await createUser({ ...input, role: 'enduser', emailVerified: false });
      try {
        await sendVerification(user);
      } catch (error) {
        await Promise.allSettled([users.deleteById(user._id), tokens.deleteForUser(user._id)]);
        throw error;
      }
      await events.append('user.registered', user);
      return user;
    },

    async verifyEmail(token: string): Promise<UserDoc> {
      const used = await tokens.consume(token, 'verify-email');
      if (!used) throw invalidToken();
      const before = await users.findById(used.userId.toString());
      const user = await users.update(used.userId, { emailVerified: true, emailVerifiedAt: new Date() });
      if (!user) throw invalidToken();
      if (before && !before.emailVerified) await events.append('user.verified', user);
      return user;
    },

    resendVerification(email: string): void {
      inBackground('resend verification', async () => {
        const user = await users.findByEmail(email);
        if (user && !user.emailVerified && user.status === 'active') await sendVerification(user);
      });
    },

    forgotPassword(email: string): void {
      inBackground('forgot password', async () => {
        const user = await users.findByEmail(email);
        if (user && user.status === 'active') await sendReset(user);
      });
    },

    /** Sets a new password from a reset mail; the mail proves the address, and every session is revoked. */
    async resetPassword(token: string, password: string): Promise<void> {
      const pending = await tokens.peek(token, 'reset-password');
      const target = pending ? await users.findById(pending.userId.toString()) : null;
      if (!pending || !target) throw invalidToken();
      assertPasswordAllowed(password, target);
      const passwordHash = await passwords.hash(password);
      if (!(await tokens.consume(token, 'reset-password'))) throw invalidToken();
      const user = await users.update(target._id, {
        passwordHash,
        passwordChangedAt: new Date(),
        ...(target.emailVerified ? {} : { emailVerified: true, emailVerifiedAt: new Date() }),
      });
      if (!user) throw invalidToken();
      await sessions.revokeAllSessions(user._id.toString());
      // The mail proved the owner: failed sign-ins against the old password no longer lock them out.
      await sessions.clearLoginFailures(user._id.toString());
      await events.append('user.password_changed', user);
    },

    /** Needs the current password; every other session is revoked and this one gets a fresh pair. */
    async changePassword(actor: Actor, input: { currentPassword: string; newPassword: string }, device: DeviceInfo) {
      const current = await users.findById(actor.userId);
      if (current?.status !== 'active') throw new ApiError('UNAUTHENTICATED', 'Sign in again');
      if (!(await passwords.verify(input.currentPassword, current.passwordHash))) throw new ApiError('INVALID_CREDENTIALS', 'Current password is wrong');
      if (input.currentPassword === input.newPassword) {
        throw new ApiError('VALIDATION_FAILED', 'Choose a new password', {
          errors: [{ path: 'body.newPassword', message: 'must differ from the current password' }],
        });
      }
      assertPasswordAllowed(input.newPassword, current);
      const passwordHash = await passwords.hash(input.newPassword);
      // Conditional on the state checked above: a change or disable that raced with our bcrypt wins.
      const user = await users.update(current._id, { passwordHash, passwordChangedAt: new Date() }, { passwordHash: current.passwordHash, status: 'active' });
      if (!user) throw new ApiError('UNAUTHENTICATED', 'Sign in again');
      await sessions.revokeAllSessions(actor.userId);
      await sessions.clearLoginFailures(actor.userId);
      const { pair } = await sessions.issuePair(user, randomUUID(), device, new Date());
      await events.append('user.password_changed', user);
      return { pair, user };
    },
  };
}

export type AccountsService = ReturnType<typeof accountsService>;
