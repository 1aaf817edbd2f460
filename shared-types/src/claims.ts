import type { Role } from './roles.ts';

/** The identity every part agrees on: who is acting. */
export interface Actor {
  userId: string;
  username: string;
  email: string;
  role: Role;
  /** jti of the access token the actor presented (absent for service-only calls). */
  jti?: string;
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
  return { userId: claims.sub, username: claims.username, email: claims.email, role: claims.role, jti: claims.jti };
}
