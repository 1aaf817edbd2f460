// Private Redis and FerretDB processes for fault tests: they can be stopped and restarted without
// disturbing the shared stores other suites use. Ports are picked free on loopback.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../../scripts/platform.ts';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, timeoutMs = 30_000): Promise<void> {
  const { connect } = await import('node:net');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`port ${port} did not open`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export interface PrivateStore {
  url: string;
  stop(): Promise<void>;
  start(): Promise<void>;
  destroy(): Promise<void>;
}

function managed(command: string, args: string[], port: number, url: string, dir: string): PrivateStore {
  let child: ChildProcess | undefined;
  const store: PrivateStore = {
    url,
    /** a no-op while its process runs (a second one would fail to bind, and the first would be orphaned) */
    async start() {
      // a process killed by a signal has no exit code, only a signal code
      if (child && child.exitCode === null && child.signalCode === null) return;
      child = spawn(command, args, { stdio: 'ignore' });
      await waitForPort(port);
    },
    async stop() {
      const running = child;
      if (!running || running.exitCode !== null || running.signalCode !== null) return;
      await new Promise<void>((resolve) => {
        running.once('exit', () => resolve());
        running.kill('SIGKILL');
      });
    },
    async destroy() {
      await store.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return store;
}

export async function privateRedis(): Promise<PrivateStore> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'e2e-redis-'));
  const store = managed(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    port,
    `redis://127.0.0.1:${port}`,
    dir,
  );
  await store.start();
  return store;
}

export async function privateMongo(): Promise<PrivateStore> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'e2e-ferret-'));
  const binary = join(ROOT, '.tools', 'ferretdb-local');
  const store = managed(binary, ['-listen', `127.0.0.1:${port}`, '-dir', dir], port, `mongodb://127.0.0.1:${port}/?directConnection=true`, dir);
  await store.start();
  return store;
}
