import { createHmac, timingSafeEqual } from 'node:crypto';
import { get as httpGet } from 'node:http';
import type { Actor } from '../claims.ts';
import { IDENTITY_HEADERS } from '../headers.ts';
import { bindingPath, claimedActor, identityValues, identityValuesList, signIdentityHeaders } from '../identity-signature.ts';

/**
 * The gateway's signing step, for service-level tests that call a service directly. Since DESIGN section 3
 * binds the identity signature to method, path and target service, a test cannot sign headers before it
 * knows the request. So the kit hands out *presigned* headers (an HMAC over the values alone, which no
 * service accepts), and this stand-in, wrapped around the process' `fetch`, does what the gateway does when
 * the request leaves: checks the presignature (a header tampered with after signing stays invalid, as a
 * forged one would at the gateway) and replaces it with the request-bound signature for the target service,
 * whose name it reads once from the service's `/health`.
 */
const PRESIGN = /^t=(\d{1,12}),presign=([0-9a-f]{64})$/;

function presignMac(secret: string, timestamp: number, actor: Actor, requestId: string): string {
  return createHmac('sha256', secret)
    .update(['presign', String(timestamp), ...identityValuesList(actor, requestId)].join('\n'))
    .digest('hex');
}

export function presignIdentityHeaders(secret: string, actor: Actor, requestId: string, timestamp = Math.floor(Date.now() / 1000)): Record<string, string> {
  return { ...identityValues(actor, requestId), [IDENTITY_HEADERS.signature]: `t=${timestamp},presign=${presignMac(secret, timestamp, actor, requestId)}` };
}

/**
 * Shared by every copy of this module in the process (a package may be loaded twice), and re-installed when
 * something else (nock restoring its interceptor) has put another `fetch` in place.
 */
interface SignerState {
  secrets: Set<string>;
  serviceNames: Map<string, Promise<string | undefined>>;
  wrapper?: typeof fetch;
}
const STATE = Symbol.for('platform.test-gateway-signer');
function state(): SignerState {
  const holder = globalThis as typeof globalThis & { [STATE]?: SignerState };
  holder[STATE] ??= { secrets: new Set(), serviceNames: new Map() };
  return holder[STATE];
}

/** the service's own name, from its /health (asked with node's own HTTP client: no fetch wrapper in the way) */
function serviceAt(origin: string): Promise<string | undefined> {
  const names = state().serviceNames;
  let name = names.get(origin);
  if (!name) {
    name = new Promise<string | undefined>((resolve) => {
      const req = httpGet(`${origin}/health`, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => {
          try {
            const service = (JSON.parse(body) as { service?: unknown }).service;
            resolve(typeof service === 'string' ? service : undefined);
          } catch {
            resolve(undefined);
          }
        });
      });
      req.on('error', () => resolve(undefined));
    });
    names.set(origin, name);
  }
  return name;
}

/** The timestamp of a valid presignature under one of the registered secrets. */
function presigned(headers: Record<string, string>): { secret: string; timestamp: number } | undefined {
  const match = PRESIGN.exec(headers[IDENTITY_HEADERS.signature] ?? '');
  if (!match) return undefined;
  const { actor, requestId, roleValid } = claimedActor(headers);
  if (!roleValid || !actor.userId) return undefined;
  const timestamp = Number(match[1]);
  const given = Buffer.from(match[2] as string, 'hex');
  for (const secret of state().secrets) {
    if (timingSafeEqual(Buffer.from(presignMac(secret, timestamp, actor, requestId), 'hex'), given)) return { secret, timestamp };
  }
  return undefined;
}

type FetchLike = (input: never, init?: never) => Promise<unknown>;
interface RequestLike {
  url: string;
  method: string;
  headers: Iterable<[string, string]>;
}
interface InitLike {
  method?: string;
  headers?: unknown;
}

/**
 * `plain` with the stand-in in front: for any fetch implementation (the global one, or undici's, which a
 * suite uses to stay clear of nock).
 */
export function withGatewaySigner<F extends FetchLike>(plain: F): F {
  const call = plain as unknown as (input: unknown, init?: unknown) => Promise<unknown>;
  const signing = async (input: unknown, init?: InitLike) => {
    const request = typeof input === 'object' && input !== null && 'url' in input && 'headers' in input ? (input as RequestLike) : undefined;
    const headers: Record<string, string> = {};
    new Headers((init?.headers ?? request?.headers) as ConstructorParameters<typeof Headers>[0]).forEach((value, name) => {
      headers[name] = value;
    });
    const found = presigned(headers);
    if (!found) return call(input, init);
    const url = new URL(request ? request.url : String(input));
    const service = await serviceAt(url.origin);
    if (!service) return call(input, init);
    const { actor, requestId } = claimedActor(headers);
    const method = init?.method ?? request?.method ?? 'GET';
    const signed = signIdentityHeaders(found.secret, actor, requestId, { method, path: bindingPath(url.pathname), service }, found.timestamp);
    return call(input, { ...init, headers: { ...headers, ...signed } });
  };
  return signing as unknown as F;
}

/** Puts the stand-in around the current global `fetch` (unless it is there already); `secret` joins the secrets it signs for. */
export function installGatewaySigner(secret: string): void {
  const current = state();
  current.secrets.add(secret);
  if (current.wrapper && globalThis.fetch === current.wrapper) return;
  const wrapper = withGatewaySigner(globalThis.fetch);
  current.wrapper = wrapper;
  globalThis.fetch = wrapper;
}
