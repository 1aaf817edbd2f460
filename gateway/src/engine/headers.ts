import type { IncomingHttpHeaders } from 'node:http';
import { createRequire } from 'node:module';
import { isStrippedHeader } from '@platform/shared-types';
import type { util as UndiciUtil } from 'undici';

// from undici's core module (already loaded with its Pool), not the package index (fetch, WebSocket...: ~15 MB RSS)
const { headerNameToString } = createRequire(import.meta.url)('undici/lib/core/util.js') as typeof UndiciUtil;

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

/**
 * Headers named in `Connection:` are hop-by-hop too. Undefined when it names none beyond those always dropped
 * (`keep-alive` or `close`, what nearly every client and service sends: no parsing for them).
 */
function connectionTokens(value: string | string[] | undefined): Set<string> | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string') {
    const lower = value.toLowerCase();
    if (lower === 'keep-alive' || lower === 'close') return undefined;
  }
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
  const named = connectionTokens(headers.connection);
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
  const named = connectionTokens(headers.connection);
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || HOP_BY_HOP.has(name) || named?.has(name)) continue;
    out[name] = value;
  }
  return out;
}

/** Response headers node keeps the first copy of (as IncomingMessage does): a second one is dropped. */
const SINGLE = new Set([
  'content-type',
  'content-length',
  'user-agent',
  'referer',
  'host',
  'authorization',
  'proxy-authorization',
  'if-modified-since',
  'if-unmodified-since',
  'from',
  'location',
  'max-forwards',
  'retry-after',
  'etag',
  'last-modified',
  'server',
  'age',
  'expires',
]);

/**
 * undici's raw response headers (name, value, name, value... as Buffers) joined the way node's IncomingMessage
 * joins them: names lowercased, `set-cookie` copies kept apart, the singletons above first copy only, other
 * copies joined with `, `. So a response reads the same whichever client fetched it. `forClient`: in the same
 * pass, without the headers `clientResponseHeaders` drops (hop-by-hop ones and those named in `Connection`).
 */
export function headersFromRaw(raw: Buffer[], forClient = false): Record<string, string | string[]> {
  // no prototype: a header named `constructor` or `__proto__` is a header like any other
  const out: Record<string, string | string[]> = Object.create(null);
  let connection: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = headerNameToString(raw[i] as Buffer);
    const value = (raw[i + 1] as Buffer).toString('latin1');
    if (forClient && HOP_BY_HOP.has(name)) {
      if (name === 'connection') connection = connection === undefined ? value : `${connection}, ${value}`;
      continue;
    }
    const seen = out[name];
    if (seen === undefined) out[name] = name === 'set-cookie' ? [value] : value;
    else if (Array.isArray(seen)) seen.push(value);
    else if (!SINGLE.has(name)) out[name] = `${seen}, ${value}`;
  }
  const named = connectionTokens(connection);
  if (named) for (const name of named) delete out[name];
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
