import { type Actor, ApiError, authorize, type Logger, type PublicUser } from '@platform/shared-types';
import type { ActiveStream, Balance, StreamTiming, Upstreams } from '../../upstreams.ts';
import type { RelationshipRow, RelationshipsDal } from '../relationships/relationships-dal.ts';
import type { RelationshipService } from '../relationships/relationships-service.ts';

export type SourceState = 'ok' | 'unavailable';

export interface SupervisedStudent {
  id: string;
  relationshipId: string;
  since: string;
  username: string | null;
  email: string | null;
  displayName: string | null;
  status: string | null;
  balance: { available: number; reserved: number } | null;
  activeStreams: Array<
    Pick<ActiveStream, 'sessionId' | 'reservationId' | 'modelId' | 'reservedCredits' | 'startedAt'> & {
      /** chat's measure for the running stream: null before its first token, or when chat cannot tell */
      timeToFirstTokenMs: number | null;
    }
  > | null;
}

export interface StudentsServiceDeps {
  pairs: Pick<RelationshipsDal, 'list' | 'findById'>;
  upstreams: Pick<Upstreams, 'users' | 'balances' | 'activeStreams' | 'streamTimings'>;
  relationships: Pick<RelationshipService, 'check'>;
  logger: Logger;
}

/** A supervisor's students with names (auth) and balances and running streams (accounting), each source best effort. */
export function studentsService(deps: StudentsServiceDeps) {
  const { pairs, upstreams, relationships, logger } = deps;

  /** Whose students the actor may list: its own; an admin any supervisor's (default: its own). */
  async function supervisorFor(actor: Actor, requested: string | undefined): Promise<string> {
    await authorize(actor, 'students:list', {});
    const supervisorId = requested ?? actor.userId;
    if (actor.role !== 'admin' && supervisorId !== actor.userId) throw new ApiError('FORBIDDEN', 'You may list only your own students');
    return supervisorId;
  }

  /** Chat's start and first-token times of the running streams, best effort (an empty map when chat cannot tell). */
  async function timings(streams: Map<string, ActiveStream[]> | undefined, userToken?: string): Promise<Map<string, StreamTiming>> {
    const sessionIds = [...(streams?.values() ?? [])].flat().map((stream) => stream.sessionId);
    if (sessionIds.length === 0) return new Map();
    try {
      return await upstreams.streamTimings(sessionIds, userToken);
    } catch (error) {
      logger.warn({ err: { message: (error as Error).message }, source: 'chat' }, 'stream timings unavailable');
      return new Map();
    }
  }

  async function enrich(rows: RelationshipRow[], userToken?: string) {
    const ids = rows.map((row) => row.student_id);
    const settle = async <T>(what: string, work: () => Promise<T>): Promise<T | undefined> => {
      if (ids.length === 0) return undefined;
      try {
        return await work();
      } catch (error) {
        logger.warn({ err: { message: (error as Error).message }, source: what }, 'student list source unavailable');
        return undefined;
      }
    };
    const [users, balances, streams] = await Promise.all([
      settle<Map<string, PublicUser>>('auth', () => upstreams.users(ids, userToken)),
      settle<Map<string, Balance>>('accounting', () => upstreams.balances(ids, userToken)),
      settle<Map<string, ActiveStream[]>>('accounting', () => upstreams.activeStreams(ids, userToken)),
    ]);
    const streamTimings = await timings(streams, userToken);
    const students = rows.map((row) => studentView(row, users?.get(row.student_id), balances, streams, streamTimings));
    // chat's timings are an extra: without them a stream shows no time to first token, the list stays complete
    const known = (...sources: unknown[]): SourceState => (ids.length === 0 || sources.every((source) => source !== undefined) ? 'ok' : 'unavailable');
    return { students, sources: { auth: known(users), accounting: known(balances, streams) } };
  }

  return {
    async list(actor: Actor, query: { supervisorId?: string; page: number; limit: number }, userToken?: string) {
      const supervisorId = await supervisorFor(actor, query.supervisorId);
      const { rows, total } = await pairs.list({ supervisorId, active: true }, { offset: (query.page - 1) * query.limit, limit: query.limit });
      const enriched = await enrich(rows, userToken);
      return { supervisorId, students: enriched.students, page: query.page, limit: query.limit, total, sources: enriched.sources };
    },

    /** One student: FORBIDDEN for a supervisor that does not supervise it, NOT_FOUND for an admin asking about nobody. */
    async one(actor: Actor, studentId: string, requestedSupervisor: string | undefined, userToken?: string) {
      const supervisorId = await supervisorFor(actor, requestedSupervisor);
      const check = await relationships.check({ supervisorId, studentId });
      if (!check.supervises) {
        if (actor.role !== 'admin') throw new ApiError('FORBIDDEN', 'You do not supervise this student');
        throw new ApiError('NOT_FOUND', `Supervisor ${supervisorId} has no student ${studentId}`);
      }
      const row = await pairs.findById(check.relationshipId as string);
      if (!row) throw new ApiError('NOT_FOUND', `No student ${studentId}`);
      const enriched = await enrich([row], userToken);
      return { supervisorId, student: enriched.students[0] as SupervisedStudent, sources: enriched.sources };
    },
  };
}

export type StudentsService = ReturnType<typeof studentsService>;

/** One student of the list; `null` for what a source that did not answer would have told. */
function studentView(
  row: RelationshipRow,
  user: PublicUser | undefined,
  balances: Map<string, Balance> | undefined,
  streams: Map<string, ActiveStream[]> | undefined,
  timings: Map<string, StreamTiming>,
): SupervisedStudent {
  const balance = balances?.get(row.student_id);
  return {
    id: row.student_id,
    relationshipId: row.id,
    since: row.since.toISOString(),
    username: user?.username ?? null,
    email: user?.email ?? null,
    displayName: user?.displayName ?? null,
    status: user?.status ?? null,
    // a student accounting knows nothing about has no credits yet
    balance: balances ? { available: balance?.available ?? 0, reserved: balance?.reserved ?? 0 } : null,
    activeStreams: streams
      ? (streams.get(row.student_id) ?? []).map(({ sessionId, reservationId, modelId, reservedCredits, startedAt }) => ({
          sessionId,
          reservationId,
          modelId,
          reservedCredits,
          startedAt,
          timeToFirstTokenMs: timings.get(sessionId)?.timeToFirstTokenMs ?? null,
        }))
      : null,
  };
}
