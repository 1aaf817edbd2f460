import type { Migration } from '@platform/shared-types/stores/postgres';

/**
 * Supervisor-student pairs: one row per (supervisor, student). A row is deactivated (not deleted) when a user
 * event shows the pair no longer holds; creating the pair again reactivates it and moves `since`.
 */
export const relationships001: Migration = {
  name: '001-relationships',
  async up(db) {
    await db.schema.createTable('relationships', (t) => {
      t.uuid('id').primary().defaultTo(db.raw('gen_random_uuid()'));
      t.string('supervisor_id', 64).notNullable();
      t.string('student_id', 64).notNullable();
      t.boolean('active').notNullable().defaultTo(true);
      t.string('created_by', 64).notNullable();
      t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
      /** when the pair last became active (creation or reactivation) */
      t.timestamp('since', { useTz: true }).notNullable().defaultTo(db.fn.now());
      t.timestamp('deactivated_at', { useTz: true }).nullable();
      t.string('deactivated_reason', 64).nullable();
      // (supervisor_id, student_id) serves the check and the by-supervisor listing; student_id the by-student one.
      t.unique(['supervisor_id', 'student_id']);
      t.index(['student_id']);
      t.check('?? <> ??', ['supervisor_id', 'student_id'], 'relationships_not_self');
    });
  },
  async down(db) {
    await db.schema.dropTable('relationships');
  },
};
