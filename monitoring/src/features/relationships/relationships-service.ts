import { type Actor, ApiError, authorize, type RelationshipCheck, type UserEvent } from '@platform/shared-types';
import type { Upstreams } from '../../upstreams.ts';
import type { CheckCache, Pair, RelationshipChanges } from './relationship-changes.ts';
import { type ListFilter, type Relationship, type RelationshipsDal, toRelationship } from './relationships-dal.ts';

const SUPERVISING_ROLES = new Set(['supervisor', 'admin']);

export interface RelationshipServiceDeps {
  relationships: RelationshipsDal;
  upstreams: Pick<Upstreams, 'users'>;
  cache: CheckCache;
  changes: Pick<RelationshipChanges, 'publish'>;
}

/** The rules of supervisor-student pairs, the check other services rely on, and how user events end pairs. */
export function relationshipService(deps: RelationshipServiceDeps) {
  const { relationships: dal, upstreams, cache, changes } = deps;

  /** The answer other services rely on: an index lookup behind a short cache that every write invalidates first. */
  async function check(pair: Pair): Promise<RelationshipCheck> {
    const cached = cache.get(pair);
    if (cached) return cached;
    const generation = cache.begin();
    const row = await dal.findActivePair(pair.supervisorId, pair.studentId);
    const answer: RelationshipCheck = row ? { supervises: true, relationshipId: row.id, since: row.since.toISOString() } : { supervises: false };
    cache.store(pair, answer, generation);
    return answer;
  }

  const isSupervisorOf = async (supervisorId: string, studentId: string): Promise<boolean> => (await check({ supervisorId, studentId })).supervises;

  return {
    check,
    isSupervisorOf,

    /**
     * Admin creates a pair. The supervisor must be an active supervisor or admin, the student an active user,
     * and they must differ; an active pair is a CONFLICT, an inactive one is reactivated.
     */
    async create(actor: Actor, input: Pair, userToken?: string): Promise<{ relationship: Relationship; reactivated: boolean }> {
      await authorize(actor, 'relationships:manage', {});
      if (input.supervisorId === input.studentId) {
        throw new ApiError('VALIDATION_FAILED', 'Nobody supervises themself', {
          errors: [{ path: 'body.studentId', message: 'must differ from supervisorId' }],
        });
      }
      const users = await upstreams.users([input.supervisorId, input.studentId], userToken);
      const supervisor = users.get(input.supervisorId);
      const student = users.get(input.studentId);
      if (!supervisor) throw new ApiError('NOT_FOUND', `No user ${input.supervisorId}`);
      if (!student) throw new ApiError('NOT_FOUND', `No user ${input.studentId}`);
      const errors: Array<{ path: string; message: string }> = [];
      if (!SUPERVISING_ROLES.has(supervisor.role))
        errors.push({ path: 'body.supervisorId', message: `user has role ${supervisor.role}; only a supervisor or admin can supervise` });
      if (supervisor.status !== 'active') errors.push({ path: 'body.supervisorId', message: 'user is disabled' });
      if (student.status !== 'active') errors.push({ path: 'body.studentId', message: 'user is disabled' });
      if (errors.length > 0) throw new ApiError('VALIDATION_FAILED', 'These users cannot form a supervision', { errors });

      const created = await dal.createOrReactivate({ ...input, createdBy: actor.userId });
      if (!created) throw new ApiError('CONFLICT', 'This supervisor already supervises this student');
      await changes.publish([input]);
      return { relationship: toRelationship(created.relationship), reactivated: created.reactivated };
    },

    async remove(actor: Actor, id: string): Promise<void> {
      await authorize(actor, 'relationships:manage', {});
      const removed = await dal.deleteById(id);
      if (!removed) throw new ApiError('NOT_FOUND', `No relationship ${id}`);
      // Invalidate before answering: a check right after this DELETE must not see the pair.
      await changes.publish([{ supervisorId: removed.supervisor_id, studentId: removed.student_id }]);
    },

    /** Admin lists any pairs; a supervisor only its own (the filter is forced to itself). */
    async list(actor: Actor, filter: ListFilter, page: { page: number; limit: number }, userToken?: string) {
      let effective = filter;
      if (actor.role !== 'admin') {
        const supervisorId = filter.supervisorId ?? actor.userId;
        await authorize(actor, 'relationships:read', { ownerId: supervisorId });
        effective = { ...filter, supervisorId };
      }
      const { rows, total } = await dal.list(effective, { offset: (page.page - 1) * page.limit, limit: page.limit });
      // Names for people reading the list; best effort, the pairs stand without them.
      const users = await upstreams
        .users(
          rows.flatMap((row) => [row.supervisor_id, row.student_id]),
          userToken,
        )
        .catch(() => undefined);
      const summary = (id: string) => {
        const user = users?.get(id);
        return user ? { id: user.id, username: user.username, email: user.email, role: user.role, status: user.status } : null;
      };
      const relationships = rows.map((row) => ({ ...toRelationship(row), supervisor: summary(row.supervisor_id), student: summary(row.student_id) }));
      return { relationships, page: page.page, limit: page.limit, total, usersKnown: users !== undefined };
    },

    /** FORBIDDEN unless the actor may observe the student (admin always; a supervisor through an active pair). */
    async authorizeObserve(actor: Actor, studentId: string): Promise<void> {
      await authorize(actor, 'chat:observe', { ownerId: studentId }, isSupervisorOf);
    },

    pruneProcessedEvents(days = 30): Promise<number> {
      return dal.pruneProcessedEvents(days);
    },

    /**
     * Applies one user event, once per event id: a disabled user's pairs end on both sides; a user whose role
     * no longer supervises loses the pairs it supervises. Only pairs active since before the event are touched.
     * Returns how many pairs were deactivated (0 for a repeated event).
     */
    async applyUserEvent(event: UserEvent): Promise<number> {
      const occurredAt = new Date(event.occurredAt);
      const notAfter = Number.isNaN(occurredAt.getTime()) ? new Date() : occurredAt;
      const ended = await dal.transaction(async (trx) => {
        const fresh = await dal.markEventProcessed({ eventId: event.eventId, type: event.type, userId: event.user.id }, trx);
        if (!fresh) return [];
        const rows = [];
        if (event.user.status === 'disabled') {
          rows.push(...(await dal.deactivate({ supervisorId: event.user.id }, 'supervisor_disabled', notAfter, trx)));
          rows.push(...(await dal.deactivate({ studentId: event.user.id }, 'student_disabled', notAfter, trx)));
        } else if (!SUPERVISING_ROLES.has(event.user.role)) {
          rows.push(...(await dal.deactivate({ supervisorId: event.user.id }, 'supervisor_role_changed', notAfter, trx)));
        }
        if (rows.length > 0) await dal.setEventDeactivations(event.eventId, rows.length, trx);
        return rows;
      });
      await changes.publish(ended.map((row) => ({ supervisorId: row.supervisor_id, studentId: row.student_id })));
      return ended.length;
    },
  };
}

export type RelationshipService = ReturnType<typeof relationshipService>;
