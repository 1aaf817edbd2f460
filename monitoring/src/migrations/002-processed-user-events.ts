import type { Migration } from '@platform/shared-types/stores/postgres';

/** User events already applied (events:users is delivered at least once): an event id is applied once. */
export const processedUserEvents002: Migration = {
  name: '002-processed-user-events',
  async up(db) {
    await db.schema.createTable('processed_user_events', (t) => {
      t.string('event_id', 128).primary();
      t.string('type', 64).notNullable();
      t.string('user_id', 64).notNullable();
      t.integer('deactivated').notNullable().defaultTo(0);
      t.timestamp('processed_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    });
  },
  async down(db) {
    await db.schema.dropTable('processed_user_events');
  },
};
