import type { Migration } from '@platform/shared-types/stores/postgres';

/** Accounts mirror the identity auth owns, created just in time and kept current from events:users. */
export const accounts001: Migration = {
  name: '001-accounts',
  async up(db) {
    await db.schema.createTable('accounts', (t) => {
      t.string('user_id', 64).primary();
      t.string('username', 64).notNullable();
      t.string('email', 320).notNullable();
      t.string('role', 16).notNullable();
      t.boolean('disabled').notNullable().defaultTo(false);
      t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
      t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    });
  },
  async down(db) {
    await db.schema.dropTable('accounts');
  },
};
