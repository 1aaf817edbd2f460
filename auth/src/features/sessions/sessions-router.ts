import { ApiError, permissionsFor, publicUser } from '@platform/shared-types';
import { ApiRouter } from '@platform/shared-types/express';
import { z } from 'zod';
import type { Config } from '../../config.ts';
import { newPasswordSchema, presentedPasswordSchema } from '../../lib/passwords.ts';
import type { AccountsService } from '../accounts/accounts-service.ts';
import type { ProfileService } from '../profile/profile-service.ts';
import { emailSchema, meResponse, newAccountBody, userResponse } from '../users/schemas.ts';
import { toPublicUser, userWithProfile } from '../users/users-dal.ts';
import { clearRefreshCookie, deviceOf, refreshCookie, setRefreshCookie } from './http.ts';
import type { SessionsService } from './sessions-service.ts';

const tokenString = z.string().min(1).max(4096);
const sessionResponse = z
  .object({
    accessToken: z.string(),
    refreshToken: z.string(),
    tokenType: z.literal('Bearer'),
    expiresIn: z.number().int(),
    user: publicUser,
  })
  .meta({ id: 'LoginResponse', description: 'A new access token (Bearer) and refresh token; expiresIn in seconds' });
const accepted = z.object({ status: z.literal('accepted') });

const loginBody = z
  .strictObject({ email: z.string().min(1).max(320).optional(), username: z.string().min(1).max(64).optional(), password: presentedPasswordSchema })
  .refine((body) => (body.email === undefined) !== (body.username === undefined), 'send either email or username')
  .meta({
    id: 'LoginRequest',
    description: 'Either email or username, and the password',
    examples: [{ email: 'ada@example.com', password: 'correct horse battery staple' }],
  });

export function sessionsRouter(deps: {
  config: Config;
  sessions: SessionsService;
  accounts: AccountsService;
  profiles: Pick<ProfileService, 'read'>;
}): ApiRouter {
  const { config, sessions, accounts, profiles } = deps;
  const router = new ApiRouter();
  const tags = ['auth'];

  for (const path of ['/api/auth/signup', '/api/auth/register']) {
    router.route(
      {
        method: 'post',
        path,
        summary: path.endsWith('register') ? 'Register (alias of signup)' : 'Create an account; a verification mail follows',
        access: 'public',
        tags,
        body: newAccountBody,
        status: 201,
        response: userResponse,
        errors: ['CONFLICT'],
      },
      async ({ body }) => ({ user: toPublicUser(await accounts.signup(body)) }),
    );
  }

  router.route(
    {
      method: 'post',
      path: '/api/auth/verify-email',
      summary: 'Confirm an email address with the mailed token',
      access: 'public',
      tags,
      body: z.strictObject({ token: tokenString }),
      response: userResponse,
    },
    async ({ body }) => ({ user: toPublicUser(await accounts.verifyEmail(body.token)) }),
  );

  // mail that goes (or not) after the answer: 202 whatever the email, so the answer tells nothing about accounts
  const mailRoutes = [
    { path: '/api/auth/resend-verification', summary: 'Send the verification mail again (202 whatever the email)', send: accounts.resendVerification },
    { path: '/api/auth/forgot-password', summary: 'Mail a password reset link (202 whatever the email)', send: accounts.forgotPassword },
  ];
  for (const { path, summary, send } of mailRoutes) {
    router.route(
      { method: 'post', path, summary, access: 'public', tags, body: z.strictObject({ email: emailSchema }), status: 202, response: accepted },
      ({ body }) => {
        send(body.email);
        return { status: 'accepted' as const };
      },
    );
  }

  router.route(
    {
      method: 'post',
      path: '/api/auth/login',
      summary: 'Sign in with email or username; sets the refresh_token cookie',
      access: 'public',
      tags,
      body: loginBody,
      response: sessionResponse,
      errors: ['INVALID_CREDENTIALS', 'EMAIL_NOT_VERIFIED', 'ACCOUNT_LOCKED', 'FORBIDDEN'],
    },
    async ({ body, req, res }) => {
      // A client that puts a username in the email field still signs in.
      const byEmail = body.email?.includes('@') === true;
      const identity = byEmail ? { email: body.email } : { username: body.username ?? body.email };
      const { pair, user } = await sessions.login({ ...identity, password: body.password }, deviceOf(req, config));
      setRefreshCookie(res, config, pair.refreshToken);
      return { ...pair, user: toPublicUser(user) };
    },
  );

  router.route(
    {
      method: 'post',
      path: '/api/auth/refresh',
      summary: 'Rotate the refresh token (body or cookie) for a new pair',
      access: 'public',
      tags,
      body: z.strictObject({ refreshToken: tokenString.optional() }),
      response: sessionResponse,
      errors: ['TOKEN_EXPIRED', 'TOKEN_REVOKED', 'TOKEN_REUSED'],
    },
    async ({ body, req, res }) => {
      const token = body.refreshToken ?? refreshCookie(req);
      if (!token) throw new ApiError('UNAUTHENTICATED', 'Send a refresh token');
      const { pair, user } = await sessions.refresh(token, deviceOf(req, config));
      setRefreshCookie(res, config, pair.refreshToken);
      return { ...pair, user: toPublicUser(user) };
    },
  );

  router.route(
    {
      method: 'post',
      path: '/api/auth/reset-password',
      summary: 'Set a new password with the mailed token; signs out every session',
      access: 'public',
      tags,
      body: z.strictObject({ token: tokenString, password: newPasswordSchema }),
    },
    async ({ body }) => {
      await accounts.resetPassword(body.token, body.password);
    },
  );

  router.route(
    {
      method: 'post',
      path: '/api/auth/logout',
      summary: 'Sign out this session (refresh family and access token)',
      access: 'user',
      tags,
      body: z.strictObject({ refreshToken: tokenString.optional() }),
    },
    async ({ actor, body, userToken, req, res }) => {
      await sessions.logout(actor, { refreshToken: body.refreshToken ?? refreshCookie(req), bearer: userToken });
      clearRefreshCookie(res, config);
    },
  );

  router.route(
    { method: 'post', path: '/api/auth/logout-all', summary: 'Sign out every session of the user', access: 'user', tags },
    async ({ actor, res }) => {
      await sessions.logoutAll(actor);
      clearRefreshCookie(res, config);
    },
  );

  router.route(
    {
      method: 'post',
      path: '/api/auth/change-password',
      summary: 'Change the password; other sessions are signed out, this one gets a fresh pair',
      access: 'user',
      tags,
      body: z.strictObject({ currentPassword: presentedPasswordSchema, newPassword: newPasswordSchema }),
      response: sessionResponse,
      errors: ['INVALID_CREDENTIALS'],
    },
    async ({ actor, body, req, res }) => {
      const { pair, user } = await accounts.changePassword(actor, body, deviceOf(req, config));
      setRefreshCookie(res, config, pair.refreshToken);
      return { ...pair, user: toPublicUser(user) };
    },
  );

  router.route(
    { method: 'get', path: '/api/auth/me', summary: 'The signed-in user and profile', access: 'user', tags, response: meResponse },
    async ({ actor }) => userWithProfile(await profiles.read(actor)),
  );

  router.route(
    {
      method: 'get',
      path: '/api/auth/permissions',
      summary: "What the caller's role may do (the shared authorization table)",
      access: 'user',
      tags,
      response: z.object({ role: z.string(), permissions: z.array(z.object({ action: z.string(), rules: z.array(z.string()) })) }),
    },
    ({ actor }) => ({ role: actor.role, permissions: permissionsFor(actor.role) }),
  );

  router.route(
    {
      method: 'get',
      path: '/api/auth/token-info',
      summary: "Verified claims of the caller's access token and the key ids in use (never secret characters)",
      access: 'user',
      tags,
      response: z.object({
        claims: z.record(z.string(), z.unknown()),
        kid: z.string(),
        currentKid: z.string(),
        refreshKid: z.string(),
        acceptedKids: z.array(z.string()),
        algorithm: z.string(),
      }),
    },
    ({ actor, userToken }) => sessions.tokenInfo(actor, userToken),
  );

  return router;
}
