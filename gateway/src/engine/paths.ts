/**
 * Request-target handling before any matching. A path is refused when it could mean something else to a
 * service than to the gateway: encoded separators or dots (%2f, %5c, %2e, double-encoding %25), backslashes,
 * empty segments (//), dot segments, control characters, a fragment (#, never part of a request target), path
 * parameters (;jsessionid=..., which some servers strip and others keep), or a target that is not origin-form.
 */
export type ParsedTarget = { ok: true; path: string; matchPath: string; query: string; internal: boolean } | { ok: false; reason: string; internal: boolean };

const FORBIDDEN_ESCAPES = /%(2e|2f|5c|25|00)/i;
const INTERNAL_PREFIX = 'internal';

export function parseTarget(url: string): ParsedTarget {
  const queryAt = url.indexOf('?');
  const path = queryAt === -1 ? url : url.slice(0, queryAt);
  const query = queryAt === -1 ? '' : url.slice(queryAt);
  const internal = looksInternal(path);
  if (!path.startsWith('/')) return { ok: false, reason: 'request target must be a path', internal };
  if (url.includes('#')) return { ok: false, reason: 'fragment (#) in request target', internal };
  if (path.includes('\\')) return { ok: false, reason: 'backslash in path', internal };
  if (FORBIDDEN_ESCAPES.test(path)) return { ok: false, reason: 'encoded separator or dot in path', internal };
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    return { ok: false, reason: 'malformed percent-encoding', internal };
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we refuse
  if (/[\u0000-\u001f\u007f]/.test(decoded)) return { ok: false, reason: 'control character in path', internal };
  // raw or encoded (%23, %3b): a service may read either as a separator
  if (decoded.includes('#')) return { ok: false, reason: 'fragment (#) in path', internal };
  if (decoded.includes(';')) return { ok: false, reason: 'path parameter (;) in path', internal };
  const segments = decoded.split('/').slice(1);
  const trailingSlash = segments.length > 1 && segments[segments.length - 1] === '';
  const inner = trailingSlash ? segments.slice(0, -1) : segments;
  if (inner.length > 1 || inner[0] !== '') {
    for (const segment of inner) {
      if (segment === '') return { ok: false, reason: 'empty path segment', internal };
      if (segment === '.' || segment === '..') return { ok: false, reason: 'dot segment in path', internal };
    }
  }
  const matchPath = trailingSlash ? `/${inner.join('/')}` : decoded;
  return { ok: true, path, matchPath, query, internal: isInternal(matchPath) };
}

/** For refused targets only: whether it aimed at /internal in some spelling (then the answer is a plain 404). */
function looksInternal(rawPath: string): boolean {
  let text = rawPath;
  for (let i = 0; i < 3; i++) {
    try {
      const next = decodeURIComponent(text);
      if (next === text) break;
      text = next;
    } catch {
      break;
    }
  }
  return text
    .replaceAll('\\', '/')
    .toLowerCase()
    .split('/')
    .some((segment) => segment === INTERNAL_PREFIX);
}

function isInternal(matchPath: string): boolean {
  const first = matchPath.split('/')[1] ?? '';
  return first.toLowerCase() === INTERNAL_PREFIX;
}
