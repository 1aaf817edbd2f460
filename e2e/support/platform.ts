// Starts a private copy of the whole platform for one e2e run: every part a separate process (as `make up`),
// port 0, fresh databases and a private Redis database-independent namespace (unique events stream), its own
// mail folder. Parts can be killed and restarted (faults) on the same port.
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dropPostgresDatabase } from '@platform/shared-types/stores';
import { storeUrls, testSecrets, uniqueDbName } from '@platform/shared-types/testing';
import mongoose from 'mongoose';
import { launchPart, type PartName, type RunningPart } from '../../scripts/platform.ts';

export interface Platform {
  gatewayUrl: string;
  urls: Record<PartName, string>;
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
  stop(): Promise<void>;
}

const SERVICE_ORDER: PartName[] = ['auth', 'accounting', 'monitoring', 'chat'];

export async function startPlatform(extraEnv: Record<string, string> = {}): Promise<Platform> {
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
  const logs: Record<PartName, string[]> = { auth: [], accounting: [], chat: [], monitoring: [], gateway: [] };
  const parts = new Map<PartName, RunningPart>();
  const urls = {} as Record<PartName, string>;
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

  return {
    gatewayUrl: urls.gateway,
    urls,
    secrets,
    env: base,
    mailDir,
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
    async stop() {
      await Promise.all([...parts.values()].map((part) => part.stop()));
      await Promise.allSettled([
        dropPostgresDatabase(stores.PG_URL, db.accounting),
        dropPostgresDatabase(stores.PG_URL, db.monitoring),
        dropMongo(stores.MONGO_URL, db.auth),
        dropMongo(stores.MONGO_URL, db.chat),
      ]);
    },
  };
}

function pick(env: Record<string, string>, names: string[]): Record<string, string> {
  return Object.fromEntries(names.filter((name) => env[name]).map((name) => [name, env[name] as string]));
}

async function dropMongo(url: string, dbName: string): Promise<void> {
  const connection = await mongoose.createConnection(url, { dbName, serverSelectionTimeoutMS: 5_000 }).asPromise();
  await connection.dropDatabase();
  await connection.close();
}
