import type { Request, Response } from 'express';
import type { Config } from '../../config.ts';
import type { DeviceInfo } from './sessions-service.ts';

export const REFRESH_COOKIE = 'refresh_token';
const COOKIE_PATH = '/api/auth';

/** httpOnly, SameSite=Strict, scoped to /api/auth; Secure everywhere but development (plain-http localhost). */
export function setRefreshCookie(res: Response, config: Config, refreshToken: string): void {
  res.cookie(REFRESH_COOKIE, refreshToken, {
    httpOnly: true,
    sameSite: 'strict',
    secure: config.NODE_ENV !== 'development',
    path: COOKIE_PATH,
    maxAge: config.REFRESH_TOKEN_TTL_SECONDS * 1000,
  });
}

export function clearRefreshCookie(res: Response, config: Config): void {
  res.clearCookie(REFRESH_COOKIE, { httpOnly: true, sameSite: 'strict', secure: config.NODE_ENV !== 'development', path: COOKIE_PATH });
}

/** The refresh_token cookie, if the request carries exactly one well-formed value. */
export function refreshCookie(req: Request): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  const values = header
    .split(';')
    .map((part) => part.trim())
    .filter((part) => part.startsWith(`${REFRESH_COOKIE}=`))
    .map((part) => part.slice(REFRESH_COOKIE.length + 1));
  const value = values.length === 1 ? values[0] : undefined;
  return value && /^[A-Za-z0-9._-]{1,4096}$/.test(value) ? value : undefined;
}

/**
 * The client address: the X-Forwarded-For entry written by the outermost trusted proxy. The gateway replaces
 * whatever X-Forwarded-For a client sends with the address it saw (or, behind a trusted proxy of its own,
 * appends it), so counting `hops` entries from the right never reaches a value the client wrote.
 */
export function clientAddress(req: Request, hops: number): string | undefined {
  const forwarded = req.headers['x-forwarded-for'];
  const entries = (Array.isArray(forwarded) ? forwarded.join(',') : (forwarded ?? ''))
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0);
  const chain = [...entries, req.socket.remoteAddress ?? ''];
  return chain[Math.max(0, chain.length - 1 - hops)] || undefined;
}

export function deviceOf(req: Request, config: Pick<Config, 'TRUSTED_PROXY_HOPS'>): DeviceInfo {
  const userAgent = req.headers['user-agent'];
  return { userAgent: typeof userAgent === 'string' ? userAgent.slice(0, 256) : undefined, ip: clientAddress(req, config.TRUSTED_PROXY_HOPS) };
}
