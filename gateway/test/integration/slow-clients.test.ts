import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { testActor } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { runPrefix, startGateway, startUpstream, type TestGateway, type Upstream, waitFor } from '../support/harness.ts';
import { closed, openSocket, parseResponses, rawExchange } from '../support/raw-http.ts';
import { testYaml } from '../support/test-config.ts';

/**
 * DESIGN section 10, slow clients, on raw sockets against the real gateway: deadlines small enough for a
 * test, bounds in the assertions tied to them (a few times the deadline, never an absolute time).
 */
const DEADLINE_MS = 1_000;
/** node checks head deadlines every quarter of it, and adds 1 s to the keep-alive timeout: allow a few deadlines */
const CLOSED_WITHIN_MS = 6 * DEADLINE_MS;

/** Resolves with how long the socket stayed open, or rejects once `boundMs` passed with the socket still open. */
function closedWithin(socket: Socket, boundMs: number, startedAt: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`still open after ${boundMs} ms`)), boundMs);
    void closed(socket).then(() => {
      clearTimeout(timer);
      resolve(performance.now() - startedAt);
    });
  });
}

function collect(socket: Socket): { text: () => string } {
  let data = '';
  socket.on('data', (chunk: Buffer) => {
    data += chunk.toString('latin1');
  });
  socket.on('error', () => undefined);
  return { text: () => data };
}

describe('gateway: slow clients (deadlines)', () => {
  let upstream: Upstream;
  let gw: TestGateway;
  let port: number;
  const drips: NodeJS.Timeout[] = [];

  before(async () => {
    upstream = await startUpstream();
    gw = await startGateway({
      upstreamUrl: upstream.url,
      yaml: testYaml({
        prefix: runPrefix(),
        // the upstream's header timeout runs from the request's start, upload included: a long one for the trickle
        extraEndpoints: '  trickle: { paths: /api/trickle }',
        extraPipelines: `  trickle:
    apiEndpoints: [trickle]
    policies:
      - proxy: [{ action: { serviceEndpoint: echo, headersTimeoutMs: 60000 } }]
`,
        http: [
          `  headersTimeoutMs: ${DEADLINE_MS}`,
          `  bodyIdleTimeoutMs: ${DEADLINE_MS}`,
          `  keepAliveTimeoutMs: ${DEADLINE_MS}`,
          '  maxConnections: 100',
          '  maxConnectionsPerClient: 50',
        ].join('\n'),
      }),
    });
    port = gw.gateway.port;
  });
  afterEach(() => {
    for (const drip of drips.splice(0)) clearInterval(drip);
  });
  after(async () => {
    await gw?.stop();
    await upstream?.close();
  });

  it('closes a connection that sends its head one byte at a time (slowloris), within the head deadline', async () => {
    const head = 'GET /api/open/slowloris HTTP/1.1\r\nHost: gateway.test\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n';
    const socket = await openSocket(port);
    const received = collect(socket);
    const startedAt = performance.now();
    let sent = 0;
    // one byte every 300 ms: never idle for a whole deadline, so only a deadline on the whole head can stop it
    drips.push(
      setInterval(() => {
        if (!socket.destroyed && sent < head.length) socket.write(head[sent++] as string);
      }, 300),
    );
    const openFor = await closedWithin(socket, CLOSED_WITHIN_MS, startedAt);
    expect(sent, 'the head was still incomplete').to.be.lessThan(head.length);
    expect(openFor).to.be.at.least(DEADLINE_MS * 0.9);
    expect(received.text()).to.match(/^HTTP\/1\.1 408 /);
    expect(upstream.seen.some((s) => s.url.startsWith('/api/open/slowloris'))).to.equal(false);
  });

  it('closes a connection that opens and never sends a byte', async () => {
    const socket = await openSocket(port);
    collect(socket);
    await closedWithin(socket, CLOSED_WITHIN_MS, performance.now());
  });

  it('cuts off a body that stalls, and the service never gets it whole', async () => {
    let upstreamSawEnd = false;
    let upstreamAborted = false;
    upstream.handle('/api/open/stall', (req) => {
      req.on('data', () => undefined);
      req.on('end', () => {
        upstreamSawEnd = true;
      });
      req.on('close', () => {
        if (!req.complete) upstreamAborted = true;
      });
    });
    const socket = await openSocket(port);
    collect(socket);
    const startedAt = performance.now();
    socket.write('POST /api/open/stall HTTP/1.1\r\nHost: gateway.test\r\nContent-Length: 100\r\n\r\n0123456789');
    await closedWithin(socket, CLOSED_WITHIN_MS, startedAt);
    await waitFor(() => upstreamAborted, 'the upstream request to be aborted');
    expect(upstreamSawEnd).to.equal(false);
  });

  it('lets a slow body through that keeps arriving (the limit is on idleness, not total time)', async () => {
    const body = 'abcdefghij'; // 10 bytes, one every 300 ms: ~3 deadlines in total, never one idle
    const socket = await openSocket(port);
    const received = collect(socket);
    socket.write(`POST /api/trickle HTTP/1.1\r\nHost: gateway.test\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
    let sent = 0;
    drips.push(
      setInterval(() => {
        if (!socket.destroyed && sent < body.length) socket.write(body[sent++] as string);
      }, 300),
    );
    await closedWithin(socket, 10 * CLOSED_WITHIN_MS, performance.now());
    const [response] = parseResponses(received.text(), ['POST']);
    expect(response?.status, received.text()).to.equal(200);
    expect(JSON.parse(response?.body ?? '{}').body).to.equal(body);
  });

  it('closes an idle kept-alive connection after the keep-alive timeout', async () => {
    const socket = await openSocket(port);
    const received = collect(socket);
    socket.write('GET /api/open/keepalive HTTP/1.1\r\nHost: gateway.test\r\n\r\n');
    await waitFor(() => parseResponses(received.text(), ['GET']).length === 1, 'the answer');
    expect(parseResponses(received.text(), ['GET'])[0]?.status).to.equal(200);
    await closedWithin(socket, CLOSED_WITHIN_MS, performance.now());
  });

  it('keeps an event stream with heartbeats open past every deadline', async () => {
    let stream: ServerResponse | undefined;
    upstream.handle('/api/chat/events', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write(': connected\n\n');
      stream = res;
    });
    const socket = await openSocket(port);
    const received = collect(socket);
    const startedAt = performance.now();
    socket.write(`GET /api/chat/events HTTP/1.1\r\nHost: gateway.test\r\nAuthorization: Bearer ${gw.auth.token(testActor())}\r\n\r\n`);
    await waitFor(() => stream !== undefined, 'the stream to open');
    let beats = 0;
    drips.push(
      setInterval(() => {
        stream?.write(`: heartbeat ${++beats}\n\n`);
      }, DEADLINE_MS / 3),
    );
    // 12 heartbeats, one every third of a deadline: four deadlines, longer than the keep-alive timeout with node's 1 s extra
    await waitFor(() => received.text().includes(': heartbeat 12\n\n'), 'twelve heartbeats', 20 * DEADLINE_MS, 50);
    expect(performance.now() - startedAt).to.be.greaterThan(3 * DEADLINE_MS);
    expect(socket.destroyed, 'the stream is still open').to.equal(false);
    stream?.end('event: done\ndata: {}\n\n');
    await waitFor(() => received.text().includes('event: done'), 'the terminal event');
    socket.destroy();
  });

  it('keeps a quiet stream answer to a POST with a body open past the body-idle deadline', async () => {
    let stream: ServerResponse | undefined;
    upstream.handle('/api/chat/sessions/quiet-post/stream', (req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('event: session\ndata: {}\n\n');
        stream = res;
      });
    });
    const socket = await openSocket(port);
    const received = collect(socket);
    const body = '{"message":"hello"}';
    socket.write(
      `POST /api/chat/sessions/quiet-post/stream HTTP/1.1\r\nHost: gateway.test\r\nAuthorization: Bearer ${gw.auth.token(testActor())}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    );
    await waitFor(() => stream !== undefined, 'the stream to open');
    const openedAt = performance.now();
    // silent for three body-idle deadlines (the model thinking), then the end
    await waitFor(() => performance.now() - openedAt > 3 * DEADLINE_MS, 'three deadlines to pass', 20_000, 50);
    expect(socket.destroyed, 'the stream is still open').to.equal(false);
    stream?.end('event: done\ndata: {}\n\n');
    await waitFor(() => received.text().includes('event: done'), 'the terminal event');
    socket.destroy();
  });
});

describe('gateway: connection caps', () => {
  let upstream: Upstream;
  let gw: TestGateway;
  let port: number;
  const held: Socket[] = [];

  before(async () => {
    upstream = await startUpstream();
    gw = await startGateway({
      upstreamUrl: upstream.url,
      yaml: testYaml({
        prefix: runPrefix(),
        // long deadlines: held connections must stay open for the test
        http: ['  headersTimeoutMs: 60000', '  keepAliveTimeoutMs: 60000', '  maxConnections: 6', '  maxConnectionsPerClient: 3'].join('\n'),
      }),
    });
    port = gw.gateway.port;
  });
  afterEach(async () => {
    for (const socket of held.splice(0)) socket.destroy();
    await waitFor(() => gw.gateway.openConnections() === 0, 'the held connections to close');
  });
  after(async () => {
    await gw?.stop();
    await upstream?.close();
  });

  const ordinary = 'GET /api/open/served HTTP/1.1\r\nHost: gateway.test\r\nConnection: close\r\n\r\n';

  async function hold(count: number, localAddress: string): Promise<void> {
    const before = gw.gateway.openConnections();
    for (let i = 0; i < count; i++) held.push(await openSocket(port, localAddress));
    await waitFor(() => gw.gateway.openConnections() === before + count, 'the gateway to count the held connections');
  }

  it('refuses connections from one address beyond its cap with 429, while another address is served', async () => {
    await hold(3, '127.0.0.1');
    // three more from the same address, at once: each refused and closed, none of their requests read
    const refusals = await Promise.all(
      [1, 2, 3].map(() => rawExchange(port, ordinary, { methods: ['GET'], expected: Number.POSITIVE_INFINITY, localAddress: '127.0.0.1' })),
    );
    for (const refused of refusals) {
      expect(refused.responses[0]?.status, refused.data).to.equal(429);
      expect(refused.responses[0]?.headers['content-type']).to.equal('application/problem+json');
      expect(refused.responses[0]?.headers.connection).to.equal('close');
      expect(JSON.parse(refused.responses[0]?.body ?? '{}').code).to.equal('RATE_LIMITED');
      expect(refused.closedByServer).to.equal(true);
    }
    expect(upstream.seen.filter((s) => s.url === '/api/open/served')).to.have.length(0);

    const served = await rawExchange(port, ordinary, { methods: ['GET'], expected: 1, localAddress: '127.0.0.2' });
    expect(served.responses[0]?.status, served.data).to.equal(200);
    expect(upstream.seen.filter((s) => s.url === '/api/open/served')).to.have.length(1);

    // one held connection closes: the address is served again
    held.shift()?.destroy();
    await waitFor(() => gw.gateway.openConnections() === 2, 'the closed connection to be counted out');
    const again = await rawExchange(port, ordinary, { methods: ['GET'], expected: 1, localAddress: '127.0.0.1' });
    expect(again.responses[0]?.status, again.data).to.equal(200);
  });

  it('refuses connections beyond the global cap with 503', async () => {
    await hold(3, '127.0.0.2');
    await hold(3, '127.0.0.3');
    const refused = await rawExchange(port, ordinary, { methods: ['GET'], expected: Number.POSITIVE_INFINITY, localAddress: '127.0.0.4' });
    expect(refused.responses[0]?.status, refused.data).to.equal(503);
    expect(JSON.parse(refused.responses[0]?.body ?? '{}').code).to.equal('UPSTREAM_UNAVAILABLE');
    expect(refused.closedByServer).to.equal(true);
    held.shift()?.destroy();
    await waitFor(() => gw.gateway.openConnections() === 5, 'the closed connection to be counted out');
    const served = await rawExchange(port, ordinary, { methods: ['GET'], expected: 1, localAddress: '127.0.0.4' });
    expect(served.responses[0]?.status, served.data).to.equal(200);
  });
});
