import type { Migration } from '@platform/shared-types/stores';

/** Supervisor-student pairs; one active pair per (supervisor, student). */
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
      t.unique(['supervisor_id', 'student_id']);
      t.index(['student_id']);
    });
  },
  async down(db) {
    await db.schema.dropTable('relationships');
  },
};
