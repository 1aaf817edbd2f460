import { verifyIdentityHeaders } from '@platform/shared-types';
import { testActor } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { request } from 'undici';
import { rawRequest, runPrefix, startGateway, startUpstream, type TestGateway, type Upstream } from '../support/harness.ts';
import { testYaml } from '../support/test-config.ts';

describe('gateway: routing, identity headers, proxying', () => {
  let upstream: Upstream;
  let gw: TestGateway;

  before(async () => {
    upstream = await startUpstream();
    gw = await startGateway({ upstreamUrl: upstream.url, yaml: testYaml({ prefix: runPrefix() }) });
  });
  after(async () => {
    await gw?.stop();
    await upstream?.close();
  });

  it('forwards path and query unchanged with signed identity headers for the verified user', async () => {
    const actor = testActor('supervisor');
    const response = await fetch(`${gw.url}/api/credits/balance?userId=abc&x=1`, {
      headers: { authorization: `Bearer ${gw.auth.token(actor)}`, 'x-request-id': 'client-request-0001' },
    });
    expect(response.status).to.equal(200);
    const body = (await response.json()) as { url: string; headers: Record<string, string> };
    expect(body.url).to.equal('/api/credits/balance?userId=abc&x=1');
    const seenActor = verifyIdentityHeaders(gw.auth.secrets.INTERNAL_SECRET, body.headers, { method: 'GET', path: '/api/credits/balance', service: 'echo' });
    expect(seenActor).to.deep.equal(actor);
    expect(body.headers['x-request-id']).to.equal('client-request-0001');
    expect(response.headers.get('x-request-id')).to.equal('client-request-0001');
    expect(body.headers['x-forwarded-for']).to.equal('127.0.0.1');
    expect(body.headers['x-forwarded-proto']).to.equal('http');
  });

  it('forwards Authorization unchanged and replaces a malformed request id', async () => {
    const token = gw.auth.token(testActor());
    const response = await fetch(`${gw.url}/api/credits/balance`, { headers: { authorization: `Bearer ${token}`, 'x-request-id': 'bad id!' } });
    const body = (await response.json()) as { headers: Record<string, string> };
    expect(body.headers.authorization).to.equal(`Bearer ${token}`);
    expect(body.headers['x-request-id']).to.match(/^[0-9a-f-]{36}$/);
    expect(body.headers['x-request-id']).to.equal(response.headers.get('x-request-id'));
  });

  it('never lets spoofed identity headers reach a service: any case, any number of copies', async () => {
    const actor = testActor('enduser');
    const forged = testActor('admin');
    const spoof = [
      ['X-User-Id', forged.userId],
      ['x-user-id', 'second-copy'],
      ['X-USER-ROLE', 'admin'],
      ['x-User-Email', 'root@example.test'],
      ['X-Username', 'root'],
      ['x-USERNAME', 'root2'],
      ['X-Token-Jti', 'forged-jti'],
      ['X-Identity-Signature', 't=1,v1=00'],
      ['x-identity-anything', 'x'],
      ['X-Service-Token', 'forged'],
      ['x-service-caller', 'auth'],
      ['x-user-extra', 'x'],
    ];
    const flat = spoof.flat();
    const withToken = await request(`${gw.url}/api/credits/balance`, { headers: [...flat, 'authorization', `Bearer ${gw.auth.token(actor)}`] });
    const body = (await withToken.body.json()) as { headers: Record<string, string>; rawHeaders: string[] };
    expect(withToken.statusCode).to.equal(200);
    expect(
      verifyIdentityHeaders(gw.auth.secrets.INTERNAL_SECRET, body.headers, { method: 'GET', path: '/api/credits/balance', service: 'echo' }),
    ).to.deep.equal(actor);
    const names = body.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    for (const name of ['x-user-id', 'x-user-role', 'x-user-email', 'x-username', 'x-token-jti', 'x-identity-signature']) {
      expect(
        names.filter((n) => n === name),
        name,
      ).to.have.length(1);
    }
    for (const name of ['x-identity-anything', 'x-service-token', 'x-service-caller', 'x-user-extra']) expect(names).not.to.include(name);

    // without a token, on a public route: nothing of the spoof arrives at all
    const anonymous = await request(`${gw.url}/api/auth/signup`, { method: 'POST', headers: [...flat, 'content-type', 'application/json'], body: '{}' });
    const anonBody = (await anonymous.body.json()) as { rawHeaders: string[] };
    const anonNames = anonBody.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    for (const [name] of spoof) expect(anonNames).not.to.include((name as string).toLowerCase());
  });

  it('strips hop-by-hop headers both ways, including those named in Connection', async () => {
    const response = await rawRequest(gw.url, '/api/open/echo', {
      headers: { connection: 'keep-alive, x-drop-me', 'x-drop-me': '1', 'keep-alive': 'timeout=1', te: 'trailers', 'proxy-authorization': 'Basic x' },
    });
    const body = JSON.parse(response.body) as { headers: Record<string, string> };
    for (const name of ['x-drop-me', 'te', 'keep-alive', 'proxy-authorization']) expect(body.headers, name).not.to.have.property(name);
    expect(body.headers.connection ?? '').not.to.include('x-drop-me');
    // the upstream said keep-alive: timeout=5 to the gateway; that is not the client's business
    expect(response.headers['keep-alive'] ?? '').not.to.equal('timeout=5');
    expect(response.headers['x-upstream']).to.equal('echo');
  });

  it('streams request bodies through and enforces per-route body limits (413)', async () => {
    const ok = await fetch(`${gw.url}/api/small`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ a: 'x'.repeat(500) }),
    });
    expect(ok.status).to.equal(200);
    expect(((await ok.json()) as { body: string }).body).to.have.length(508);
    const big = await fetch(`${gw.url}/api/small`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'x'.repeat(2048) });
    expect(big.status).to.equal(413);
    expect(((await big.json()) as { code: string }).code).to.equal('PAYLOAD_TOO_LARGE');
    // chunked upload without a length: counted on the way
    const stream = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 4; i++) controller.enqueue(new TextEncoder().encode('y'.repeat(400)));
        controller.close();
      },
    });
    const chunked = await fetch(`${gw.url}/api/small`, { method: 'POST', body: stream, duplex: 'half' } as RequestInit);
    expect(chunked.status).to.equal(413);
  });

  it('answers unroutable paths with 404 and a down upstream with a 503 problem', async () => {
    const missing = await fetch(`${gw.url}/api/nowhere`);
    expect(missing.status).to.equal(404);
    expect(missing.headers.get('content-type')).to.match(/^application\/problem\+json/);
    const down = await fetch(`${gw.url}/api/open/down`, { headers: { 'x-request-id': 'client-request-down-01' } });
    expect(down.status).to.equal(503);
    expect(down.headers.get('content-type')).to.match(/^application\/problem\+json/);
    const body = (await down.json()) as { code: string; status: number; requestId: string };
    expect(body.code).to.equal('UPSTREAM_UNAVAILABLE');
    expect(body).to.include({ status: 503, requestId: 'client-request-down-01' });
  });

  it('answers 504 UPSTREAM_TIMEOUT (DESIGN 6) when the upstream does not send headers in time', async () => {
    upstream.handle('/api/open/slow', () => {
      // never answers
    });
    const response = await fetch(`${gw.url}/api/open/slow`, { headers: { 'x-request-id': 'client-request-slow-01' } });
    expect(response.status).to.equal(504);
    expect(response.headers.get('content-type')).to.match(/^application\/problem\+json/);
    const body = (await response.json()) as { code: string; status: number; requestId: string; type: string };
    expect(body).to.include({ code: 'UPSTREAM_TIMEOUT', status: 504, requestId: 'client-request-slow-01' });
    expect(body.type).to.equal('https://errors.platform.local/upstream-timeout');
  });

  it('answers 502 UPSTREAM_UNAVAILABLE when the upstream drops the connection without an answer', async () => {
    upstream.handle('/api/open/broken', (req) => {
      req.socket.destroy();
    });
    const response = await fetch(`${gw.url}/api/open/broken`, { headers: { 'x-request-id': 'client-request-broken-01' } });
    expect(response.status).to.equal(502);
    expect(response.headers.get('content-type')).to.match(/^application\/problem\+json/);
    const body = (await response.json()) as { code: string; status: number; requestId: string };
    expect(body).to.include({ code: 'UPSTREAM_UNAVAILABLE', status: 502, requestId: 'client-request-broken-01' });
  });

  it('sets security headers and CORS from config (preflight answered without a token)', async () => {
    const preflight = await fetch(`${gw.url}/api/credits/balance`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example.test', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' },
    });
    expect(preflight.status).to.equal(204);
    expect(preflight.headers.get('access-control-allow-origin')).to.equal('https://app.example.test');
    expect(preflight.headers.get('access-control-allow-credentials')).to.equal('true');
    expect(preflight.headers.get('access-control-allow-headers')).to.include('authorization');
    const other = await fetch(`${gw.url}/api/credits/balance`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    expect(other.headers.get('access-control-allow-origin')).to.equal(null);
    const normal = await fetch(`${gw.url}/api/credits/balance`, {
      headers: { authorization: `Bearer ${gw.auth.token(testActor())}`, origin: 'https://app.example.test' },
    });
    expect(normal.headers.get('access-control-allow-origin')).to.equal('https://app.example.test');
    expect(normal.headers.get('x-content-type-options')).to.equal('nosniff');
    expect(normal.headers.get('x-frame-options')).to.equal('DENY');
  });

  it('serves the dashboard files without a token', async () => {
    const response = await fetch(`${gw.url}/monitoring/`);
    expect(response.status).to.equal(200);
    expect(((await response.json()) as { url: string }).url).to.equal('/monitoring/');
    expect((await fetch(`${gw.url}/monitoring/app.js`)).status).to.equal(200);
  });

  it('aggregates /health over every service and Redis', async () => {
    const response = await fetch(`${gw.url}/health`);
    const body = (await response.json()) as { status: string; parts: Record<string, string> };
    expect(body.parts).to.deep.equal({ gateway: 'ready', redis: 'ready', echo: 'ready', down: 'unreachable' });
    expect(response.status).to.equal(503);
  });

  it('merges the services OpenAPI documents and names unreachable ones', async () => {
    upstream.handle('/openapi.json', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          openapi: '3.1.0',
          paths: { '/api/credits/balance': { get: { summary: 'balance' } }, '/internal/usage/record': { post: {} } },
          components: { schemas: { Balance: { type: 'object' } } },
        }),
      );
    });
    const response = await fetch(`${gw.url}/api/docs`);
    const doc = (await response.json()) as { paths: Record<string, unknown>; components: { schemas: Record<string, unknown> }; info: { description: string } };
    expect(doc.paths).to.have.property('/api/credits/balance');
    expect(doc.paths).to.have.property('/health');
    expect(doc.paths).not.to.have.property('/internal/usage/record');
    expect(doc.components.schemas).to.have.property('Balance');
    expect(doc.info.description).to.include('down');
  });

  it('exposes Prometheus metrics by route and status', async () => {
    const text = await (await fetch(`${gw.gateway.opsUrl}/metrics`)).text();
    expect(text).to.match(/gateway_requests_total\{route="api",method="GET",status="200"\} \d+/);
    expect(text).to.include('gateway_request_duration_seconds_bucket');
    // per instance: the down endpoint's host:port
    expect(text).to.match(/gateway_upstream_errors_total\{service="down",kind="connect",instance="127\.0\.0\.1:\d+"\} \d+/);
    expect(text).to.include('gateway_rate_limit_decisions_total');
  });
});
