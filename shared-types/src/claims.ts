import type { Role } from './roles.ts';

/** The identity every part agrees on: who is acting. */
export interface Actor {
  userId: string;
  username: string;
  email: string;
  role: Role;
  /** jti of the access token the actor presented (absent for service-only calls). */
  jti?: string;
  /** the API key the request came with (DESIGN 5b); absent for password sign-ins */
  apiKeyId?: string;
}

interface IdentityClaims {
  sub: string;
  username: string;
  email: string;
  role: Role;
  jti: string;
  iat: number;
  /** issued-at in milliseconds (same instant as iat); absent in tokens issued before it was introduced */
  iatMs?: number;
  exp: number;
}

export interface AccessClaims extends IdentityClaims {
  type: 'access';
  /** `["api_key"]` on tokens the gateway mints for API-key requests (DESIGN 2) */
  amr?: string[];
  /** the API key's id, on minted tokens only */
  akid?: string;
}

export interface RefreshClaims extends IdentityClaims {
  type: 'refresh';
  /** rotation family id */
  fam: string;
}

export interface ServiceClaims {
  type: 'service';
  iss: string;
  aud: string;
  iat: number;
  exp: number;
}

export type ServiceName = 'gateway' | 'auth' | 'accounting' | 'chat' | 'monitoring';

export function actorFromClaims(claims: AccessClaims): Actor {
  const actor: Actor = { userId: claims.sub, username: claims.username, email: claims.email, role: claims.role, jti: claims.jti };
  if (typeof claims.akid === 'string' && claims.akid.length > 0) actor.apiKeyId = claims.akid;
  return actor;
}
