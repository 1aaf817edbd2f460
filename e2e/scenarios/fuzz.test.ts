// Fuzzing: schemathesis (PyPI) against the merged OpenAPI document the gateway serves at /api/docs, with a
// valid admin token, a bounded number of examples per route. The bar: no 5xx, no response schema violation.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { ROOT } from '../../scripts/platform.ts';
import { createUser } from '../support/client.ts';
import { type Platform, startPlatform } from '../support/platform.ts';

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

  it('finds no 5xx and no schema violation', async () => {
    const admin = await createUser(platform, 'admin');
    // schemathesis keeps its cache in its working directory: the git-ignored output folder
    const outputDir = join(ROOT, 'e2e', 'test-output');
    mkdirSync(outputDir, { recursive: true });
    const examples = process.env.FUZZ_EXAMPLES ?? '8';
    const run = spawnSync(
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
        '--workers',
        '2',
        '--seed',
        '42',
        '--no-shrink',
        '--exclude-path-regex',
        // logout-all and change-password would end the admin's own session midway
        '/api/auth/(logout|logout-all|change-password)$',
      ],
      { cwd: outputDir, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, maxBuffer: 64 * 1024 * 1024 },
    );
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
    expect(run.status, 'schemathesis found failures (see output above)').to.equal(0);
  });
});
