// Runs every workspace's mocha suite (unit and integration, against the real local stores), then the
// repository checks in e2e/, and closes with one line CI reads: "N passed, N failed, N skipped" (pending tests are the skipped ones). A pending
// test (it.skip, an it without a body, this.skip()) fails the run: a skipped test guards nothing.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const suites = ['shared-types', 'gateway', 'auth', 'accounting', 'chat', 'monitoring', 'e2e'].filter((dir) => existsSync(join(root, dir, '.mocharc.json')));
const only = process.argv.slice(2);
const resultsDir = mkdtempSync(join(tmpdir(), 'platform-tests-'));
const resultsFile = join(resultsDir, 'results.jsonl');

function run(dir: string): Promise<number> {
  return new Promise((resolve) => {
    process.stdout.write(`\n=== ${dir} ===\n`);
    const child = spawn('npx', ['mocha'], { cwd: join(root, dir), stdio: 'inherit', env: { ...process.env, MOCHA_RESULTS_FILE: resultsFile } });
    child.on('exit', (code) => resolve(code ?? 1));
  });
}

/**
 * The Helm test (e2e, the last suite) needs helm, built from its Go module on a fresh machine (~10 min): the
 * build starts now, niced beside the suites, so it is done by then instead of on the run's critical path. The
 * test runs the same script, which waits for this one (flock) or finds everything installed.
 */
function prepareK8sTools(): Promise<number | null> {
  const log = join(root, '.tools', 'k8s-tools.log');
  mkdirSync(dirname(log), { recursive: true });
  const out = openSync(log, 'w');
  const child = spawn('bash', [join(root, 'deploy', 'scripts', 'ensure-k8s-tools.sh')], {
    stdio: ['ignore', out, out],
    env: { ...process.env, K8S_TOOLS_BACKGROUND: '1' },
  });
  closeSync(out);
  return new Promise((resolve) => child.on('exit', resolve));
}

const selected = suites.filter((s) => only.length === 0 || only.includes(s));
const k8sTools = selected.includes('e2e') ? prepareK8sTools() : undefined;
let exitCode = 0;
for (const dir of selected) {
  const code = await run(dir);
  if (code !== 0) {
    exitCode = 1;
    process.stdout.write(`=== ${dir} FAILED (exit ${code}) ===\n`);
  }
}
// normally long done (the Helm test waited for it); never left running after the summary
if (k8sTools && (await k8sTools) !== 0) process.stdout.write(`k8s tools setup failed: see .tools/k8s-tools.log\n`);
let passed = 0;
let failed = 0;
let pending = 0;
if (existsSync(resultsFile)) {
  for (const line of readFileSync(resultsFile, 'utf8').trim().split('\n')) {
    const result = JSON.parse(line) as { passes: number; failures: number; pending?: number };
    passed += result.passes;
    failed += result.failures;
    pending += result.pending ?? 0;
  }
}
rmSync(resultsDir, { recursive: true, force: true });
if (passed === 0) exitCode = 1;
process.stdout.write(`\n${passed} passed, ${failed} failed, ${pending} skipped\n`);
process.exit(exitCode || (failed > 0 || pending > 0 ? 1 : 0));
