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

/** A supervisor's students with names (auth) and balances and running streams (accounting), each source best effort. */
export class StudentsService {
  readonly #pairs: RelationshipsDal;
  readonly #upstreams: Upstreams;
  readonly #relationships: RelationshipService;
  readonly #logger: Logger;

  constructor(deps: { pairs: RelationshipsDal; upstreams: Upstreams; relationships: RelationshipService; logger: Logger }) {
    this.#pairs = deps.pairs;
    this.#upstreams = deps.upstreams;
    this.#relationships = deps.relationships;
    this.#logger = deps.logger;
  }

  /** Whose students the actor may list: its own; an admin any supervisor's (default: its own). */
  async #supervisorFor(actor: Actor, requested: string | undefined): Promise<string> {
    await authorize(actor, 'students:list', {});
    const supervisorId = requested ?? actor.userId;
    if (actor.role !== 'admin' && supervisorId !== actor.userId) throw new ApiError('FORBIDDEN', 'You may list only your own students');
    return supervisorId;
  }

  async list(actor: Actor, query: { supervisorId?: string; page: number; limit: number }, userToken?: string) {
    const supervisorId = await this.#supervisorFor(actor, query.supervisorId);
    const { rows, total } = await this.#pairs.list({ supervisorId, active: true }, { offset: (query.page - 1) * query.limit, limit: query.limit });
    const enriched = await this.#enrich(rows, userToken);
    return { supervisorId, students: enriched.students, page: query.page, limit: query.limit, total, sources: enriched.sources };
  }

  /** One student: FORBIDDEN for a supervisor that does not supervise it, NOT_FOUND for an admin asking about nobody. */
  async one(actor: Actor, studentId: string, requestedSupervisor: string | undefined, userToken?: string) {
    const supervisorId = await this.#supervisorFor(actor, requestedSupervisor);
    const check = await this.#relationships.check({ supervisorId, studentId });
    if (!check.supervises) {
      if (actor.role !== 'admin') throw new ApiError('FORBIDDEN', 'You do not supervise this student');
      throw new ApiError('NOT_FOUND', `Supervisor ${supervisorId} has no student ${studentId}`);
    }
    const row = await this.#pairs.findById(check.relationshipId as string);
    if (!row) throw new ApiError('NOT_FOUND', `No student ${studentId}`);
    const enriched = await this.#enrich([row], userToken);
    return { supervisorId, student: enriched.students[0] as SupervisedStudent, sources: enriched.sources };
  }

  /** Chat's start and first-token times of the running streams, best effort (an empty map when chat cannot tell). */
  async #timings(streams: Map<string, ActiveStream[]> | undefined, userToken?: string): Promise<Map<string, StreamTiming>> {
    const sessionIds = [...(streams?.values() ?? [])].flat().map((stream) => stream.sessionId);
    if (sessionIds.length === 0) return new Map();
    try {
      return await this.#upstreams.streamTimings(sessionIds, userToken);
    } catch (error) {
      this.#logger.warn({ err: { message: (error as Error).message }, source: 'chat' }, 'stream timings unavailable');
      return new Map();
    }
  }

  async #enrich(rows: RelationshipRow[], userToken?: string) {
    const ids = rows.map((row) => row.student_id);
    const settle = async <T>(what: string, work: () => Promise<T>): Promise<T | undefined> => {
      if (ids.length === 0) return undefined;
      try {
        return await work();
      } catch (error) {
        this.#logger.warn({ err: { message: (error as Error).message }, source: what }, 'student list source unavailable');
        return undefined;
      }
    };
    const [users, balances, streams] = await Promise.all([
      settle<Map<string, PublicUser>>('auth', () => this.#upstreams.users(ids, userToken)),
      settle<Map<string, Balance>>('accounting', () => this.#upstreams.balances(ids, userToken)),
      settle<Map<string, ActiveStream[]>>('accounting', () => this.#upstreams.activeStreams(ids, userToken)),
    ]);
    const timings = await this.#timings(streams, userToken);
    const students: SupervisedStudent[] = rows.map((row) => {
      const user = users?.get(row.student_id);
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
    });
    // chat's timings are an extra: without them a stream shows no time to first token, the list stays complete
    const known = (...sources: unknown[]): SourceState => (ids.length === 0 || sources.every((source) => source !== undefined) ? 'ok' : 'unavailable');
    return { students, sources: { auth: known(users), accounting: known(balances, streams) } };
  }
}
