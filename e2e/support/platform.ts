// Starts a private copy of the whole platform for one e2e run: every part a separate process (as `make up`),
// port 0, fresh databases and a private Redis database-independent namespace (unique events stream), its own
// mail folder. Parts can be killed and restarted (faults) on the same port.
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { dropPostgresDatabase } from '@platform/shared-types/stores';
import { storeUrls, testSecrets, uniqueDbName } from '@platform/shared-types/testing';
import mongoose from 'mongoose';
import { launchPart, type PartName, type RunningPart } from '../../scripts/platform.ts';

/** One difference `make reconcile` reports (accounting's reconcile-service). */
export interface ReconcileDifference {
  kind: 'ledger' | 'reservation' | 'reply';
  userId: string;
  reservationId?: string;
  messageId?: string;
  problem: string;
}

const ACCOUNTING_DIR = new URL('../../accounting/', import.meta.url).pathname;

export interface Platform {
  gatewayUrl: string;
  urls: Record<PartName, string>;
  /** each part's private ops listener (GET /metrics) */
  opsUrls: Record<PartName, string>;
  secrets: ReturnType<typeof testSecrets>;
  env: Record<string, string>;
  mailDir: string;
  /** stops a part (SIGKILL simulates a crash) */
  kill(name: PartName, signal?: NodeJS.Signals): Promise<void>;
  /** starts a stopped part again on the same port */
  restart(name: PartName): Promise<void>;
  /** the newest mail to `to` of `kind`, as auth writes it to MAIL_DIR */
  mailFor(to: string, kind: string): { to: string; subject: string; text: string; meta: { kind: string; token: string } } | undefined;
  logs(name: PartName): string[];
  /** this run's private databases */
  databases: { auth: string; chat: string; accounting: string; monitoring: string };
  /** `make reconcile` over this run: chat's stored replies against accounting's reservations, usage and ledger */
  reconcile(): Promise<ReconcileDifference[]>;
  /** reconciles until nothing differs (charges in flight land) or the bound passes; the last differences */
  reconcileSettled(timeoutMs?: number): Promise<ReconcileDifference[]>;
  /** reconciles what the whole run did (fails on any difference), then stops every part and drops the databases */
  stop(): Promise<void>;
  /** every instance's URL (services: in the order the gateways list them; gateway: every gateway) */
  instanceUrls: Record<PartName, string[]>;
  /** every gateway's public URL (`gatewayUrl` is the first) */
  gatewayUrls: string[];
  /** stops one instance of a part (index into instanceUrls) */
  killInstance(name: PartName, index: number, signal?: NodeJS.Signals): Promise<void>;
}

export interface PlatformShape {
  /** instances of every service (default 1); the gateways balance over all of them */
  instances?: number;
  /** gateways on the same Redis (default 1) */
  gateways?: number;
}

const SERVICE_ORDER: PartName[] = ['auth', 'accounting', 'monitoring', 'chat'];

/**
 * `shape` (several instances of each service, several gateways): each instance gets a free port up front (no
 * second start round). Services call each other at the last instance of each (service-to-service clients take
 * one URL); the gateways get every instance (`*_URLS`).
 */
export async function startPlatform(extraEnv: Record<string, string> = {}, shape: PlatformShape = {}): Promise<Platform> {
  if ((shape.instances ?? 1) > 1 || (shape.gateways ?? 1) > 1) return startScaledPlatformOnFreePorts(extraEnv, shape.instances ?? 1, shape.gateways ?? 1);
  const { stores, secrets, mailDir, db, base, dbEnv } = platformEnv(extraEnv);
  const logs: Record<PartName, string[]> = { auth: [], accounting: [], chat: [], monitoring: [], gateway: [] };
  const parts = new Map<PartName, RunningPart>();
  const urls = {} as Record<PartName, string>;
  const opsUrls = {} as Record<PartName, string>;
  const ports = {} as Record<PartName, string>;

  const envFor = (name: PartName): Record<string, string> => {
    const env: Record<string, string> = { ...base, ...dbEnv[name], PORT: ports[name] ?? '0', HOST: '127.0.0.1' };
    // URLs not known yet (first round) are left out, so a part starts on its defaults and is restarted later
    for (const [key, url] of Object.entries({ AUTH_URL: urls.auth, ACCOUNTING_URL: urls.accounting, CHAT_URL: urls.chat, MONITORING_URL: urls.monitoring })) {
      if (url) env[key] = url;
      else delete env[key];
    }
    return env;
  };

  async function launch(name: PartName) {
    const part = launchPart(name, envFor(name), (from, line) => {
      const list = logs[from];
      list.push(line);
      if (list.length > 20_000) list.shift();
    });
    parts.set(name, part);
    const url = await part.url;
    urls[name] = url;
    // logged on the same line as the URL: settled by now when the part has an ops listener
    opsUrls[name] = await Promise.race([part.opsUrl, Promise.resolve('')]);
    ports[name] = new URL(url).port;
  }

  // Services need each other's URLs; start them with port 0 first to learn the ports, then restart in place
  // so every part knows every other one. Restarting on a known port is what `restart` relies on anyway.
  try {
    for (const name of SERVICE_ORDER) await launch(name);
    for (const name of SERVICE_ORDER) {
      await parts.get(name)?.stop();
      await launch(name);
    }
    await launch('gateway');
  } catch (error) {
    // never leave parts of a half-started platform running
    await Promise.all([...parts.values()].map((part) => part.stop()));
    const tails = Object.entries(logs).map(([name, lines]) => `${name}: ${lines.slice(-5).join(' | ')}`);
    throw new Error(`platform did not start: ${(error as Error).message}\n${tails.join('\n')}`);
  }

  const reconcile = () => reconcileRun(base, db.accounting, urls.chat);
  const reconcileSettled = (timeoutMs?: number) => reconcileUntilSettled(reconcile, timeoutMs);

  return {
    gatewayUrl: urls.gateway,
    urls,
    opsUrls,
    secrets,
    env: base,
    mailDir,
    databases: db,
    reconcile,
    reconcileSettled,
    async kill(name, signal = 'SIGTERM') {
      await parts.get(name)?.stop(signal);
    },
    async restart(name) {
      await launch(name);
    },
    mailFor(to, kind) {
      const mails = readdirSync(mailDir)
        .filter((file) => file.endsWith('.json'))
        .sort()
        .map(
          (file) =>
            JSON.parse(readFileSync(join(mailDir, file), 'utf8')) as { to: string; subject: string; text: string; meta: { kind: string; token: string } },
        );
      return mails.filter((mail) => mail.to === to && mail.meta?.kind === kind).pop();
    },
    logs: (name) => logs[name],
    get instanceUrls() {
      return Object.fromEntries(Object.entries(urls).map(([name, url]) => [name, [url]])) as Record<PartName, string[]>;
    },
    get gatewayUrls() {
      return [urls.gateway];
    },
    async killInstance(name, index, signal = 'SIGTERM') {
      if (index !== 0) throw new Error(`${name} has one instance`);
      await parts.get(name)?.stop(signal);
    },
    async stop() {
      // every suite's traffic, faults included, must reconcile before its throwaway databases go
      const unreconciled = await unreconciledOf(reconcileSettled);
      await Promise.all([...parts.values()].map((part) => part.stop()));
      await dropDatabases(stores, db);
      if (unreconciled) throw new Error(`reconciliation after this platform's run found differences: ${unreconciled}`);
    },
  };
}

/** `make reconcile` over one run: chat's stored replies against accounting's reservations, usage and ledger. */
async function reconcileRun(base: Record<string, string>, accountingDb: string, chatUrl: string): Promise<ReconcileDifference[]> {
  const env = { ...base, PG_DB: accountingDb, CHAT_URL: chatUrl };
  try {
    const { stdout } = await promisify(execFile)(process.execPath, ['src/cli/reconcile.ts', '--json'], { cwd: ACCOUNTING_DIR, env });
    return (JSON.parse(stdout) as { differences: ReconcileDifference[] }).differences;
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    // exit 1: differences found (printed as JSON); anything else: the reconciliation itself failed
    if (failed.code === 1 && failed.stdout) return (JSON.parse(failed.stdout) as { differences: ReconcileDifference[] }).differences;
    throw new Error(`make reconcile failed (${failed.code}): ${failed.stderr ?? String(error)}`);
  }
}

/** Reconciles until nothing differs (charges in flight land) or the bound passes; the last differences. */
async function reconcileUntilSettled(reconcile: () => Promise<ReconcileDifference[]>, timeoutMs = 30_000): Promise<ReconcileDifference[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const differences = await reconcile();
    if (differences.length === 0 || Date.now() > deadline) return differences;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** Reconciles what the whole run did: undefined when nothing differs, else what differs (or why it could not run). */
async function unreconciledOf(reconcileSettled: () => Promise<ReconcileDifference[]>): Promise<string | undefined> {
  return reconcileSettled().then(
    (differences) => (differences.length === 0 ? undefined : JSON.stringify(differences, null, 1)),
    (error: unknown) => (error as Error).message,
  );
}

async function dropDatabases(stores: { PG_URL: string; MONGO_URL: string }, db: Record<'auth' | 'chat' | 'accounting' | 'monitoring', string>): Promise<void> {
  await Promise.allSettled([
    dropPostgresDatabase(stores.PG_URL, db.accounting),
    dropPostgresDatabase(stores.PG_URL, db.monitoring),
    dropMongo(stores.MONGO_URL, db.auth),
    dropMongo(stores.MONGO_URL, db.chat),
  ]);
}

/**
 * `count` distinct free ports. Every probe socket stays bound until all are known, so the kernel cannot hand the
 * same port out twice within one platform (closing each probe before the next let two instances share a port).
 */
async function freePorts(count: number): Promise<number[]> {
  const servers = Array.from({ length: count }, () => createServer());
  try {
    await Promise.all(
      servers.map(
        (server) =>
          new Promise<void>((resolve, reject) => {
            server.once('error', reject);
            server.listen(0, '127.0.0.1', resolve);
          }),
      ),
    );
    return servers.map((server) => (server.address() as AddressInfo).port);
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  }
}

const URL_VARIABLE: Record<Exclude<PartName, 'gateway'>, string> = {
  auth: 'AUTH_URL',
  accounting: 'ACCOUNTING_URL',
  chat: 'CHAT_URL',
  monitoring: 'MONITORING_URL',
};

/**
 * The scaled platform's ports are chosen before its parts bind them; another process on the machine may take one
 * in between. That start fails with EADDRINUSE before any test ran, and is tried once more on new ports.
 */
async function startScaledPlatformOnFreePorts(extraEnv: Record<string, string>, instances: number, gateways: number): Promise<Platform> {
  try {
    return await startScaledPlatform(extraEnv, instances, gateways);
  } catch (error) {
    if (!(error as Error).message.includes('EADDRINUSE')) throw error;
    return startScaledPlatform(extraEnv, instances, gateways);
  }
}

async function startScaledPlatform(extraEnv: Record<string, string>, instances: number, gateways: number): Promise<Platform> {
  const { stores, secrets, mailDir, db, base, dbEnv } = platformEnv(extraEnv);
  const logs: Record<PartName, string[]> = { auth: [], accounting: [], chat: [], monitoring: [], gateway: [] };
  const counts: Record<PartName, number> = { auth: instances, accounting: instances, chat: instances, monitoring: instances, gateway: gateways };
  const instanceUrls = {} as Record<PartName, string[]>;
  const names = [...SERVICE_ORDER, 'gateway'] as PartName[];
  const ports = await freePorts(names.reduce((sum, name) => sum + counts[name], 0));
  for (const name of names) instanceUrls[name] = ports.splice(0, counts[name]).map((port) => `http://127.0.0.1:${port}`);
  const urlEnv: Record<string, string> = {};
  for (const name of SERVICE_ORDER) {
    const list = instanceUrls[name];
    const variable = URL_VARIABLE[name as Exclude<PartName, 'gateway'>];
    urlEnv[variable] = list[list.length - 1] as string;
    urlEnv[`${variable}S`] = list.join(',');
  }
  const running = new Map<string, RunningPart>();
  const opsUrls = {} as Record<PartName, string>;
  const launch = async (name: PartName, index: number) => {
    const port = new URL(instanceUrls[name][index] as string).port;
    const env = { ...base, ...dbEnv[name], ...urlEnv, PORT: port, HOST: '127.0.0.1' };
    const part = launchPart(name, env, (from, line) => {
      const list = logs[from];
      list.push(line);
      if (list.length > 20_000) list.shift();
    });
    running.set(`${name}#${index}`, part);
    await part.url;
    // the first instance's ops listener stands for the part (metrics tests run on the one-instance platform)
    if (index === 0) opsUrls[name] = await Promise.race([part.opsUrl, Promise.resolve('')]);
  };
  try {
    // the first instance of each service migrates its fresh database alone (two accounting instances migrating
    // the same empty database at once collide on knex's migration table); the others start after it
    await Promise.all(SERVICE_ORDER.map((name) => launch(name, 0)));
    await Promise.all(SERVICE_ORDER.flatMap((name) => Array.from({ length: instances - 1 }, (_, i) => launch(name, i + 1))));
    await Promise.all(Array.from({ length: gateways }, (_, i) => launch('gateway', i)));
  } catch (error) {
    await Promise.all([...running.values()].map((part) => part.stop()));
    await dropDatabases(stores, db);
    const tails = Object.entries(logs).map(([name, lines]) => `${name}: ${lines.slice(-5).join(' | ')}`);
    const addressInUse = Object.values(logs).some((lines) => lines.some((line) => line.includes('EADDRINUSE')));
    throw new Error(`platform did not start${addressInUse ? ' (EADDRINUSE)' : ''}: ${(error as Error).message}\n${tails.join('\n')}`);
  }
  const first = Object.fromEntries(Object.entries(instanceUrls).map(([name, list]) => [name, list[0]])) as Record<PartName, string>;
  // through a chat instance still running (tests kill instance 0; the services call the last one)
  const reconcile = () => reconcileRun(base, db.accounting, instanceUrls.chat.at(-1) as string);
  const reconcileSettled = (timeoutMs?: number) => reconcileUntilSettled(reconcile, timeoutMs);
  return {
    databases: db,
    reconcile,
    reconcileSettled,
    gatewayUrl: first.gateway,
    urls: first,
    opsUrls,
    instanceUrls,
    gatewayUrls: instanceUrls.gateway,
    secrets,
    env: base,
    mailDir,
    async kill(name, signal = 'SIGTERM') {
      await Promise.all(Array.from({ length: counts[name] }, (_, i) => running.get(`${name}#${i}`)?.stop(signal)));
    },
    async killInstance(name, index, signal = 'SIGTERM') {
      await running.get(`${name}#${index}`)?.stop(signal);
    },
    async restart(name) {
      // the stopped instances only, each on its own port again
      const stopped = Array.from({ length: counts[name] }, (_, i) => i).filter((i) => {
        const child = running.get(`${name}#${i}`)?.child;
        return !child || child.exitCode !== null || child.signalCode !== null;
      });
      await Promise.all(stopped.map((i) => launch(name, i)));
    },
    mailFor: (to, kind) => newestMail(mailDir, to, kind),
    logs: (name) => logs[name],
    async stop() {
      const unreconciled = await unreconciledOf(reconcileSettled);
      await Promise.all([...running.values()].map((part) => part.stop()));
      await dropDatabases(stores, db);
      if (unreconciled) throw new Error(`reconciliation after this platform's run found differences: ${unreconciled}`);
    },
  };
}

type Mail = { to: string; subject: string; text: string; meta: { kind: string; token: string } };

function newestMail(mailDir: string, to: string, kind: string): Mail | undefined {
  const mails = readdirSync(mailDir)
    .filter((file) => file.endsWith('.json'))
    .sort()
    .map((file) => JSON.parse(readFileSync(join(mailDir, file), 'utf8')) as Mail);
  return mails.filter((mail) => mail.to === to && mail.meta?.kind === kind).pop();
}

function platformEnv(extraEnv: Record<string, string>) {
  // extraEnv may point a part at private stores (REDIS_URL, MONGO_URL) for fault tests
  const stores = { ...storeUrls(), ...pick(extraEnv, ['PG_URL', 'REDIS_URL', 'MONGO_URL']) };
  const secrets = testSecrets();
  const mailDir = mkdtempSync(join(tmpdir(), 'platform-mail-'));
  const db = { auth: uniqueDbName('e2e_auth'), chat: uniqueDbName('e2e_chat'), accounting: uniqueDbName('e2e_acc'), monitoring: uniqueDbName('e2e_mon') };
  const base: Record<string, string> = {
    ...(process.env as Record<string, string>),
    ...secrets,
    ...stores,
    NODE_ENV: 'test',
    LOG_LEVEL: 'info',
    MAIL_DIR: mailDir,
    OPS_PORT: '0', // the gateway's private metrics listener: any free port, so runs never clash
    // real cost in production; a low cost keeps the suite fast (auth's own bench measures cost 12)
    BCRYPT_COST: '6',
    USER_EVENTS_STREAM: `events:users:${db.auth}`,
    AUTH_MONGO_DB: db.auth,
    ACCOUNTING_PG_DB: db.accounting,
    ...extraEnv,
  };
  const dbEnv: Record<PartName, Record<string, string>> = {
    auth: { MONGO_DB: db.auth },
    chat: { MONGO_DB: db.chat },
    accounting: { PG_DB: db.accounting },
    monitoring: { PG_DB: db.monitoring },
    gateway: {},
  };
  return { stores, secrets, mailDir, db, base, dbEnv };
}

function pick(env: Record<string, string>, names: string[]): Record<string, string> {
  return Object.fromEntries(names.filter((name) => env[name]).map((name) => [name, env[name] as string]));
}

async function dropMongo(url: string, dbName: string): Promise<void> {
  const connection = await mongoose.createConnection(url, { dbName, serverSelectionTimeoutMS: 5_000 }).asPromise();
  await connection.dropDatabase();
  await connection.close();
}
