// Starts the platform's parts as separate processes (as `make up` does) and reports where each listens.
// Used by scripts/up.ts (fixed DESIGN ports) and the e2e suites (port 0, fresh databases, kill/restart).
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT = new URL('..', import.meta.url).pathname;
export const SERVICE_NAMES = ['auth', 'accounting', 'chat', 'monitoring'] as const;
export type PartName = (typeof SERVICE_NAMES)[number] | 'gateway';

export interface RunningPart {
  name: PartName;
  child: ChildProcess;
  /** resolves with the bound URL once the part logs that it listens */
  url: Promise<string>;
  /** the private ops listener's URL (GET /metrics), from the same log line */
  opsUrl: Promise<string>;
  /** resolves when the process has exited */
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

// Children die with their launcher, even when it exits abruptly (a failed test run, mocha's --exit).
const liveChildren = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of liveChildren) child.kill('SIGKILL');
});

/** The node flags (`--...` words) of a part's `npm start` script, so parts launched here run as `npm start` runs them. */
export function startFlags(name: PartName): string[] {
  const manifest = JSON.parse(readFileSync(join(ROOT, name, 'package.json'), 'utf8')) as { scripts?: { start?: string } };
  return (manifest.scripts?.start ?? '').split(/\s+/).filter((word) => word.startsWith('--'));
}

/**
 * Spawns `node [start flags] src/main.ts` in the part's folder (flags from its package.json start script). Output lines go to `onLine`; the JSON log line with
 * msg "listening" gives the URL (so port 0 works). `ownProcessGroup`: the terminal's Ctrl-C reaches only the
 * launcher, which then stops the part with one signal (a part that gets SIGINT from the terminal and SIGTERM
 * from the launcher takes the second as "exit now" and skips its clean shutdown).
 */
export function launchPart(
  name: PartName,
  env: Record<string, string | undefined>,
  onLine: (name: PartName, line: string, stream: 'out' | 'err') => void,
  options: { ownProcessGroup?: boolean } = {},
): RunningPart {
  const child = spawn(process.execPath, [...startFlags(name), 'src/main.ts'], {
    cwd: join(ROOT, name),
    env: env as NodeJS.ProcessEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.ownProcessGroup ?? false,
  });
  let resolveUrl: (url: string) => void = () => {};
  let resolveOpsUrl: (url: string) => void = () => {};
  const opsUrl = new Promise<string>((resolve) => {
    resolveOpsUrl = resolve;
  });
  let rejectUrl: (error: Error) => void = () => {};
  const url = new Promise<string>((resolve, reject) => {
    resolveUrl = resolve;
    rejectUrl = reject;
  });
  liveChildren.add(child);
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      liveChildren.delete(child);
      rejectUrl(new Error(`${name} exited (${code}) before listening`));
      resolve(code);
    });
  });
  const watch = (stream: NodeJS.ReadableStream, kind: 'out' | 'err') => {
    let buffer = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      buffer += chunk;
      const lines = buffer.split('\n');
      buffer = lines.pop() ?? '';
      for (const line of lines) {
        if (line.includes('"listening"')) {
          try {
            const parsed = JSON.parse(line) as { msg?: string; url?: string; opsUrl?: string };
            if (parsed.msg === 'listening' && parsed.url) resolveUrl(parsed.url);
            if (parsed.msg === 'listening' && parsed.opsUrl) resolveOpsUrl(parsed.opsUrl);
          } catch {
            // not a JSON log line
          }
        }
        onLine(name, line, kind);
      }
    });
  };
  watch(child.stdout as NodeJS.ReadableStream, 'out');
  watch(child.stderr as NodeJS.ReadableStream, 'err');
  return {
    name,
    child,
    url,
    opsUrl,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const timer = setTimeout(() => child.kill('SIGKILL'), 8_000);
      child.kill(signal);
      await exited;
      clearTimeout(timer);
    },
  };
}
