import { createHmac, timingSafeEqual } from 'node:crypto';
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

const secrets = new Set<string>();
const serviceNames = new Map<string, Promise<string | undefined>>();
let originalFetch: typeof fetch | undefined;

function serviceAt(origin: string): Promise<string | undefined> {
  let name = serviceNames.get(origin);
  if (!name) {
    name = (originalFetch as typeof fetch)(`${origin}/health`)
      .then(async (response) => ((await response.json()) as { service?: unknown }).service)
      .then((service) => (typeof service === 'string' ? service : undefined))
      .catch(() => undefined);
    serviceNames.set(origin, name);
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
  for (const secret of secrets) {
    if (timingSafeEqual(Buffer.from(presignMac(secret, timestamp, actor, requestId), 'hex'), given)) return { secret, timestamp };
  }
  return undefined;
}

/** Installs the stand-in once per process; `secret` joins the secrets it signs for. */
export function installGatewaySigner(secret: string): void {
  secrets.add(secret);
  if (originalFetch) return;
  const plain = globalThis.fetch;
  originalFetch = plain;
  globalThis.fetch = async (input, init) => {
    const request = input instanceof Request ? input : undefined;
    const headers: Record<string, string> = {};
    new Headers(init?.headers ?? request?.headers).forEach((value, name) => {
      headers[name] = value;
    });
    const found = presigned(headers);
    if (!found) return plain(input, init);
    const url = new URL(request ? request.url : String(input));
    const service = await serviceAt(url.origin);
    if (!service) return plain(input, init);
    const { actor, requestId } = claimedActor(headers);
    const method = init?.method ?? request?.method ?? 'GET';
    const signed = signIdentityHeaders(found.secret, actor, requestId, { method, path: bindingPath(url.pathname), service }, found.timestamp);
    return plain(input, { ...init, headers: { ...headers, ...signed } });
  };
}
