import type { ServerResponse } from 'node:http';
import { testActor } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { rawRequest, runPrefix, startGateway, startUpstream, type TestGateway, type Upstream, waitFor } from '../support/harness.ts';
import { testYaml } from '../support/test-config.ts';

describe('gateway: event streams and client disconnects', () => {
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

  it('delivers SSE events one by one, unbuffered', async () => {
    let stream: ServerResponse | undefined;
    upstream.handle('/api/chat/sessions/sse/stream', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write('event: session\ndata: {"n":0}\n\n');
      stream = res;
    });
    const response = await fetch(`${gw.url}/api/chat/sessions/sse/stream`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gw.auth.token(testActor())}` },
    });
    expect(response.status).to.equal(200);
    expect(response.headers.get('content-type')).to.equal('text/event-stream');
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let buffered = '';
    const nextEvent = async (): Promise<string> => {
      for (;;) {
        const end = buffered.indexOf('\n\n');
        if (end !== -1) {
          const event = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          return event;
        }
        const { value, done } = await reader.read();
        if (done) throw new Error('stream ended early');
        buffered += decoder.decode(value, { stream: true });
      }
    };
    // each event is sent only after the client has received the previous one: buffering would deadlock here
    expect(await nextEvent()).to.equal('event: session\ndata: {"n":0}');
    for (let n = 1; n <= 3; n++) {
      stream?.write(`event: delta\ndata: {"n":${n}}\n\n`);
      expect(await nextEvent()).to.equal(`event: delta\ndata: {"n":${n}}`);
    }
    stream?.end('event: done\ndata: {}\n\n');
    expect(await nextEvent()).to.equal('event: done\ndata: {}');
    expect((await reader.read()).done).to.equal(true);
  });

  it('keeps a quiet event stream open longer than the header timeout (no idle cut-off)', async () => {
    upstream.handle('/api/chat/sessions/quiet/stream', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': opened\n\n');
      // the test config's header timeout is 600 ms: stay silent for longer, then finish
      setTimeout(() => res.end('event: done\ndata: {}\n\n'), 900);
    });
    const response = await fetch(`${gw.url}/api/chat/sessions/quiet/stream`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gw.auth.token(testActor())}` },
    });
    expect(await response.text()).to.equal(': opened\n\nevent: done\ndata: {}\n\n');
  });

  it('aborts the upstream request when the client leaves, and frees the stream slot', async () => {
    let upstreamClosed = false;
    upstream.handle('/api/chat/sessions/leave/stream', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('event: session\ndata: {}\n\n');
      res.on('close', () => {
        upstreamClosed = true;
      });
    });
    const token = gw.auth.token(testActor());
    const controller = new AbortController();
    const response = await fetch(`${gw.url}/api/chat/sessions/leave/stream`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
      signal: controller.signal,
    });
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    controller.abort();
    await waitFor(() => upstreamClosed, 'the upstream to see the disconnect');
    // the concurrency lease (limit 1) was released with the disconnect
    upstream.handle('/api/chat/sessions/next/stream', (_req, res) =>
      res.writeHead(200, { 'content-type': 'text/event-stream' }).end('event: done\ndata: {}\n\n'),
    );
    await waitFor(async () => {
      const next = await fetch(`${gw.url}/api/chat/sessions/next/stream`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
      await next.arrayBuffer();
      return next.status === 200;
    }, 'the slot to be free again');
  });

  it('aborts the upstream request when the client leaves before the headers', async () => {
    let upstreamClosed = false;
    upstream.handle('/api/open/hang', (req) => {
      req.socket.on('close', () => {
        upstreamClosed = true;
      });
    });
    const controller = new AbortController();
    const pending = fetch(`${gw.url}/api/open/hang`, { signal: controller.signal }).catch(() => undefined);
    await waitFor(() => upstream.seen.some((s) => s.url === '/api/open/hang'), 'the request to reach the upstream');
    controller.abort();
    await pending;
    await waitFor(() => upstreamClosed, 'the upstream connection to close');
  });
});

describe('gateway: path handling', () => {
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

  const internalSpellings = [
    '/internal/users',
    '/internal',
    '/internal/',
    '/INTERNAL/users',
    '/Internal/streaming-sessions/finalize',
    '/%69nternal/users',
    '/%49NTERNAL/users',
    '/internal%2fusers',
    '/%2finternal/users',
    '/%2Finternal/users',
    '//internal/users',
    '/./internal/users',
    '/api/../internal/users',
    '/api/auth/../../internal/users',
    '/api/%2e%2e/internal/users',
    '/api/%2E%2E/internal/users',
    '/api/.%2e/internal/users',
    '/api/auth/..%2f..%2finternal/users',
    '/api/auth/%2e%2e%2f%2e%2e%2finternal/users',
    '/api/%252e%252e/internal/users',
    '/api\\..\\internal\\users',
    '/api/auth/%5c..%5cinternal',
    '/internal/./users',
    '/internal//users',
    '/internal/users?x=/api/auth/login',
    '/internal%00/users',
  ];

  it('refuses every spelling of /internal, and none of them reaches a service', async () => {
    const token = gw.auth.token(testActor('admin'));
    for (const target of internalSpellings) {
      const response = await rawRequest(gw.url, target, { headers: { authorization: `Bearer ${token}` } });
      expect([400, 404], target).to.include(response.status);
      expect(response.headers['content-type'], target).to.match(/^application\/problem\+json/);
    }
    const leaked = upstream.seen.filter((s) => s.url.toLowerCase().includes('internal'));
    expect(leaked, JSON.stringify(leaked.map((s) => s.url))).to.have.length(0);
  });

  it('refuses encoded traversal on ordinary routes and accepts plain paths', async () => {
    const token = gw.auth.token(testActor());
    for (const target of [
      '/api/credits/%2e%2e/x',
      '/api/credits//balance',
      '/api/credits/a%2fb',
      '/api/credits\\balance',
      '/api/credits/./balance',
      '/api/credits/%zz',
    ]) {
      const response = await rawRequest(gw.url, target, { headers: { authorization: `Bearer ${token}` } });
      expect(response.status, target).to.equal(400);
    }
    expect((await rawRequest(gw.url, 'http://evil.example/api/credits/balance')).status).to.equal(400);
    const ok = await rawRequest(gw.url, '/api/credits/balance/', { headers: { authorization: `Bearer ${token}` } });
    expect(ok.status).to.equal(200);
    expect(JSON.parse(ok.body).url).to.equal('/api/credits/balance/');
  });
});
