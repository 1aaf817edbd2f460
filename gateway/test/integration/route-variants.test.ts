import { connect } from 'node:net';
import { testActor } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { rawRequest, runPrefix, startGateway, startUpstream, type TestGateway, type Upstream, waitFor } from '../support/harness.ts';

/** Sends one request with the target bytes exactly as written (even `#`) on a fresh socket; returns the status. */
function rawTarget(base: string, method: string, target: string, headers: Record<string, string>, body = ''): Promise<{ status: number; text: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => {
      const lines = [`${method} ${target} HTTP/1.1`, `Host: ${url.host}`, 'Connection: close', `Content-Length: ${Buffer.byteLength(body)}`];
      for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
      // no half-close: a client that sends FIN has left, and the gateway drops its request
      socket.write(`${lines.join('\r\n')}\r\n\r\n${body}`);
    });
    let text = '';
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
    });
    socket.on('end', () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text }));
    socket.on('error', reject);
  });
}

/**
 * Spellings of a canonical path that a looser router could take for it; the gateway must refuse every one.
 * `literal` is the fixed segment whose case is varied (ids may hold capitals: they are not variants).
 */
function refusedVariants(canonical: string, literal: string): string[] {
  const swap = (word: string) => canonical.replace(`/${literal}`, `/${word}`);
  return [
    swap(literal.toUpperCase()),
    swap(`${literal.charAt(0).toUpperCase()}${literal.slice(1)}`),
    canonical.replace('/api/', '/API/'),
    `${canonical};jsessionid=1`,
    swap(`${literal};x=1`),
    `${canonical}%23`,
    `${canonical}%23x`,
    `${canonical}%3B`,
    `${canonical}%3bx=1`,
    `${canonical}#`,
    `${canonical}#frag`,
  ];
}

/** Every rate-limited or capped route of the shipped config, with a request the test upstream answers at once. */
const LIMITED_ROUTES: Array<{ method: string; path: string; literal: string }> = [
  { method: 'POST', path: '/api/auth/login', literal: 'login' },
  { method: 'POST', path: '/api/auth/signup', literal: 'signup' },
  { method: 'POST', path: '/api/auth/forgot-password', literal: 'forgot-password' },
  { method: 'POST', path: '/api/chat/sessions/x/stream', literal: 'stream' },
  { method: 'POST', path: '/api/chat/sessions/x/messages', literal: 'messages' },
  { method: 'POST', path: '/api/v1/chat/predict', literal: 'predict' },
  { method: 'POST', path: '/api/v1/chat/predict', literal: 'v1' },
  { method: 'GET', path: '/api/chat/events', literal: 'events' },
  { method: 'GET', path: '/api/chat/files/f1', literal: 'files' },
  { method: 'GET', path: '/api/observe/s1/c1/stream', literal: 'observe' },
  { method: 'GET', path: '/api/observe/s1/c1/stream', literal: 'stream' },
];

/**
 * DESIGN 7: the gateway and the services route by one rule (case-sensitive, strict, no `#`, `;` or encoded
 * separators). Every variant of a limited route is refused before any service sees it, or is limited exactly
 * like the canonical path (a trailing slash or an encoded letter matches the canonical route; the service,
 * strict, then answers 404 for the slash).
 */
describe('gateway: case and separator variants of limited routes', () => {
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

  it('refuses every case, `;`, `#`, %23 and %3B variant of every limited route, with or without a token, and none reaches a service', async () => {
    const token = gw.auth.token(testActor('admin'));
    const before = upstream.seen.length;
    for (const route of LIMITED_ROUTES) {
      for (const target of refusedVariants(route.path, route.literal)) {
        for (const headers of [{ authorization: `Bearer ${token}`, 'content-type': 'application/json' }, { 'content-type': 'application/json' }] as Array<
          Record<string, string>
        >) {
          const answer = await rawTarget(gw.url, route.method, target, headers, route.method === 'POST' ? '{"email":"a@example.test"}' : '');
          expect(answer.status, `${route.method} ${target}`).to.be.oneOf([400, 404]);
          expect(answer.text, target).to.match(/content-type: application\/problem\+json/i);
        }
      }
    }
    const leaked = upstream.seen.slice(before).map((s) => `${s.method} ${s.url}`);
    expect(leaked, leaked.join('\n')).to.deep.equal([]);
  });

  it('8 wrong-password logins on /api/auth/LOGIN with a token never reach auth, and spend nothing of the login limit', async () => {
    const token = gw.auth.token(testActor());
    const before = upstream.seen.length;
    const body = JSON.stringify({ email: 'victim@example.test', password: 'wrong password!' });
    for (let i = 0; i < 8; i++) {
      const answer = await rawTarget(gw.url, 'POST', '/api/auth/LOGIN', { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body);
      expect(answer.status).to.equal(404);
    }
    expect(upstream.seen.slice(before)).to.have.length(0);
    // the canonical login still has its whole allowance (5 a minute per IP and identifier)
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await rawTarget(gw.url, 'POST', '/api/auth/login', { 'content-type': 'application/json' }, body)).status);
    expect(statuses).to.deep.equal([200, 200, 200, 200, 200, 429]);
  });

  it('limits a trailing-slash or encoded-letter spelling of login in the same bucket as the canonical path', async () => {
    const body = JSON.stringify({ email: 'slash@example.test', password: 'x' });
    const json = { 'content-type': 'application/json' };
    const statuses: number[] = [];
    for (const target of [
      '/api/auth/login',
      '/api/auth/login/',
      '/api/auth/log%69n',
      '/api/auth/login/',
      '/api/auth/login',
      '/api/auth/login/',
      '/api/auth/login',
    ]) {
      statuses.push((await rawTarget(gw.url, 'POST', target, json, body)).status);
    }
    expect(statuses).to.deep.equal([200, 200, 200, 200, 200, 429, 429]);
  });

  it('counts a trailing-slash stream against streams-at-once like the canonical one; /STREAM and /Messages get no stream at all', async () => {
    const actor = testActor();
    const token = gw.auth.token(actor);
    const open: Array<import('node:http').ServerResponse> = [];
    upstream.handle('/api/chat/sessions/held/stream', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' }).write(': ready\n\n');
      open.push(res);
    });
    const clients = [0, 1].map(() => {
      const controller = new AbortController();
      const pending = fetch(`${gw.url}/api/chat/sessions/held/stream`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
        signal: controller.signal,
      });
      return { controller, pending };
    });
    for (const client of clients) expect((await client.pending).status).to.equal(200);
    await waitFor(() => open.length === 2, 'two streams at the upstream');
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    for (const target of ['/api/chat/sessions/held/stream/', '/api/chat/sessions/held/messages/', '/api/v1/chat/predict/']) {
      const answer = await rawTarget(gw.url, 'POST', target, auth, '{}');
      expect(answer.status, target).to.equal(429);
      expect(answer.text, target).to.include('streams-at-once');
    }
    for (const target of ['/api/chat/sessions/held/STREAM', '/api/chat/sessions/held/Messages', '/api/v1/chat/PREDICT', '/api/V1/chat/predict']) {
      expect((await rawTarget(gw.url, 'POST', target, auth, '{}')).status, target).to.equal(404);
    }
    for (const client of clients) client.controller.abort();
    for (const res of open) res.destroy();
  });

  it('still routes ordinary paths whose ids or queries hold capitals', async () => {
    const token = gw.auth.token(testActor());
    const answer = await rawRequest(gw.url, '/api/chat/sessions/AbC123?Sort=DESC', { headers: { authorization: `Bearer ${token}` } });
    expect(answer.status).to.equal(200);
    expect(JSON.parse(answer.body).url).to.equal('/api/chat/sessions/AbC123?Sort=DESC');
    const file = await rawRequest(gw.url, '/api/chat/files/QUOTA', { headers: { authorization: `Bearer ${token}` } });
    expect(file.status).to.equal(200); // a file id, not the quota route: the service decides
  });
});
