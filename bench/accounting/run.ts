// Accounting bench: reserve+finalize pairs per second through the domain layer (the same functions the
// /internal/streaming-sessions routes call, without HTTP), spread over 1,000 accounts and on one hot account
// (and, for reference, on the hot account with every call in its own transaction, as before batching),
// plus the same pairs over HTTP against the real service (service token + user token, as chat calls it),
// next to pgbench running a single-row `UPDATE ... SET balance = balance - 1` on the same server (the physical
// limit for one hot row) and the same update spread over 1,000 rows. Every account's invariant is checked after.
// Scratch databases only; bounded in time (a few seconds per run). Prints a markdown section for bench/REPORT.md.
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Actor } from '@platform/shared-types';
import { loadModelCatalog, ServiceClient } from '@platform/shared-types';
import { connectPostgres, dropPostgresDatabase, ensurePostgresDatabase, migrateLatest, pgUrlFor } from '@platform/shared-types/stores';
import { createTestAuth, storeUrls, uniqueDbName } from '@platform/shared-types/testing';
import type { Knex } from 'knex';
import { configSchema } from '../../accounting/src/config.ts';
import { withRetry } from '../../accounting/src/db.ts';
import { invariantViolations } from '../../accounting/src/features/credits/invariant.ts';
import { pricesDal } from '../../accounting/src/features/prices/prices-dal.ts';
import { reservationsDal } from '../../accounting/src/features/reservations/reservations-dal.ts';
import { type ReservationsService, reservationsService } from '../../accounting/src/features/reservations/reservations-service.ts';
import { start } from '../../accounting/src/main.ts';
import { migrations } from '../../accounting/src/migrations/index.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
// the machine is shared: our runs and pgbench's alternate in rounds, and the table shows the median round
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const ACCOUNTS = 1_000;
const TARGET_HOT_RATIO = 0.3;
const PGBENCH_THREADS = availableParallelism();

const urls = storeUrls();
const pg = new URL(urls.PG_URL);

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

interface Result {
  ops: number;
  opsPerSecond: number;
  p50ms: number;
  p99ms: number;
  errors: number;
}

/** Runs `op` from CONCURRENCY workers for SECONDS; latency per op. */
async function drive(op: (worker: number) => Promise<void>): Promise<Result> {
  const latencies: number[] = [];
  let errors = 0;
  const started = performance.now();
  const deadline = started + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, worker) => {
      while (performance.now() < deadline) {
        const t = performance.now();
        try {
          await op(worker);
          latencies.push(performance.now() - t);
        } catch (error) {
          errors++;
          if (errors === 1) process.stderr.write(`bench op failed: ${(error as Error).message}\n`);
        }
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { ops: latencies.length, opsPerSecond: latencies.length / elapsed, p50ms: percentile(latencies, 50), p99ms: percentile(latencies, 99), errors };
}

function actor(i: number): Actor {
  return { userId: `bench-user-${i}`, username: `bench${i}`, email: `bench${i}@example.test`, role: 'enduser' };
}

/** One reservations service per database handle, so concurrent pairs share its per-account batching. */
const servicesByDb = new WeakMap<Knex, ReservationsService>();
function streamsOf(db: Knex): ReservationsService {
  let service = servicesByDb.get(db);
  if (!service) {
    service = reservationsService({ reservations: reservationsDal(db), ttlSeconds: 600 });
    servicesByDb.set(db, service);
  }
  return service;
}

async function pair(db: Knex, user: Actor): Promise<void> {
  const reservationId = randomUUID();
  const streams = streamsOf(db);
  await streams.initialize(user, { reservationId, sessionId: 'bench', modelId: 'local-dev', inputTokens: 200, maxOutputTokens: 500 });
  await streams.finalize({ reservationId, inputTokens: 200, outputTokens: 120 }, user.userId);
}

/** The same pair with each call in its own transaction (the DAL, no per-account batching): the reference. */
async function unbatchedPair(db: Knex, user: Actor): Promise<void> {
  const reservationId = randomUUID();
  const stream = { reservationId, sessionId: 'bench', modelId: 'local-dev', inputTokens: 200, maxOutputTokens: 500, ttlSeconds: 600 };
  const reservations = reservationsDal(db);
  await withRetry(() => reservations.reserve(user, stream));
  await withRetry(() => reservations.settle({ reservationId, status: 'finalized', inputTokens: 200, outputTokens: 120, expectUserId: user.userId }));
}

function pgbenchBinary(): string {
  const debian = '/usr/lib/postgresql/15/bin/pgbench';
  if (existsSync(debian)) return debian;
  const found = spawnSync('sh', ['-c', 'command -v pgbench'], { encoding: 'utf8' }).stdout.trim();
  if (!found) throw new Error('pgbench not found');
  return found;
}

/**
 * pgbench with a custom script on a scratch database: CONCURRENCY clients (-c) on one thread per core (-j), prepared
 * statements (-M prepared, as our pairs use), no vacuum (-n), SECONDS long (-T); TPS from its summary, p99 from its
 * per-transaction log (-l).
 */
function pgbench(dbName: string, script: string): Result {
  const dir = mkdtempSync(join(tmpdir(), 'acc-pgbench-'));
  try {
    writeFileSync(join(dir, 'script.sql'), script);
    const run = spawnSync(
      pgbenchBinary(),
      [
        '-h',
        pg.hostname,
        '-p',
        pg.port || '5432',
        '-U',
        decodeURIComponent(pg.username),
        '-n',
        '-M',
        'prepared',
        '-f',
        'script.sql',
        '-c',
        String(CONCURRENCY),
        '-j',
        String(PGBENCH_THREADS),
        '-T',
        String(SECONDS),
        '-l',
        dbName,
      ],
      { cwd: dir, encoding: 'utf8', env: { ...process.env, PGPASSWORD: decodeURIComponent(pg.password) }, timeout: (SECONDS + 30) * 1000 },
    );
    if (run.status !== 0) throw new Error(`pgbench failed: ${run.stderr}`);
    const tps = Number(/tps = ([\d.]+)/.exec(run.stdout)?.[1]);
    const processed = Number(/number of transactions actually processed: (\d+)/.exec(run.stdout)?.[1]);
    const failed = Number(/number of failed transactions: (\d+)/.exec(run.stdout)?.[1] ?? 0);
    const latencies: number[] = [];
    for (const file of readdirSync(dir).filter((name) => name.startsWith('pgbench_log'))) {
      for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
        const micros = Number(line.split(' ')[2]);
        if (Number.isFinite(micros) && line) latencies.push(micros / 1000);
      }
    }
    latencies.sort((a, b) => a - b);
    return { ops: processed, opsPerSecond: tps, p50ms: percentile(latencies, 50), p99ms: percentile(latencies, 99), errors: failed };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The median round by ops/s, as it was measured (its ops, p50, p99 and errors), and the errors of all rounds. */
function medianRound(rounds: Result[]): Result & { allErrors: number } {
  const sorted = [...rounds].sort((a, b) => a.opsPerSecond - b.opsPerSecond);
  const median = sorted[Math.floor((sorted.length - 1) / 2)] as Result;
  return { ...median, allErrors: rounds.reduce((sum, r) => sum + r.errors, 0) };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)] as number;

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

async function main() {
  const accountingDb = uniqueDbName('accounting_bench');
  const pgbenchDb = uniqueDbName('accounting_pgbench');
  await ensurePostgresDatabase(urls.PG_URL, accountingDb);
  await ensurePostgresDatabase(urls.PG_URL, pgbenchDb);
  const db = connectPostgres(pgUrlFor(urls.PG_URL, accountingDb), { pool: { min: CONCURRENCY, max: CONCURRENCY + 2 } });
  const scratch = connectPostgres(pgUrlFor(urls.PG_URL, pgbenchDb), { pool: { min: 0, max: 1 } });
  try {
    await migrateLatest(db, migrations);
    await pricesDal(db).seedPrices(loadModelCatalog());
    const users = Array.from({ length: ACCOUNTS }, (_, i) => actor(i));
    const hot = actor(ACCOUNTS);
    await db('accounts').insert([...users, hot].map((u) => ({ user_id: u.userId, username: u.username, email: u.email, role: u.role })));
    for (let i = 0; i < users.length; i += 50) {
      await Promise.all(users.slice(i, i + 50).map((u) => db.raw('SELECT acc_allocate(?, ?, ?, ?, ?)', [u.userId, 1_000_000, null, 'bench', 'bench'])));
    }
    await db.raw('SELECT acc_allocate(?, ?, ?, ?, ?)', [hot.userId, 1_000_000_000, null, 'bench', 'bench']);

    await scratch.raw('CREATE TABLE hot (id integer PRIMARY KEY, balance bigint NOT NULL)');
    await scratch.raw('INSERT INTO hot SELECT g, 1000000000 FROM generate_series(1, ?) g', [ACCOUNTS]);
    await scratch.raw('VACUUM ANALYZE hot');
    const fsync = String(((await scratch.raw('SHOW fsync')) as { rows: Array<{ fsync: string }> }).rows[0]?.fsync);
    const loadAtStart = loadavg()[0] ?? 0;

    // warm up connections and plans
    await drive(async (w) => pair(db, users[w % ACCOUNTS] as Actor)).catch(() => undefined);

    const rounds: Record<'spread' | 'hot' | 'hotUnbatched' | 'pgSpread' | 'pgHot', Result[]> = {
      spread: [],
      hot: [],
      hotUnbatched: [],
      pgSpread: [],
      pgHot: [],
    };
    for (let round = 0; round < ROUNDS; round++) {
      rounds.spread.push(await drive(async () => pair(db, users[Math.floor(Math.random() * ACCOUNTS)] as Actor)));
      rounds.pgSpread.push(pgbench(pgbenchDb, `\\set id random(1, ${ACCOUNTS})\nUPDATE hot SET balance = balance - 1 WHERE id = :id;\n`));
      rounds.hot.push(await drive(async () => pair(db, hot)));
      rounds.pgHot.push(pgbench(pgbenchDb, 'UPDATE hot SET balance = balance - 1 WHERE id = 1;\n'));
      rounds.hotUnbatched.push(await drive(async () => unbatchedPair(db, hot)));
    }
    const spread = medianRound(rounds.spread);
    const hotPairs = medianRound(rounds.hot);
    const hotUnbatched = medianRound(rounds.hotUnbatched);
    const pgSpread = medianRound(rounds.pgSpread);
    const pgHot = medianRound(rounds.pgHot);
    // each round's pairs against the pgbench run right next to it
    const roundRatios = (ours: Result[], theirs: Result[]) => ours.map((r, i) => r.opsPerSecond / (theirs[i] as Result).opsPerSecond);
    const hotRatios = roundRatios(rounds.hot, rounds.pgHot);

    // the same pairs over HTTP, as chat makes them (ServiceClient: service token + the user's bearer token)
    const auth = createTestAuth();
    const service = await start(
      configSchema.parse({
        ...auth.secrets,
        NODE_ENV: 'test',
        PORT: '0',
        PG_URL: urls.PG_URL,
        PG_DB: accountingDb,
        PG_POOL_MAX: String(CONCURRENCY + 2),
        REDIS_URL: urls.REDIS_URL,
        USER_EVENTS_STREAM: `bench:events:users:${randomUUID()}`,
      }),
    );
    const client = new ServiceClient({
      caller: 'chat',
      internalKeyring: auth.internalKeyring,
      baseUrls: { accounting: service.url },
      connections: CONCURRENCY,
    });
    const tokens = users.map((u) => auth.token(u, { ttlSeconds: 600 }));
    const post = (path: string, body: unknown, userToken?: string) => client.call('accounting', path, { body, userToken });
    let http: Result;
    try {
      http = await drive(async () => {
        const i = Math.floor(Math.random() * ACCOUNTS);
        const reservationId = randomUUID();
        await post(
          '/internal/streaming-sessions/initialize',
          { reservationId, sessionId: 'bench', modelId: 'local-dev', inputTokens: 200, maxOutputTokens: 500 },
          tokens[i],
        );
        await post('/internal/streaming-sessions/finalize', { reservationId, inputTokens: 200, outputTokens: 120 });
      });
    } finally {
      await client.close();
      await service.stop();
    }

    let violations = 0;
    for (const u of [...users, hot]) {
      const problems = await invariantViolations(db, u.userId);
      if (problems.length > 0) {
        violations += problems.length;
        process.stderr.write(`invariant: ${u.userId}: ${problems.join('; ')}\n`);
      }
    }
    const open = Number((await db('reservations').where({ status: 'open' }).count<{ count: string }[]>({ count: '*' }))[0]?.count);

    const hotRatio = median(hotRatios);
    const spreadRatio = median(roundRatios(rounds.spread, rounds.pgSpread));
    const pass = hotRatio >= TARGET_HOT_RATIO && violations === 0;
    const row = (name: string, r: Result & { allErrors?: number }) =>
      `| ${name} | ${fmt(r.ops)} | ${fmt(r.opsPerSecond)} | ${fmt(r.p50ms, 2)} | ${fmt(r.p99ms, 2)} | ${r.errors} | ${r.allErrors ?? r.errors} |`;
    const report = [
      '## accounting',
      '',
      `Reserve+finalize pairs called through the domain layer (\`initialize\` + \`finalize\` of the reservations service, the functions behind`,
      `\`/internal/streaming-sessions/{initialize,finalize}\`; no HTTP) from ${CONCURRENCY} concurrent workers in one process, ${SECONDS} s per run,`,
      `${ROUNDS} rounds alternating with the pgbench runs (each row but HTTP is the median round by ops/s, every figure of it from that`,
      "round; ratios are the median of each round's pairs against the pgbench run next to it, as a shared machine's load changes",
      `from second to second: ${availableParallelism()} cores here, 1-minute load average ${fmt(loadAtStart, 2)} at the start; the HTTP row is one run);`,
      'each worker starting its next pair when the last one is answered. Every call locks the account row and changes',
      'the balance in one transaction (PL/pgSQL `acc_reserve` / `acc_settle`, prepared statements on the knex pool). Calls',
      'of one account that arrive while a call of that account is in flight wait in the process and go together as the',
      'next batch: one `acc_batch` transaction and round trip, calls in order (a refused call makes the batch rerun one',
      'by one). The "unbatched" row runs the same pairs on the hot account with every call in its own transaction (the',
      `previous design). pgbench runs a custom one-statement script, \`UPDATE hot SET balance = balance - 1 WHERE id = 1\``,
      `(or \`id = random(1, ${ACCOUNTS})\`), with the same ${CONCURRENCY} clients (\`-c ${CONCURRENCY} -j ${PGBENCH_THREADS} -M prepared -n -T ${SECONDS}\`) on the same`,
      `PostgreSQL server (\`SHOW fsync\`: ${fsync}), in a scratch database; each of its transactions is one row update, each of our pairs`,
      'is two calls writing about ten rows (reservation, hold, three ledger entries, usage, account and allocation).',
      '',
      '| run | ops (that round) | ops/s | p50 ms | p99 ms | errors (that round) | errors (all rounds) |',
      '|---|---:|---:|---:|---:|---:|---:|',
      row(`pairs over ${fmt(ACCOUNTS)} accounts`, spread),
      row('pairs on one hot account', hotPairs),
      row('pairs on one hot account, unbatched', hotUnbatched),
      row(`pairs over HTTP, ${fmt(ACCOUNTS)} accounts`, http),
      row(`pgbench UPDATE over ${fmt(ACCOUNTS)} rows`, pgSpread),
      row('pgbench UPDATE on one hot row', pgHot),
      '',
      `- hot-account pairs / pgbench hot-row TPS: **${fmt(hotRatio, 3)}** (rounds: ${hotRatios.map((r) => fmt(r, 3)).join(', ')}; target >= ${TARGET_HOT_RATIO}: ${hotRatio >= TARGET_HOT_RATIO ? 'pass' : 'short'})`,
      `- hot-account pairs batched / unbatched: ${fmt(hotPairs.opsPerSecond / hotUnbatched.opsPerSecond, 2)}; unbatched / pgbench hot-row TPS: ${fmt(median(roundRatios(rounds.hotUnbatched, rounds.pgHot)), 3)}`,
      `- spread pairs / pgbench spread TPS: ${fmt(spreadRatio, 3)}`,
      `- spread pairs / hot pairs: ${fmt(spread.opsPerSecond / hotPairs.opsPerSecond, 2)}; HTTP pairs / domain pairs (spread): ${fmt(http.opsPerSecond / spread.opsPerSecond, 2)}`,
      `- invariant violations over ${fmt(ACCOUNTS + 1)} accounts: **${violations}** (target 0: ${violations === 0 ? 'pass' : 'FAIL'}); reservations left open: ${open}`,
      `- overall: ${pass ? 'pass' : 'short'}`,
      '',
    ].join('\n');
    process.stdout.write(`<!-- report -->\n${report}<!-- /report -->\n`);
    if (violations > 0) process.exitCode = 1;
  } finally {
    await db.destroy();
    await scratch.destroy();
    await dropPostgresDatabase(urls.PG_URL, accountingDb);
    await dropPostgresDatabase(urls.PG_URL, pgbenchDb);
  }
}

await main();
