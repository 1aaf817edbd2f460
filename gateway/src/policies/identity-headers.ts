import { identitySigner, isStrippedHeader } from '@platform/shared-types';
import { z } from 'zod';
import type { Exchange, StepPolicy } from '../engine/exchange.ts';

export const identityHeadersAction = z.object({}).strict();

/**
 * DESIGN section 3. Client identity headers are already gone (the engine never copies them); this deletes any
 * a policy may have added, then injects the signed set for the verified actor, X-Request-Id and X-Forwarded-*.
 * The signature is bound to the method, the path forwarded and the target service, so a captured set is refused
 * on any other route or service. Authorization goes on unchanged so services can call each other on the user's behalf.
 */
export function identityHeadersPolicy(deps: { internalSecret: string; trustProxy: () => boolean; target: (ex: Exchange) => string | undefined }): StepPolicy {
  const sign = identitySigner(deps.internalSecret);
  return {
    kind: 'step',
    run(ex) {
      const headers = ex.upstreamHeaders;
      for (const name of Object.keys(headers)) if (isStrippedHeader(name)) delete headers[name];
      const service = ex.actor ? deps.target(ex) : undefined;
      // no proxy target (a pipeline answering itself): nothing to sign for
      if (ex.actor && service) sign(headers, ex.actor, ex.requestId, { method: ex.method, path: ex.path, service });
      headers['x-request-id'] = ex.requestId;
      const remote = ex.req.socket.remoteAddress ?? '';
      const given = ex.req.headers['x-forwarded-for'];
      headers['x-forwarded-for'] = deps.trustProxy() && typeof given === 'string' && given ? `${given}, ${remote}` : remote;
      const proto = ex.req.headers['x-forwarded-proto'];
      headers['x-forwarded-proto'] =
        deps.trustProxy() && typeof proto === 'string' && proto ? proto : 'encrypted' in ex.req.socket && ex.req.socket.encrypted ? 'https' : 'http';
      if (ex.req.headers.host) headers['x-forwarded-host'] = ex.req.headers.host;
    },
  };
}
