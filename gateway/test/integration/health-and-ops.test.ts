import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expectProblem } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { runPrefix, startGateway, type TestGateway, waitFor } from '../support/harness.ts';
import { testYaml } from '../support/test-config.ts';

/** A service stand-in that counts the probes it gets (/ready and /openapi.json), answering after a short pause. */
async function countingService(): Promise<{ url: string; probes: { ready: number; openapi: number }; close(): Promise<void> }> {
  const probes = { ready: 0, openapi: 0 };
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/ready') probes.ready += 1;
    else if (path === '/openapi.json') probes.openapi += 1;
    // slow enough that a burst arrives while the first probe is in flight
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(path === '/openapi.json' ? '{"openapi":"3.1.0","paths":{"/api/x":{"get":{"summary":"x"}}}}' : '{"status":"ready"}');
    }, 50);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    probes,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** DESIGN 7: /health and /api/docs cannot be used to multiply calls to the services; /metrics is private. */
describe('gateway: cached public extras and the ops listener', () => {
  let service: Awaited<ReturnType<typeof countingService>>;
  let gw: TestGateway;

  before(async () => {
    service = await countingService();
    // testYaml's two service endpoints: echo (the counting service) and down (nothing listens)
    gw = await startGateway({ upstreamUrl: service.url, yaml: testYaml({ prefix: runPrefix() }) });
  });
  after(async () => {
    await gw?.stop();
    await service?.close();
  });

  it('answers a burst of 200 anonymous /health calls from at most a few probes per service', async () => {
    const started = performance.now();
    const burst = await Promise.all(Array.from({ length: 100 }, () => fetch(`${gw.url}/health`)));
    for (const response of burst) {
      expect(response.status).to.equal(503); // the `down` endpoint is unreachable
      const body = (await response.json()) as { parts: Record<string, string> };
      expect(body.parts).to.include({ echo: 'ready', down: 'unreachable' });
    }
    for (let i = 0; i < 100; i++) await (await fetch(`${gw.url}/health`)).arrayBuffer();
    const elapsedMs = performance.now() - started;
    // one probe in flight at a time, each result reused for 2 s (the default cacheMs)
    expect(service.probes.ready).to.be.at.least(1);
    expect(service.probes.ready).to.be.at.most(1 + Math.ceil(elapsedMs / 2_000));
  });

  it('answers a burst of /api/docs calls from one merge', async () => {
    const started = performance.now();
    const burst = await Promise.all(Array.from({ length: 50 }, () => fetch(`${gw.url}/api/docs`)));
    for (const response of burst) {
      expect(response.status).to.equal(200);
      expect(((await response.json()) as { paths: Record<string, unknown> }).paths).to.have.property('/api/x');
    }
    expect(service.probes.openapi).to.be.at.least(1);
    expect(service.probes.openapi).to.be.at.most(1 + Math.ceil((performance.now() - started) / 2_000));
  });

  it('serves Prometheus text on the ops listener and 404 for /metrics on the public port', async () => {
    await expectProblem(await fetch(`${gw.url}/metrics`), 404, 'NOT_FOUND');
    const ops = await fetch(`${gw.gateway.opsUrl}/metrics`);
    expect(ops.status).to.equal(200);
    expect(ops.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/);
    const text = await ops.text();
    expect(text).to.match(/gateway_requests_total\{route="health",method="GET",status="503"\} (\d+)/);
    expect(Number(/gateway_requests_total\{route="health",method="GET",status="503"\} (\d+)/.exec(text)?.[1])).to.be.at.least(200);
    expect(text).to.include('gateway_process_cpu_seconds_total');
    // nothing else on the ops port
    await expectProblem(await fetch(`${gw.gateway.opsUrl}/health`), 404, 'NOT_FOUND');
    await expectProblem(await fetch(`${gw.gateway.opsUrl}/metrics`, { method: 'POST' }), 404, 'NOT_FOUND');
  });

  it('serves store-free /livez and /readyz on the ops listener; while draining /readyz fails and requests are still served', async () => {
    const own = await startGateway({ upstreamUrl: service.url, yaml: testYaml({ prefix: runPrefix() }) });
    try {
      const probe = async (path: string, method = 'GET') => (await fetch(`${own.gateway.opsUrl}${path}`, { method })).status;
      expect(await probe('/livez')).to.equal(200);
      expect(await probe('/readyz')).to.equal(200);
      expect(await probe('/readyz', 'HEAD')).to.equal(200);
      await expectProblem(await fetch(`${own.gateway.opsUrl}/readyz`, { method: 'POST' }), 404, 'NOT_FOUND');
      // probes are ops-only: the public port does not answer them
      await expectProblem(await fetch(`${own.url}/readyz`), 404, 'NOT_FOUND');
      const publicBefore = (await fetch(`${own.url}/health`)).status;
      void own.gateway.drain(60_000); // longer than the test: it stays draining
      await waitFor(async () => (await probe('/readyz')) === 503, 'readiness fails while draining');
      expect(await probe('/livez'), 'still alive while draining').to.equal(200);
      expect((await fetch(`${own.url}/health`)).status, 'requests are still served while draining').to.equal(publicBefore);
    } finally {
      await own.stop();
    }
  });

  it('refuses a routing file that would serve metrics on the public port, keeping the last good config', async () => {
    const good = gw.gateway.configStatus().hash;
    const attempts = gw.gateway.configStatus().attempts;
    const yaml = testYaml({
      prefix: runPrefix(),
      extraEndpoints: '  metrics: { paths: /metrics }',
      extraPipelines: '  metrics:\n    apiEndpoints: [metrics]\n    policies: [{ metrics: }]\n',
    }).replace('health, docs]', 'health, metrics, docs]');
    writeFileSync(gw.configFile, yaml);
    await waitFor(() => gw.gateway.configStatus().attempts > attempts && gw.gateway.configStatus().lastError !== undefined, 'the refusal');
    expect(String(gw.gateway.configStatus().lastError)).to.include('ops listener');
    expect(gw.gateway.configStatus().hash).to.equal(good);
    await expectProblem(await fetch(`${gw.url}/metrics`), 404, 'NOT_FOUND');
  });
});
