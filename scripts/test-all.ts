// Runs every workspace's mocha suite (unit and integration, against the real local stores), then the
// repository checks in e2e/, and closes with one line CI reads: "N passed, N failed, N skipped" (pending tests are the skipped ones). A pending
// test (it.skip, an it without a body, this.skip()) fails the run: a skipped test guards nothing.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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

let exitCode = 0;
for (const dir of suites.filter((s) => only.length === 0 || only.includes(s))) {
  const code = await run(dir);
  if (code !== 0) {
    exitCode = 1;
    process.stdout.write(`=== ${dir} FAILED (exit ${code}) ===\n`);
  }
}
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
