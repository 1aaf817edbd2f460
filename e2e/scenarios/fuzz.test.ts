// Fuzzing: schemathesis (PyPI) against the merged OpenAPI document the gateway serves at /api/docs, with a
// valid admin token, a bounded number of examples per route. The bar: no 5xx, no response schema violation,
// and no error logged by any part during the run.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { ROOT } from '../../scripts/platform.ts';
import { api, createUser } from '../support/client.ts';
import { type Platform, startPlatform } from '../support/platform.ts';

function runToEnd(
  command: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv },
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stdout, stderr }));
  });
}

describe('fuzzing the public API with schemathesis', function () {
  this.timeout(600_000);
  let platform: Platform;

  before(async function () {
    this.timeout(400_000);
    spawnSync('bash', [join(ROOT, 'e2e', 'interop', 'setup.sh'), '--fuzz'], { stdio: 'inherit' });
    // the fuzzer sends thousands of requests as one user: lift the per-user limits for this platform only
    platform = await startPlatform({
      RATE_LIMIT_USER_PER_MINUTE: '1000000',
      RATE_LIMIT_PUBLIC_AUTH_PER_MINUTE: '1000000',
      RATE_LIMIT_LOGIN_PER_MINUTE: '1000000',
      RATE_LIMIT_LOGIN_IP_PER_MINUTE: '1000000',
      RATE_LIMIT_STREAM_STARTS_PER_MINUTE: '1000000',
    });
  });
  after(async () => {
    await platform?.stop();
  });

  it('finds no 5xx, no schema violation and no error logged by any part', async () => {
    const admin = await createUser(platform, 'admin');
    // the sentinels' caller, signed in before the run: the fuzzer, holding the first admin's token, may change that
    // admin's profile and then fail sign-ins under its new name until the account is locked (423), so the first
    // admin cannot be relied on to sign in again afterwards; this one's token and names never reach the fuzzer
    const sentinelCaller = await createUser(platform, 'admin');
    // schemathesis keeps its cache in its working directory: the git-ignored output folder
    const outputDir = join(ROOT, 'e2e', 'test-output');
    mkdirSync(outputDir, { recursive: true });
    const examples = process.env.FUZZ_EXAMPLES ?? '8';
    // spawn, not spawnSync: this process must keep reading the parts' logs while the fuzzer runs (a blocked
    // event loop reads none of them, so the error lines collected below would never include the run's)
    const run = await runToEnd(
      join(ROOT, '.tools', 'py-interop', 'bin', 'schemathesis'),
      [
        'run',
        `${platform.gatewayUrl}/api/docs`,
        '--url',
        platform.gatewayUrl,
        '-H',
        `Authorization: Bearer ${admin.accessToken}`,
        '--checks',
        'not_a_server_error,response_schema_conformance',
        '--max-examples',
        examples,
        '--phases',
        'examples,coverage,fuzzing',
        '--max-time',
        process.env.FUZZ_MAX_SECONDS ?? '240',
        // one worker: with two threads Hypothesis' own source cache races and crashes the run (KeyError in
        // hypothesis/internal/cache.py), an error of the fuzzer, not of the platform
        '--workers',
        '1',
        '--seed',
        '42',
        '--no-shrink',
        '--exclude-path-regex',
        // logout-all and change-password would end the admin's own session midway
        '/api/auth/(logout|logout-all|change-password)$',
      ],
      { cwd: outputDir, env: { ...process.env, NO_COLOR: '1' } },
    );
    // one request each part surely logs, after the run: once its line is in, so are the run's
    const sentinels = {
      gateway: '/health',
      auth: '/api/auth/me',
      accounting: '/api/credits/balance',
      chat: '/api/chat/sessions',
      monitoring: '/api/supervised-students',
    };
    const sentinelToken = sentinelCaller.accessToken;
    for (const [name, path] of Object.entries(sentinels) as Array<[keyof typeof sentinels, string]>) {
      const sentinel = await api(platform.gatewayUrl, 'GET', path, { token: sentinelToken });
      const id = sentinel.headers.get('x-request-id') ?? '';
      const deadline = Date.now() + 20_000;
      while (!platform.logs(name).some((line) => line.includes(id))) {
        if (Date.now() > deadline) throw new Error(`${name} never logged the sentinel ${path} (answered ${sentinel.status} ${JSON.stringify(sentinel.body)})`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    const output = `${run.stdout}\n${run.stderr}`;
    writeFileSync(join(ROOT, 'e2e', 'test-output', 'schemathesis.log'), output);
    // the failures and errors sections, then the summary
    const start = output.search(/^=+ (FAILURES|ERRORS) =+$/m);
    process.stdout.write((start >= 0 ? output.slice(start) : output.split('\n').slice(-40).join('\n')).slice(0, 20_000));
    // the server side of any failure: every error line the parts logged during the run
    const errors = (['gateway', 'auth', 'accounting', 'chat', 'monitoring'] as const).flatMap((name) =>
      platform
        .logs(name)
        .filter((line) => /"level":(50|60)/.test(line))
        .map((line) => `${name}: ${line}`),
    );
    writeFileSync(join(ROOT, 'e2e', 'test-output', 'fuzz-server-errors.log'), errors.join('\n'));
    if (errors.length > 0) process.stdout.write(`\nserver errors logged during the run:\n${errors.slice(0, 20).join('\n').slice(0, 8000)}\n`);
    // a part that logs an error answered something wrong or broke inside, even when the answer looked fine
    expect(errors, `${errors.length} server errors logged (e2e/test-output/fuzz-server-errors.log)`).to.deep.equal([]);
    expect(run.status, 'schemathesis found failures (see output above)').to.equal(0);
  });
});
