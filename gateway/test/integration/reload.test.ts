import { createHash } from 'node:crypto';
import { mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { runPrefix, startGateway, startUpstream, type TestGateway, type Upstream, waitFor } from '../support/harness.ts';
import { testYaml } from '../support/test-config.ts';

describe('gateway: config hot reload', () => {
  const prefix = runPrefix();
  let upstream: Upstream;
  let gw: TestGateway;

  /** Generation n routes /api/gen/n (public) to the echo upstream. */
  const generation = (n: number) =>
    testYaml({
      prefix,
      debounceMs: 5, // short, so reloads run while the burst goes on
      extraEndpoints: `  gen: { paths: /api/gen/${n} }`,
      extraPipelines: `  gen:\n    apiEndpoints: [gen]\n    policies:\n      - proxy: [{ action: { serviceEndpoint: echo } }]`,
    });
  const sha = (text: string) => createHash('sha256').update(text).digest('hex');
  const status = async (path: string) => {
    const response = await fetch(`${gw.url}${path}`);
    await response.arrayBuffer();
    return response.status;
  };

  before(async () => {
    upstream = await startUpstream();
    gw = await startGateway({ upstreamUrl: upstream.url, yaml: generation(0) });
  });
  after(async () => {
    await gw?.stop();
    await upstream?.close();
  });

  it('starts on the file it was given', async () => {
    expect(await status('/api/gen/0')).to.equal(200);
    expect(gw.gateway.configStatus().version).to.equal(1);
  });

  it('survives a burst of 20 writes 10 ms apart, rename-over edits included, and ends on the final content', async () => {
    let final = '';
    const started = Date.now();
    for (let n = 1; n <= 20; n++) {
      final = generation(n);
      if (n % 3 === 0) {
        const temp = join(gw.dir, `.gateway.config.yml.${n}.tmp`);
        writeFileSync(temp, final);
        renameSync(temp, gw.configFile);
      } else {
        writeFileSync(gw.configFile, final);
      }
      await new Promise((resolve) => setTimeout(resolve, 10)); // pacing the burst, not synchronisation
    }
    // the premise: a burst of edits (10 ms apart), not a check of the gateway; a loaded machine stretches the writes
    expect(Date.now() - started).to.be.below(5_000);
    await waitFor(() => gw.gateway.configStatus().hash === sha(final), 'the final config to be in force', 5_000);
    expect(await status('/api/gen/20')).to.equal(200);
    expect(await status('/api/gen/19')).to.equal(404);
    expect(await status('/api/gen/0')).to.equal(404);
    expect(gw.gateway.configStatus().lastError).to.equal(undefined);
  });

  it('keeps the last good config when an edit is invalid, and says why', async () => {
    const good = gw.gateway.configStatus().hash;
    const broken = [
      'http: [unclosed',
      generation(21).replace('policies: [cors,', 'policies: [no-such-policy, cors,'),
      generation(21).replace('serviceEndpoint: echo }', 'serviceEndpoint: nowhere }'),
      generation(21).replace('limit: 1000', 'limit: -1'),
      generation(21).replace('url: $' + '{AUTH_URL}', 'url: $' + '{UNSET_VARIABLE_FOR_TEST}'),
    ];
    for (const text of broken) {
      const attempts = gw.gateway.configStatus().attempts;
      writeFileSync(gw.configFile, text);
      await waitFor(() => gw.gateway.configStatus().attempts > attempts && gw.gateway.configStatus().lastError !== undefined, 'the refusal');
      expect(gw.gateway.configStatus().hash).to.equal(good);
      expect(await status('/api/gen/20')).to.equal(200);
    }
    const metrics = await (await fetch(`${gw.gateway.opsUrl}/metrics`)).text();
    expect(metrics).to.match(/gateway_config_reloads_total\{result="invalid"\} [1-9]/);
  });

  it('reloads on SIGHUP an edit the watcher cannot see', async () => {
    // the config path becomes a symlink into another directory (as a mounted ConfigMap is): edits of the
    // target raise no event in the watched directory, so only SIGHUP can bring them in
    const targetDir = mkdtempSync(join(tmpdir(), 'gateway-config-target-'));
    try {
      const target = join(targetDir, 'gateway.config.yml');
      writeFileSync(target, generation(22));
      const link = join(gw.dir, '.gateway.config.yml.link');
      symlinkSync(target, link);
      renameSync(link, gw.configFile);
      await waitFor(() => gw.gateway.configStatus().hash === sha(generation(22)), 'the watched swap to the symlink');
      expect(await status('/api/gen/22')).to.equal(200);

      const attempts = gw.gateway.configStatus().attempts;
      writeFileSync(target, generation(23));
      // 60 debounce periods: a watcher that saw the edit would have reloaded by now (a bound, not a sync)
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(gw.gateway.configStatus().attempts, 'the watcher saw no event').to.equal(attempts);
      expect(await status('/api/gen/23')).to.equal(404);

      process.kill(process.pid, 'SIGHUP');
      await waitFor(() => gw.gateway.configStatus().hash === sha(generation(23)), 'the reload after SIGHUP');
      expect(await status('/api/gen/23')).to.equal(200);
      expect(await status('/api/gen/22')).to.equal(404);
    } finally {
      rmSync(targetDir, { recursive: true, force: true });
    }
  });
});
