// The helpers of a part on PostgreSQL (and Redis): loads knex and pg, never mongoose.
import type { Redis } from 'ioredis';
import knex, { type Knex } from 'knex';
import { pingRedis } from './redis.ts';

export { connectRedis, reportRedisErrors } from './redis.ts';

export interface Migration {
  name: string;
  up(db: Knex): Promise<void>;
  down(db: Knex): Promise<void>;
}

/** Migrations as an ordered list in code (no file globbing, so type-stripped .ts files load the same everywhere). */
export class ListMigrationSource implements Knex.MigrationSource<Migration> {
  readonly #migrations: Migration[];
  constructor(migrations: Migration[]) {
    this.#migrations = migrations;
  }
  async getMigrations(): Promise<Migration[]> {
    return this.#migrations;
  }
  getMigrationName(migration: Migration): string {
    return migration.name;
  }
  async getMigration(migration: Migration): Promise<Knex.Migration> {
    return { up: migration.up, down: migration.down };
  }
}

export function connectPostgres(url: string, options: { pool?: { min: number; max: number } } = {}): Knex {
  return knex({ client: 'pg', connection: url, pool: options.pool ?? { min: 0, max: 10 }, acquireConnectionTimeout: 10_000 });
}

export async function migrateLatest(db: Knex, migrations: Migration[]): Promise<void> {
  await db.migrate.latest({ migrationSource: new ListMigrationSource(migrations) });
}

export async function migrateDownAll(db: Knex, migrations: Migration[]): Promise<void> {
  await db.migrate.rollback({ migrationSource: new ListMigrationSource(migrations) }, true);
}

/** Creates a database when missing (tests and local dev; production databases are provisioned). */
export async function ensurePostgresDatabase(serverUrl: string, dbName: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_]*$/.test(dbName)) throw new Error(`unsafe database name ${dbName}`);
  const admin = connectPostgres(serverUrl, { pool: { min: 0, max: 1 } });
  try {
    const found = await admin.raw('SELECT 1 FROM pg_database WHERE datname = ?', [dbName]);
    if (found.rows.length === 0) await admin.raw(`CREATE DATABASE "${dbName}"`);
  } finally {
    await admin.destroy();
  }
}

export async function dropPostgresDatabase(serverUrl: string, dbName: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_]*$/.test(dbName)) throw new Error(`unsafe database name ${dbName}`);
  const admin = connectPostgres(serverUrl, { pool: { min: 0, max: 1 } });
  try {
    await admin.raw(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
  } finally {
    await admin.destroy();
  }
}

/** Puts a database name into a postgres:// URL. */
export function pgUrlFor(serverUrl: string, dbName: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${dbName}`;
  return url.toString();
}

/** Readiness probes: true when the store answers. */
export const ping = {
  postgres: (db: Knex): Promise<boolean> =>
    db.raw('SELECT 1').then(
      () => true,
      () => false,
    ),
  redis: (redis: Redis): Promise<boolean> => pingRedis(redis),
};
