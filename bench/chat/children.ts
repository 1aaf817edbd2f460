// The bench's child processes: a chat instance and a gateway in front of it, each started from a checkout's
// folder (this one, or BENCH_BASELINE_DIR's copy for a side-by-side run) and optionally CPU-profiled
// (BENCH_PROFILE_DIR: `--cpu-prof` into that folder; summarise with bench/gateway/profile-summary.ts).
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';

export interface Child {
  process: ChildProcess;
  url: string;
  stop(): Promise<void>;
}

const profileFlags = (name: string) =>
  process.env.BENCH_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`, `--cpu-prof-name=${name}-${process.pid}.cpuprofile`] : [];

/** starts `node [flags] <script>` in `dir`, resolving with the URL the service logs (pino JSON) once it listens */
export async function startChild(name: string, dir: string, env: Record<string, string>, script = 'src/main.ts'): Promise<Child> {
  const child = spawn(process.execPath, [...profileFlags(name), script], {
    cwd: dir,
    env: { ...process.env, NODE_ENV: 'production', LOG_LEVEL: 'info', PORT: '0', OPS_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let buffer = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const match = /"url":"(http:\/\/[^"]+)"/.exec(buffer);
      if (match) resolve(match[1] as string);
      if (buffer.length > 100_000) buffer = buffer.slice(-1000);
    });
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}`)));
    setTimeout(() => reject(new Error(`${name} did not start`)), 30_000).unref();
  });
  return {
    process: child,
    url,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    },
  };
}

export const chatDir = (root: string) => join(root, 'chat');
export const gatewayDir = (root: string) => join(root, 'gateway');
