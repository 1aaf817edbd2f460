import type { IncomingHttpHeaders } from 'node:http';
import { isStrippedHeader } from '@platform/shared-types';

/** RFC 9110 section 7.6.1 hop-by-hop headers, plus those a proxy must not pass on (host is set per upstream). */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'proxy-authorization',
  'proxy-authenticate',
  'host',
  'http2-settings',
  // undici refuses these on requests; the gateway answers 100-continue semantics itself by streaming
  'expect',
]);

/** Headers named in `Connection:` are hop-by-hop too. */
function connectionTokens(value: string | string[] | undefined): Set<string> {
  const tokens = new Set<string>();
  for (const part of (Array.isArray(value) ? value.join(',') : (value ?? '')).split(',')) {
    const token = part.trim().toLowerCase();
    if (token) tokens.add(token);
  }
  return tokens;
}

/**
 * The client's headers as the upstream may see them: no hop-by-hop headers and never any client-sent
 * identity header (x-user-*, x-identity-*, x-service-*, x-username, x-token-jti, in any case or number of copies:
 * node lowercases names and joins copies, so one name test removes them all).
 */
export function upstreamRequestHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const named = headers.connection ? connectionTokens(headers.connection) : undefined;
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || HOP_BY_HOP.has(name) || named?.has(name) || isStrippedHeader(name)) continue;
    out[name] = value;
  }
  return out;
}

/** The upstream's response headers as the client may see them. */
export function clientResponseHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const named = headers.connection ? connectionTokens(headers.connection) : undefined;
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || HOP_BY_HOP.has(name) || named?.has(name)) continue;
    out[name] = value;
  }
  return out;
}

/** Set on every response unless the upstream chose its own value. */
export const SECURITY_HEADERS: Record<string, string> = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
};
