// A private redis-server for tests that stop, restart or starve Redis (the shared one is never touched).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { type AddressInfo, connect, createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** a port nothing listens on right now (loopback) */
export async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Whether something accepts connections on 127.0.0.1:port. */
export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** A private redis-server for tests that stop, restart or starve Redis (the shared one is never touched). */
export class PrivateRedis {
  port = 0;
  #child?: ChildProcess;
  /** with `persist`, data survives a restart (append-only file in a temp dir), as a production Redis would */
  readonly #dir?: string;
  constructor(options: { persist?: boolean } = {}) {
    if (options.persist) this.#dir = mkdtempSync(join(tmpdir(), 'private-redis-'));
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** a no-op while its server runs: a second server would fail to bind, and replacing the handle would orphan the first */
  async start(): Promise<void> {
    if (this.#child && this.#child.exitCode === null && this.#child.signalCode === null) return;
    if (this.port === 0) this.port = await freePort();
    const storage = this.#dir ? ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', this.#dir] : ['--appendonly', 'no'];
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', ...storage], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#child = child;
    await new Promise<void>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${out}`)), 10_000);
      child.stdout?.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('Ready to accept connections')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited (${code}): ${out}`));
      });
    });
  }

  async stop(): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
    this.#child = undefined;
  }

  /** stops and removes the data directory */
  async destroy(): Promise<void> {
    await this.stop();
    if (this.#dir) rmSync(this.#dir, { recursive: true, force: true });
  }
}
