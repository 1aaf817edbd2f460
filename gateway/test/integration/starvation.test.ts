import { type IncomingMessage, request, type ServerResponse } from 'node:http';
import { testActor } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { runPrefix, startGateway, startUpstream, type TestGateway, type Upstream, waitFor } from '../support/harness.ts';

/** One client request on its own connection, left open after its response headers (a stream, or a download nobody reads). */
interface Held {
  status: number;
  headers: IncomingMessage['headers'];
  /** the problem body of a refusal (read whole); empty for held answers */
  body: string;
  close(): void;
}

function hold(base: string, method: string, path: string, token: string): Promise<Held> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, method, path, agent: false, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } },
      (res) => {
        const close = () => req.destroy();
        if (res.statusCode === 200) {
          res.pause(); // a slow reader: the answer stays in flight
          resolve({ status: 200, headers: res.headers, body: '', close });
          return;
        }
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), close }));
      },
    );
    req.on('error', reject);
    req.end(method === 'POST' ? '{"message":"hi"}' : undefined);
  });
}

/** One ordinary call and how long it took, on its own connection. */
async function timedCall(base: string, path: string, token: string): Promise<{ status: number; ms: number }> {
  const started = performance.now();
  // bounded: a starved call would wait for chat's 120 s header deadline
  const response = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}`, connection: 'close' }, signal: AbortSignal.timeout(15_000) });
  await response.arrayBuffer();
  return { status: response.status, ms: performance.now() - started };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;

async function ordinaryLatency(base: string, token: string): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < 7; i++) {
    const call = await timedCall(base, '/api/chat/sessions', token);
    expect(call.status).to.equal(200);
    times.push(call.ms);
  }
  return median(times);
}

function expectRateLimited(held: Held): void {
  expect(held.status).to.equal(429);
  expect(held.headers['content-type']).to.match(/^application\/problem\+json/);
  expect(Number(held.headers['retry-after'])).to.be.at.least(1);
  expect(JSON.parse(held.body).code).to.equal('RATE_LIMITED');
}

/**
 * DESIGN 10: long-lived answers use upstream connections of their own and count against per-user caps. The
 * shipped config with the chat service's ordinary pool shrunk to 2 sockets: a user who holds more long-lived
 * answers than that pool has sockets must not slow other users' ordinary calls, and is refused beyond the cap.
 */
describe('gateway: long-lived answers cannot starve ordinary requests', () => {
  let upstream: Upstream;
  let gw: TestGateway;
  const open: Array<ServerResponse> = [];
  const held: Held[] = [];
  const prefix = runPrefix();
  /** leases a concurrency rule holds for a user, as Redis has them */
  const leases = (rule: string, userId: string) => gw.gateway.stores.redis.zcard(`${prefix}${rule}:u:${userId}`);

  before(async () => {
    upstream = await startUpstream();
    const keepOpen = (type: string) => (_req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(200, { 'content-type': type });
      res.write(type === 'text/event-stream' ? ': ready\n\n' : Buffer.alloc(4 * 1024 * 1024, 1)); // more than the socket buffers hold
      open.push(res);
    };
    upstream.handle('/api/chat/events', keepOpen('text/event-stream'));
    upstream.handle('/api/chat/files/f1', keepOpen('application/octet-stream'));
    upstream.handle('/api/observe/s1/c1/stream', keepOpen('text/event-stream'));
    upstream.handle('/api/chat/sessions/c1/stream', keepOpen('text/event-stream'));
    // a non-streaming completion answers only when the model is done: no headers meanwhile
    upstream.handle('/api/chat/sessions/c1/messages', (_req, res) => open.push(res));
    upstream.handle('/api/v1/chat/predict', (_req, res) => open.push(res));
    gw = await startGateway({
      upstreamUrl: upstream.url,
      env: { RATE_LIMIT_PREFIX: prefix, GATEWAY_CHAT_CONNECTIONS: '2', RATE_LIMIT_STREAM_STARTS_PER_MINUTE: '5' },
    });
  });
  afterEach(() => {
    for (const h of held.splice(0)) h.close();
    for (const res of open.splice(0)) res.destroy();
  });
  after(async () => {
    await gw?.stop();
    await upstream?.close();
  });

  it('caps one user at 4 event streams (429 beyond), while another user is served as fast as before', async () => {
    const greedy = testActor();
    const other = gw.auth.token(testActor());
    const baseline = await ordinaryLatency(gw.url, other);
    const attempts = await Promise.all(Array.from({ length: 10 }, () => hold(gw.url, 'GET', '/api/chat/events', gw.auth.token(greedy))));
    held.push(...attempts);
    const served = attempts.filter((a) => a.status === 200);
    expect(served).to.have.length(4);
    for (const refused of attempts.filter((a) => a.status !== 200)) expectRateLimited(refused);
    await waitFor(() => open.length === 4, 'the 4 streams at the upstream');
    // 4 streams held open: more than the 2 sockets of the ordinary pool
    const during = await ordinaryLatency(gw.url, other);
    expect(during, `ordinary call ${during.toFixed(1)} ms with the streams open vs ${baseline.toFixed(1)} ms before`).to.be.below(
      Math.max(10 * baseline, baseline + 250),
    );
  });

  it('caps slow downloads and observe relays per user the same way; the quota route stays ordinary', async () => {
    const greedy = testActor('supervisor');
    const token = gw.auth.token(greedy);
    const other = gw.auth.token(testActor());
    const baseline = await ordinaryLatency(gw.url, other);
    const downloads = await Promise.all(Array.from({ length: 6 }, () => hold(gw.url, 'GET', '/api/chat/files/f1', token)));
    const relays = await Promise.all(Array.from({ length: 6 }, () => hold(gw.url, 'GET', '/api/observe/s1/c1/stream', token)));
    held.push(...downloads, ...relays);
    expect(downloads.filter((a) => a.status === 200)).to.have.length(4);
    expect(relays.filter((a) => a.status === 200)).to.have.length(4);
    for (const refused of [...downloads, ...relays].filter((a) => a.status !== 200)) expectRateLimited(refused);
    await waitFor(() => open.length === 8, 'the 8 answers at the upstream');
    // the quota is an ordinary call of the same user: not a download, never refused by the download cap
    const quota = await timedCall(gw.url, '/api/chat/files/quota', token);
    expect(quota.status).to.equal(200);
    const during = await ordinaryLatency(gw.url, other);
    expect(during, `ordinary call ${during.toFixed(1)} ms with 8 slow answers open vs ${baseline.toFixed(1)} ms before`).to.be.below(
      Math.max(10 * baseline, baseline + 250),
    );
    // the caps are per user: another user still gets a download
    const otherDownload = await hold(gw.url, 'GET', '/api/chat/files/f1', other);
    held.push(otherDownload);
    expect(otherDownload.status).to.equal(200);
  });

  it('counts non-streaming completions and predict against the stream caps (2 at once, 5 starts a minute)', async () => {
    const actor = testActor();
    const token = gw.auth.token(actor);
    const stream = await hold(gw.url, 'POST', '/api/chat/sessions/c1/stream', token);
    expect(stream.status).to.equal(200);
    // the completion has no response headers while the model runs: do not wait for them
    const completion = hold(gw.url, 'POST', '/api/chat/sessions/c1/messages', token);
    await waitFor(() => open.length === 2, 'the completion at the upstream');
    const predict = await hold(gw.url, 'POST', '/api/v1/chat/predict', token);
    expectRateLimited(predict);
    expect(predict.body).to.include('streams-at-once');
    const another = await hold(gw.url, 'POST', '/api/chat/sessions/c1/messages', token);
    expectRateLimited(another);
    // the completion ends: its lease goes back, predict runs
    (open[1] as ServerResponse).writeHead(200, { 'content-type': 'application/json' }).end('{"content":"done"}');
    expect((await completion).status).to.equal(200);
    stream.close();
    await waitFor(async () => (await leases('streams-at-once', actor.userId)) === 0, 'both stream leases released');
    const third = hold(gw.url, 'POST', '/api/v1/chat/predict', token);
    await waitFor(() => open.length === 3, 'predict at the upstream');
    (open[2] as ServerResponse).writeHead(200, { 'content-type': 'application/json' }).end('{"text":"done"}');
    expect((await third).status).to.equal(200);
    // starts so far: stream, messages, predict (refusals spend nothing); two more, then the window is full
    const fourth = hold(gw.url, 'POST', '/api/v1/chat/predict', token);
    await waitFor(() => open.length === 4, 'the fourth start at the upstream');
    (open[3] as ServerResponse).writeHead(200, { 'content-type': 'application/json' }).end('{"text":"done"}');
    expect((await fourth).status).to.equal(200);
    const fifth = hold(gw.url, 'POST', '/api/chat/sessions/c1/messages', token);
    await waitFor(() => open.length === 5, 'the fifth start at the upstream');
    (open[4] as ServerResponse).writeHead(200, { 'content-type': 'application/json' }).end('{"content":"done"}');
    expect((await fifth).status).to.equal(200);
    const sixth = await hold(gw.url, 'POST', '/api/chat/sessions/c1/stream', token);
    expectRateLimited(sixth);
    expect(sixth.body).to.include('stream-starts');
  });
});
