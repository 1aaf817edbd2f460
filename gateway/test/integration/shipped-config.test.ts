import { expectProblem, testActor } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { runPrefix, startGateway, startUpstream, type TestGateway, type Upstream } from '../support/harness.ts';

/** The routing file we ship (gateway/config/gateway.config.yml), with every service pointed at an echo upstream. */
describe('gateway: shipped config', () => {
  let upstream: Upstream;
  let gw: TestGateway;

  before(async () => {
    upstream = await startUpstream();
    gw = await startGateway({ upstreamUrl: upstream.url, env: { RATE_LIMIT_PREFIX: runPrefix() } });
  });
  after(async () => {
    await gw?.stop();
    await upstream?.close();
  });

  const post = (path: string, headers: Record<string, string> = {}) =>
    fetch(`${gw.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{"email":"a@example.test"}' });

  it('lets the public auth routes, health, docs, the dashboard and the web app files through without a token', async () => {
    for (const path of [
      '/api/auth/signup',
      '/api/auth/register',
      '/api/auth/login',
      '/api/auth/refresh',
      '/api/auth/verify-email',
      '/api/auth/resend-verification',
      '/api/auth/forgot-password',
      '/api/auth/reset-password',
    ]) {
      const response = await post(path);
      expect(response.status, path).to.equal(200);
      expect(response.headers.get('ratelimit-limit'), path).to.be.a('string');
      await response.arrayBuffer();
    }
    for (const path of ['/health', '/api/docs', '/monitoring/', '/monitoring/assets/app.js', '/app', '/app/', '/app/chat/s1', '/app/assets/app.js']) {
      const response = await fetch(`${gw.url}${path}`);
      expect(response.status, path).to.equal(200);
      await response.arrayBuffer();
    }
  });

  it('serves /metrics on the private ops listener only: the public port answers 404', async () => {
    await expectProblem(await fetch(`${gw.url}/metrics`), 404, 'NOT_FOUND');
    const token = gw.auth.token(testActor('admin'));
    await expectProblem(await fetch(`${gw.url}/metrics`, { headers: { authorization: `Bearer ${token}` } }), 404, 'NOT_FOUND');
    expect(new URL(gw.gateway.opsUrl).hostname).to.equal('127.0.0.1');
    expect(gw.gateway.opsUrl).not.to.equal(gw.url);
    const ops = await fetch(`${gw.gateway.opsUrl}/metrics`);
    expect(ops.status).to.equal(200);
    expect(ops.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/);
    const text = await ops.text();
    expect(text).to.match(/^# HELP gateway_/m);
    expect(text).to.match(/gateway_requests_total\{route="health",method="GET",status="200"\} [1-9]/);
    await expectProblem(await fetch(`${gw.gateway.opsUrl}/api/auth/login`), 404, 'NOT_FOUND');
  });

  it('requires a token everywhere else, and forwards each prefix with the signed identity', async () => {
    const token = gw.auth.token(testActor('admin'));
    for (const path of [
      '/api/auth/me',
      '/api/admin/users',
      '/api/profile',
      '/api/credits/balance',
      '/api/usage/stats',
      '/api/models/prices',
      '/api/streaming-sessions/active/u1',
      '/api/chat/sessions',
      '/api/sessions/s1/feedback',
      '/api/v1/chat/predict',
      '/api/supervised-students',
      '/api/monitoring/relationships',
      '/api/observe/u1/s1/stream',
    ]) {
      await expectProblem(await fetch(`${gw.url}${path}`), 401, 'UNAUTHENTICATED');
      const response = await fetch(`${gw.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
      expect(response.status, path).to.equal(200);
      const body = (await response.json()) as { url: string; headers: Record<string, string> };
      expect(body.url).to.equal(path);
      expect(body.headers['x-user-role']).to.equal('admin');
    }
    await expectProblem(await post('/api/auth/logout'), 401, 'UNAUTHENTICATED');
    await expectProblem(await post('/api/chat/sessions/s1/stream'), 401, 'UNAUTHENTICATED');
    await expectProblem(await fetch(`${gw.url}/monitoring/`, { method: 'POST' }), 404, 'NOT_FOUND');
    await expectProblem(await fetch(`${gw.url}/app/`, { method: 'POST' }), 404, 'NOT_FOUND');
  });

  it('limits logins per IP and identifier (5 a minute)', async () => {
    const login = () => fetch(`${gw.url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"username":"target"}' });
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const response = await login();
      statuses.push(response.status);
      await response.arrayBuffer();
    }
    expect(statuses).to.deep.equal([200, 200, 200, 200, 200, 429]);
  });

  it('never routes /internal', async () => {
    const token = gw.auth.token(testActor('admin'));
    await expectProblem(await fetch(`${gw.url}/internal/users`, { headers: { authorization: `Bearer ${token}` } }), 404, 'NOT_FOUND');
    expect(upstream.seen.filter((s) => s.url.includes('internal'))).to.have.length(0);
  });
});
