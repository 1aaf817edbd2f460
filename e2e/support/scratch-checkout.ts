// A scratch copy of this checkout, as a newcomer's clone would be: the tracked (and not ignored) files of the
// working tree, its own empty .data/, and the already installed node_modules and .tools linked in so that
// nothing is reinstalled or rebuilt. `make` targets run in it with a clean environment and their own ports.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ROOT } from '../../scripts/platform.ts';

export interface ScratchCheckout {
  root: string;
  remove(): void;
}

export function scratchCheckout(): ScratchCheckout {
  const root = mkdtempSync(join(tmpdir(), 'scratch-checkout-'));
  // the private PostgreSQL runs as the postgres user when we are root: it must reach .data/ below
  chmodSync(root, 0o755);
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' }).split('\0');
  for (const file of files.filter(Boolean)) {
    const source = join(ROOT, file);
    if (!existsSync(source)) continue; // deleted in the working tree, not yet committed
    mkdirSync(dirname(join(root, file)), { recursive: true });
    if (lstatSync(source).isSymbolicLink()) symlinkSync(readlinkSync(source), join(root, file));
    else copyFileSync(source, join(root, file));
  }
  linkNodeModules(root);
  linkTools(root);
  return { root, remove: () => rmSync(root, { recursive: true, force: true }) };
}

/** Every installed package linked in; the workspace links keep their relative targets, so they are the copy's own parts. */
function linkNodeModules(root: string): void {
  const source = join(ROOT, 'node_modules');
  const target = join(root, 'node_modules');
  mkdirSync(target);
  for (const entry of readdirSync(source)) {
    if (entry === '.install-stamp') continue;
    if (entry === '@platform') {
      mkdirSync(join(target, entry));
      for (const link of readdirSync(join(source, entry))) symlinkSync(readlinkSync(join(source, entry, link)), join(target, entry, link));
    } else symlinkSync(join(source, entry), join(target, entry));
  }
  // `make install` compares the stamp with the manifests: older manifests, a fresh stamp, no npm install
  const past = new Date(Date.now() - 3_600_000);
  for (const manifest of ['package.json', 'package-lock.json', ...readdirSync(root).map((dir) => join(dir, 'package.json'))]) {
    if (existsSync(join(root, manifest))) utimesSync(join(root, manifest), past, past);
  }
  writeFileSync(join(target, '.install-stamp'), '');
}

/** Node 24 and the built FerretDB (with its stamp, so services.sh does not rebuild it). */
function linkTools(root: string): void {
  const tools = join(root, '.tools');
  mkdirSync(tools);
  for (const name of ['node24', 'ferretdb-local']) {
    if (existsSync(join(ROOT, '.tools', name))) symlinkSync(join(ROOT, '.tools', name), join(tools, name));
  }
  if (existsSync(join(ROOT, '.tools', 'ferretdb-local.stamp'))) copyFileSync(join(ROOT, '.tools', 'ferretdb-local.stamp'), join(tools, 'ferretdb-local.stamp'));
}

/** The environment of a newcomer's shell: no store URLs, secrets, ports or make state of the outer run. */
export function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const name of ['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'TMPDIR']) if (process.env[name]) env[name] = process.env[name];
  return { ...env, ...extra };
}

export interface MakeRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

/** Runs `make args...` in the copy to its end (bounded). */
export function runMake(root: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 120_000): Promise<MakeRun> {
  const running = startMake(root, args, env);
  return running.finished(timeoutMs);
}

export interface RunningMake {
  child: ChildProcess;
  output(): string;
  finished(timeoutMs: number): Promise<MakeRun>;
  /** Ctrl-C as a terminal sends it: SIGINT to the whole foreground process group */
  interrupt(timeoutMs?: number): Promise<MakeRun>;
}

export function startMake(root: string, args: string[], env: NodeJS.ProcessEnv): RunningMake {
  // its own process group, as a terminal's foreground job
  const child = spawn('make', ['--no-print-directory', ...args], { cwd: root, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exit = new Promise<MakeRun>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal, output }));
  });
  const finished = async (timeoutMs: number) => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<MakeRun>((_, reject) => {
      timer = setTimeout(() => {
        killGroup(child, 'SIGKILL');
        reject(new Error(`make ${args.join(' ')} did not finish within ${timeoutMs} ms:\n${tail(output)}`));
      }, timeoutMs);
    });
    try {
      const run = await Promise.race([exit, timeout]);
      await streamsClosed(child);
      return { ...run, output };
    } finally {
      clearTimeout(timer);
    }
  };
  return {
    child,
    output: () => output,
    finished,
    interrupt(timeoutMs = 30_000) {
      killGroup(child, 'SIGINT');
      return finished(timeoutMs);
    },
  };
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid) process.kill(-child.pid, signal);
  } catch {
    // the group is gone already
  }
}

function streamsClosed(child: ChildProcess): Promise<void> {
  const closed = (stream: NodeJS.ReadableStream | null) =>
    stream && !(stream as unknown as { closed: boolean }).closed ? new Promise<void>((resolve) => stream.once('close', () => resolve())) : Promise.resolve();
  return Promise.all([closed(child.stdout), closed(child.stderr)]).then(() => {});
}

export function tail(text: string, lines = 40): string {
  return text.trim().split('\n').slice(-lines).join('\n');
}

export { portOpen } from '@platform/shared-types/testing';

/** Processes whose working directory is inside `root` (pids), read from /proc. */
export function processesUnder(root: string): { pid: number; command: string }[] {
  const found: { pid: number; command: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cwd = readlinkSync(`/proc/${entry}/cwd`);
      if (cwd === root || cwd.startsWith(`${root}/`))
        found.push({ pid: Number(entry), command: readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ').trim() });
    } catch {
      // gone, or not ours to read
    }
  }
  return found;
}

/** The lines of the first fenced block whose info string is `lang marker` (e.g. ```bash quickstart). */
export function fencedBlock(markdown: string, info: string): string {
  const match = new RegExp(`^\`\`\`${info.replace(' ', '[ \\t]+')}[ \\t]*\\n([\\s\\S]*?)^\`\`\`[ \\t]*$`, 'm').exec(markdown);
  if (!match) throw new Error(`no \`\`\`${info} block`);
  return match[1] as string;
}
