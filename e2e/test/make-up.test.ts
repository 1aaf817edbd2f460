// `make up` as a newcomer runs it, in a scratch copy of this checkout with its own ports and .data/: started,
// stopped with Ctrl-C and started again (issue 19: the second start used to die), after `make stop-services`,
// the entry points that start stores when they are down, a PostgreSQL the user configures, and the README's
// quickstart lines run as written.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connectPostgres, dropPostgresDatabase, pgUrlFor } from '@platform/shared-types/stores';
import { storeUrls, uniqueDbName } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { ROOT } from '../../scripts/platform.ts';
import { freePort } from '../support/private-stores.ts';
import {
  cleanEnv,
  fencedBlock,
  portOpen,
  processesUnder,
  type RunningMake,
  runMake,
  type ScratchCheckout,
  scratchCheckout,
  startMake,
  tail,
} from '../support/scratch-checkout.ts';

const PARTS = ['GATEWAY', 'AUTH', 'ACCOUNTING', 'CHAT', 'MONITORING'] as const;
const STORES = ['PG', 'REDIS', 'MONGO'] as const;

describe('make up in a fresh checkout', function () {
  this.timeout(240_000);
  let checkout: ScratchCheckout;
  const ports: Record<string, number> = {};
  let env: NodeJS.ProcessEnv;

  before(async () => {
    checkout = scratchCheckout();
    for (const name of [...PARTS, ...STORES]) ports[name] = await freePort();
    const portEnv = Object.fromEntries(Object.entries(ports).map(([name, port]) => [`${name}_PORT`, String(port)]));
    // a low hashing cost keeps the logins of the quickstart fast (auth's own bench measures cost 12)
    // OPS_PORT 0: the private metrics listener on any free port, so this copy never clashes with another running platform
    env = cleanEnv({ ...portEnv, OPS_PORT: '0', BCRYPT_COST: '6' });
  });
  after(async () => {
    if (!checkout) return;
    await runMake(checkout.root, ['stop-services'], env, 60_000).catch(() => undefined);
    checkout.remove();
  });

  const gateway = () => `http://127.0.0.1:${ports.GATEWAY}`;

  /** `make up`, /health 200 within a bound, then Ctrl-C; afterwards nothing of it listens or runs. */
  async function upHealthyInterrupt(extraEnv: Record<string, string> = {}, whileUp: () => Promise<void> = async () => {}): Promise<void> {
    const up = startMake(checkout.root, ['up'], { ...env, ...extraEnv });
    let failure: unknown;
    try {
      await waitHealthy(up);
      await whileUp();
    } catch (error) {
      failure = error;
    }
    const run = await up.interrupt();
    if (failure) throw failure;
    // each part ran its clean shutdown and exited 0 (one signal each, not "exit at once" on a second one)
    for (const name of PARTS) expect(run.output, `Ctrl-C:\n${tail(run.output)}`).to.match(new RegExp(`\\n${name.toLowerCase()} exited \\(0\\)\\n`));
    await expectNothingLeft();
  }

  async function waitHealthy(up: RunningMake): Promise<void> {
    const deadline = Date.now() + 120_000;
    let status = 0;
    while (status !== 200) {
      if (up.child.exitCode !== null || up.child.signalCode !== null)
        throw new Error(`make up exited (${up.child.exitCode ?? up.child.signalCode}):\n${tail(up.output())}`);
      if (Date.now() > deadline) throw new Error(`/health did not answer 200 within 120 s (last ${status}):\n${tail(up.output())}`);
      status = await fetch(`${gateway()}/health`).then(
        (response) => response.status,
        () => 0,
      );
      if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  async function expectNothingLeft(): Promise<void> {
    for (const name of PARTS) expect(await portOpen(ports[name] as number), `${name} port free after Ctrl-C`).to.equal(false);
    expect(processesUnder(checkout.root), 'no process of the checkout left').to.deep.equal([]);
  }

  it('starts, stops on Ctrl-C, starts again, and starts again after make stop-services', async () => {
    await upHealthyInterrupt();
    await upHealthyInterrupt();
    const stop = await runMake(checkout.root, ['stop-services'], env);
    expect(stop.code, stop.output).to.equal(0);
    await upHealthyInterrupt();
  });

  it('make create-user and a test suite start the stores when they are down', async () => {
    const stop = await runMake(checkout.root, ['stop-services'], env);
    expect(stop.code, stop.output).to.equal(0);
    for (const name of STORES) expect(await portOpen(ports[name] as number), `${name} down`).to.equal(false);
    const created = await runMake(
      checkout.root,
      ['create-user', 'EMAIL=first.admin@example.test', 'USERNAME=firstadmin', 'PASSWORD=Correct-Horse-Battery-9', 'ROLE=admin'],
      env,
    );
    expect(created.code, created.output).to.equal(0);
    expect(created.output).to.match(/created admin firstadmin <first\.admin@example\.test>/);

    expect((await runMake(checkout.root, ['stop-services'], env)).code).to.equal(0);
    const suite = await runMake(checkout.root, ['suites', 'SUITES=shared-types'], env, 180_000);
    expect(suite.code, tail(suite.output)).to.equal(0);
    expect(suite.output).to.match(/reaches PostgreSQL, Redis and MongoDB at the URLs it resolves/);
    expect(suite.output).to.match(/\n[1-9]\d* passed, 0 failed, 0 skipped\n/);
  });

  it('uses a PostgreSQL the user configures with PG_URL and starts no private one', async () => {
    expect((await runMake(checkout.root, ['stop-services'], env)).code).to.equal(0);
    const userPgUrl = storeUrls().PG_URL;
    const databases = { ACCOUNTING_PG_DB: uniqueDbName('makeup_acc'), MONITORING_PG_DB: uniqueDbName('makeup_mon') };
    try {
      await upHealthyInterrupt({ PG_URL: userPgUrl, ...databases }, async () => {
        expect(await portOpen(ports.PG as number), 'no private PostgreSQL').to.equal(false);
        const servicesEnv = readFileSync(join(checkout.root, '.data', 'services.env'), 'utf8');
        expect(servicesEnv, 'the configured URL is not written as a dev store').to.not.include(userPgUrl);
        expect(servicesEnv).to.not.match(/PG_URL/);
        for (const database of Object.values(databases)) {
          const db = connectPostgres(pgUrlFor(userPgUrl, database), { pool: { min: 0, max: 1 } });
          try {
            const tables = await db('information_schema.tables').where({ table_schema: 'public' }).count<{ count: string }[]>({ count: '*' });
            expect(Number(tables[0]?.count), `${database} migrated on the user's server`).to.be.greaterThan(0);
          } finally {
            await db.destroy();
          }
        }
      });
    } finally {
      for (const database of Object.values(databases)) await dropPostgresDatabase(userPgUrl, database).catch(() => undefined);
    }
  });

  it("runs the README's quickstart lines as written against make up", async () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const lines = fencedBlock(readme, 'bash quickstart');
    expect(lines).to.include('http://127.0.0.1:8080');
    // the same lines, pointed at this copy's gateway instead of the shipped port
    const script = `set -euo pipefail\n${lines.replaceAll('http://127.0.0.1:8080', gateway())}`;
    await upHealthyInterrupt({}, async () => {
      const run = await runBash(checkout.root, script, env);
      expect(run.code, tail(run.output, 80)).to.equal(0);
      expect(run.output).to.match(/event: delta/);
      // the reply was charged: the last balance is the allocation less the credits of the done event, none reserved
      const done = /event: done\ndata: (\{.*\})/.exec(run.output)?.[1];
      const charged = Number((JSON.parse(done ?? '{}') as { credits?: number }).credits);
      expect(charged, 'credits of the done event').to.be.greaterThan(0);
      const afterStream = run.output.slice(run.output.indexOf('event: done'));
      expect(Number(/"available": (\d+)/.exec(afterStream)?.[1])).to.equal(1000 - charged);
      expect(Number(/"reserved": (\d+)/.exec(afterStream)?.[1])).to.equal(0);
      expect(afterStream, 'the supervisor sees her student').to.match(/"students": \[\s*\{[^\]]*"username": "ada"/);
    });
  });
});

/** Runs a bash script to its end, killed after `timeoutMs`. */
function runBash(cwd: string, script: string, env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', script], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}
