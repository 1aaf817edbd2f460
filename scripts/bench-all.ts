// `make bench`: runs every bench/<name>/run.ts in turn (each bounded, loopback only) and writes
// bench/REPORT.md from the sections they print. A bench prints its markdown section to stdout between
// the lines `<!-- report -->` and `<!-- /report -->`: each figure, each ratio, each target, pass or short.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const benchDir = join(root, 'bench');
const only = process.argv.slice(2);
const names = readdirSync(benchDir, { withFileTypes: true })
  .filter((entry) => entry.isDirectory() && existsSync(join(benchDir, entry.name, 'run.ts')))
  .map((entry) => entry.name)
  .filter((name) => only.length === 0 || only.includes(name))
  .sort();

const sections: string[] = [];
let failed = false;
for (const name of names) {
  process.stdout.write(`\n=== bench ${name} ===\n`);
  const run = spawnSync(process.execPath, [join(benchDir, name, 'run.ts')], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 10 * 60_000,
  });
  process.stdout.write(run.stdout ?? '');
  const match = /<!-- report -->\n([\s\S]*?)<!-- \/report -->/.exec(run.stdout ?? '');
  if (run.status !== 0 || !match) {
    failed = true;
    sections.push(`## ${name}\n\nThe bench did not complete (exit ${run.status ?? run.signal}).\n`);
  } else sections.push((match[1] as string).trim() + '\n');
}
const report = `# Benchmark report\n\nWritten by \`make bench\` on ${new Date().toISOString()} (${process.version}, loopback only). Ratios are measured side by side in one run; absolute numbers depend on the machine.\n\n${sections.join('\n')}`;
writeFileSync(join(benchDir, 'REPORT.md'), report);
process.stdout.write(`\nwrote bench/REPORT.md (${names.length} benches)\n`);
process.exit(failed ? 1 : 0);
