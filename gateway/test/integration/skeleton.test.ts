import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createTestAuth, expectProblem, storeUrls } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { configSchema } from '../../src/config.ts';
import { start } from '../../src/main.ts';

/** A stand-in upstream that echoes what it received (our own test server, not a mock of a service). */
function echoServer(): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url === '/ready') {
      res.writeHead(200).end('{}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ url: req.url, headers: req.headers }));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

describe('gateway skeleton', () => {
  const auth = createTestAuth();
  let upstream: Server;
  let gateway: Awaited<ReturnType<typeof start>>;

  before(async () => {
    upstream = await echoServer();
    const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    gateway = await start(
      configSchema.parse({
        ...auth.secrets,
        NODE_ENV: 'test',
        PORT: '0',
        REDIS_URL: storeUrls().REDIS_URL,
        AUTH_URL: url,
        ACCOUNTING_URL: url,
        CHAT_URL: url,
        MONITORING_URL: url,
      }),
    );
  });
  after(async () => {
    await gateway.stop();
    upstream.close();
  });

  it('aggregates /health over every service', async () => {
    const response = await fetch(`${gateway.url}/health`);
    expect(response.status).to.equal(200);
    const body = (await response.json()) as { parts: Record<string, string> };
    expect(body.parts).to.deep.equal({ gateway: 'ready', auth: 'ready', accounting: 'ready', chat: 'ready', monitoring: 'ready' });
  });

  it('forwards the path unchanged and strips client identity headers in any case', async () => {
    const response = await fetch(`${gateway.url}/api/credits/balance?x=1`, {
      headers: { 'X-User-Id': 'evil', 'x-IDENTITY-signature': 'forged', 'X-Service-Token': 't' },
    });
    const body = (await response.json()) as { url: string; headers: Record<string, string> };
    expect(body.url).to.equal('/api/credits/balance?x=1');
    expect(body.headers).not.to.have.property('x-user-id');
    expect(body.headers).not.to.have.property('x-identity-signature');
    expect(body.headers).not.to.have.property('x-service-token');
  });

  it('never routes /internal', async () => {
    await expectProblem(await fetch(`${gateway.url}/internal/streaming-sessions/finalize`, { method: 'POST' }), 404, 'NOT_FOUND');
  });
});
