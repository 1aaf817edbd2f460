import { request } from 'node:http';
import { expect } from 'chai';
import { z } from 'zod';
import { ApiRouter, type RunningServer } from '../../src/express/index.ts';
import { createTestAuth, testActor } from '../../src/testing/index.ts';
import { listenServiceApp } from '../support/service-app.ts';

/** Sends the target exactly as written (fetch would normalise it). */
function send(base: string, method: string, target: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number; body: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method, path: target, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** DESIGN 7: every service routes case-sensitively and strictly, like the gateway. */
describe('shared express kit: one routing rule (case-sensitive, strict)', () => {
  const auth = createTestAuth();
  const hits: string[] = [];
  let server: RunningServer;

  before(async () => {
    const router = new ApiRouter()
      .route({ method: 'post', path: '/api/auth/login', summary: 'login', access: 'public', body: z.object({}).passthrough() }, ({ req }) => {
        hits.push(req.originalUrl);
        return { ok: true };
      })
      .route({ method: 'post', path: '/api/chat/sessions/:id/stream', summary: 'stream', access: 'user' }, ({ req }) => {
        hits.push(req.originalUrl);
        return { ok: true };
      });
    server = await listenServiceApp('auth', auth, [router]);
  });
  after(async () => {
    await server.close();
  });

  it('answers the canonical spelling only: other case and a trailing slash are 404 and reach no handler', async () => {
    const json = { 'content-type': 'application/json' };
    expect((await send(server.url, 'POST', '/api/auth/login', json, '{}')).status).to.equal(200);
    for (const target of ['/api/auth/LOGIN', '/api/auth/Login', '/API/auth/login', '/api/auth/login/']) {
      const answer = await send(server.url, 'POST', target, json, '{}');
      expect(answer.status, target).to.equal(404);
      expect(JSON.parse(answer.body).code, target).to.equal('NOT_FOUND');
    }
    // signed as the gateway would sign each request (DESIGN 3: bound to method, path and service)
    const user = (path: string) => ({ ...auth.identityHeaders(testActor('enduser'), undefined, { method: 'POST', path, service: 'auth' }), ...json });
    expect((await send(server.url, 'POST', '/api/chat/sessions/x/stream', user('/api/chat/sessions/x/stream'), '{}')).status).to.equal(200);
    for (const target of ['/api/chat/sessions/x/STREAM', '/api/chat/sessions/x/Stream', '/api/chat/sessions/x/stream/']) {
      expect((await send(server.url, 'POST', target, user(target), '{}')).status, target).to.equal(404);
    }
    expect(hits).to.deep.equal(['/api/auth/login', '/api/chat/sessions/x/stream']);
  });

  it('applies the rule to the built-in routes too', async () => {
    expect((await send(server.url, 'GET', '/health')).status).to.equal(200);
    for (const target of ['/HEALTH', '/health/', '/Ready', '/ready/', '/OpenAPI.json'])
      expect((await send(server.url, 'GET', target)).status, target).to.equal(404);
  });
});
