import type { Knex } from 'knex';

export interface RelationshipRow {
  id: string;
  supervisor_id: string;
  student_id: string;
  active: boolean;
  created_by: string;
  created_at: Date;
  since: Date;
  deactivated_at: Date | null;
  deactivated_reason: string | null;
}

export interface Relationship {
  id: string;
  supervisorId: string;
  studentId: string;
  active: boolean;
  createdBy: string;
  createdAt: string;
  since: string;
  deactivatedAt: string | null;
  deactivatedReason: string | null;
}

export function toRelationship(row: RelationshipRow): Relationship {
  return {
    id: row.id,
    supervisorId: row.supervisor_id,
    studentId: row.student_id,
    active: row.active,
    createdBy: row.created_by,
    createdAt: row.created_at.toISOString(),
    since: row.since.toISOString(),
    deactivatedAt: row.deactivated_at?.toISOString() ?? null,
    deactivatedReason: row.deactivated_reason,
  };
}

export interface ListFilter {
  supervisorId?: string;
  studentId?: string;
  active?: boolean;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Data access for supervisor-student pairs. Every function runs on `knex`, or inside `trx` when one is given. */
export function relationshipsDal(knex: Knex) {
  return {
    /**
     * Inserts the pair, or reactivates it when it exists inactive, in one statement (race-free).
     * Returns undefined when the pair already exists active.
     */
    async createOrReactivate(pair: { supervisorId: string; studentId: string; createdBy: string }, trx?: Knex.Transaction) {
      const db = trx ?? knex;
      const result = await db.raw<{ rows: Array<RelationshipRow & { inserted: boolean }> }>(
        `INSERT INTO relationships (supervisor_id, student_id, created_by)
       VALUES (?, ?, ?)
       ON CONFLICT (supervisor_id, student_id) DO UPDATE
         SET active = true, since = now(), created_by = EXCLUDED.created_by, deactivated_at = NULL, deactivated_reason = NULL
         WHERE relationships.active = false
       RETURNING *, (xmax = 0) AS inserted`,
        [pair.supervisorId, pair.studentId, pair.createdBy],
      );
      const row = result.rows[0];
      if (!row) return undefined;
      const { inserted, ...relationship } = row;
      return { relationship: relationship as RelationshipRow, reactivated: !inserted };
    },

    async findById(id: string, trx?: Knex.Transaction): Promise<RelationshipRow | undefined> {
      const db = trx ?? knex;
      if (!UUID.test(id)) return undefined;
      return db<RelationshipRow>('relationships').where({ id }).first();
    },

    /** The active pair, if any: served by the (supervisor_id, student_id) unique index. */
    async findActivePair(supervisorId: string, studentId: string, trx?: Knex.Transaction): Promise<Pick<RelationshipRow, 'id' | 'since'> | undefined> {
      const db = trx ?? knex;
      return db<RelationshipRow>('relationships').select('id', 'since').where({ supervisor_id: supervisorId, student_id: studentId, active: true }).first();
    },

    async deleteById(id: string, trx?: Knex.Transaction): Promise<RelationshipRow | undefined> {
      const db = trx ?? knex;
      if (!UUID.test(id)) return undefined;
      const rows = await db<RelationshipRow>('relationships').where({ id }).delete().returning('*');
      return rows[0] as RelationshipRow | undefined;
    },

    async list(filter: ListFilter, page: { offset: number; limit: number }, trx?: Knex.Transaction) {
      const db = trx ?? knex;
      const where = (query: Knex.QueryBuilder) => {
        if (filter.supervisorId !== undefined) query.where('supervisor_id', filter.supervisorId);
        if (filter.studentId !== undefined) query.where('student_id', filter.studentId);
        if (filter.active !== undefined) query.where('active', filter.active);
        return query;
      };
      const [rows, count] = await Promise.all([
        where(db<RelationshipRow>('relationships').select('*'))
          .orderBy([{ column: 'since', order: 'desc' }, { column: 'id' }])
          .offset(page.offset)
          .limit(page.limit),
        where(db('relationships').count<Array<{ count: string }>>({ count: '*' })),
      ]);
      return { rows: rows as RelationshipRow[], total: Number(count[0]?.count ?? 0) };
    },

    /**
     * Deactivates the active pairs matching `side` that became active no later than `notAfter` (an event's time:
     * a pair created after the event was validated against newer state and must not be touched by a late event).
     */
    async deactivate(
      side: { supervisorId?: string; studentId?: string },
      reason: string,
      notAfter: Date,
      trx?: Knex.Transaction,
    ): Promise<Array<Pick<RelationshipRow, 'id' | 'supervisor_id' | 'student_id'>>> {
      const db = trx ?? knex;
      const query = db<RelationshipRow>('relationships').where('active', true).where('since', '<=', notAfter);
      if (side.supervisorId !== undefined) query.where('supervisor_id', side.supervisorId);
      if (side.studentId !== undefined) query.where('student_id', side.studentId);
      const rows = await query
        .update({ active: false, deactivated_at: db.fn.now() as unknown as Date, deactivated_reason: reason })
        .returning(['id', 'supervisor_id', 'student_id']);
      return rows as Array<Pick<RelationshipRow, 'id' | 'supervisor_id' | 'student_id'>>;
    },

    /** Records an event id; false when it was already recorded (the event was applied before). */
    async markEventProcessed(event: { eventId: string; type: string; userId: string }, trx: Knex.Transaction): Promise<boolean> {
      const db = trx;
      const rows = await db('processed_user_events')
        .insert({ event_id: event.eventId, type: event.type, user_id: event.userId })
        .onConflict('event_id')
        .ignore()
        .returning('event_id');
      return rows.length > 0;
    },

    /** Forgets applied event ids older than `days` (a redelivery that late is still harmless: see deactivate). */
    async pruneProcessedEvents(days: number, trx?: Knex.Transaction): Promise<number> {
      const db = trx ?? knex;
      return db('processed_user_events')
        .where('processed_at', '<', db.raw(`now() - make_interval(days => ?)`, [days]))
        .delete();
    },

    async setEventDeactivations(eventId: string, count: number, trx: Knex.Transaction): Promise<void> {
      const db = trx;
      await db('processed_user_events').where({ event_id: eventId }).update({ deactivated: count });
    },

    /** Runs `work` in one transaction, handing it the transaction for the functions above. */
    transaction<T>(work: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
      return knex.transaction(work);
    },
  };
}

export type RelationshipsDal = ReturnType<typeof relationshipsDal>;
