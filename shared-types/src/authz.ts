import type { Actor } from './claims.ts';
import { ApiError } from './errors.ts';
import type { Role } from './roles.ts';

/**
 * One authorization table for the platform. Each action lists, per role, the attribute rules under
 * which that role may act: `any` (no resource condition), `owner` (the resource is the actor's own),
 * `supervisor-of-owner` (the actor supervises the owner; checked with monitoring). Admin may do everything.
 */
export type Rule = 'any' | 'owner' | 'supervisor-of-owner';

export const AUTHORIZATION_TABLE = {
  'profile:read': { enduser: ['owner'], supervisor: ['owner'] },
  'profile:update': { enduser: ['owner'], supervisor: ['owner'] },
  'users:list': {},
  'users:read': { supervisor: ['supervisor-of-owner'] },
  'users:create': {},
  'users:update': {},
  'credits:read': { enduser: ['owner'], supervisor: ['owner', 'supervisor-of-owner'] },
  'credits:allocate': { supervisor: ['supervisor-of-owner'] },
  'credits:deduct': {},
  'credits:calculate': { enduser: ['any'], supervisor: ['any'] },
  'transactions:read': { enduser: ['owner'], supervisor: ['owner', 'supervisor-of-owner'] },
  'usage:read': { enduser: ['owner'], supervisor: ['owner', 'supervisor-of-owner'] },
  'prices:read': { enduser: ['any'], supervisor: ['any'] },
  'prices:update': {},
  'streams:read-active': { supervisor: ['supervisor-of-owner'] },
  'chat:use': { enduser: ['owner'], supervisor: ['owner'] },
  'chat:read': { enduser: ['owner'], supervisor: ['owner', 'supervisor-of-owner'] },
  'chat:observe': { supervisor: ['supervisor-of-owner'] },
  'chat:interrupt': { supervisor: ['supervisor-of-owner'] },
  'chat:feedback': { supervisor: ['supervisor-of-owner'] },
  'files:use': { enduser: ['owner'], supervisor: ['owner'] },
  'students:list': { supervisor: ['any'] },
  'relationships:manage': {},
  'relationships:read': { supervisor: ['owner'] },
  'api-keys:manage': { enduser: ['owner'], supervisor: ['owner'] },
} as const satisfies Record<string, Partial<Record<Exclude<Role, 'admin'>, readonly Rule[]>>>;

export type Action = keyof typeof AUTHORIZATION_TABLE;

export interface Resource {
  /** user id of the resource's owner; absent for actions on no particular user's resource */
  ownerId?: string;
  /** whether the actor supervises the owner, when already known */
  supervisorOfOwner?: boolean;
}

function rulesFor(actor: Actor, action: Action): readonly Rule[] {
  const entry = AUTHORIZATION_TABLE[action] as Partial<Record<Role, readonly Rule[]>>;
  return entry[actor.role] ?? [];
}

/** Synchronous check with what is known; a supervisor rule counts only when `supervisorOfOwner` is true. */
export function can(actor: Actor, action: Action, resource: Resource = {}): boolean {
  if (actor.role === 'admin') return true;
  return rulesFor(actor, action).some((rule) => {
    if (rule === 'any') return true;
    if (rule === 'owner') return resource.ownerId !== undefined && resource.ownerId === actor.userId;
    return resource.ownerId !== undefined && resource.ownerId !== actor.userId && resource.supervisorOfOwner === true;
  });
}

/**
 * Async check that asks `isSupervisorOf` (a monitoring relationship check) only when the decision depends on it.
 * Throws FORBIDDEN when the actor may not act.
 */
export async function authorize(
  actor: Actor,
  action: Action,
  resource: Resource,
  isSupervisorOf?: (supervisorId: string, studentId: string) => Promise<boolean>,
): Promise<void> {
  if (can(actor, action, resource)) return;
  const needsRelationship =
    rulesFor(actor, action).includes('supervisor-of-owner') &&
    resource.ownerId !== undefined &&
    resource.ownerId !== actor.userId &&
    resource.supervisorOfOwner === undefined;
  if (needsRelationship && isSupervisorOf && (await isSupervisorOf(actor.userId, resource.ownerId as string))) return;
  throw new ApiError('FORBIDDEN', `Not allowed to ${action}`);
}

/** What a role may do at all (with the attribute rules that still apply), for GET /api/auth/permissions. */
export function permissionsFor(role: Role): Array<{ action: Action; rules: readonly Rule[] }> {
  return (Object.keys(AUTHORIZATION_TABLE) as Action[]).flatMap((action) => {
    if (role === 'admin') return [{ action, rules: ['any'] as const }];
    const rules = (AUTHORIZATION_TABLE[action] as Partial<Record<Role, readonly Rule[]>>)[role];
    return rules && rules.length > 0 ? [{ action, rules }] : [];
  });
}
