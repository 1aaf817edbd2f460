import { writeFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { expect } from 'chai';
import { request } from 'undici';
import { runPrefix, startGateway, startUpstream, type TestGateway, type Upstream, waitFor } from '../support/harness.ts';
import { yamlHead } from '../support/test-config.ts';

/** One service with a single ordinary socket, so a second request has to queue behind the first. */
function yaml(prefix: string, upstreamUrl: string): string {
  return `${yamlHead(prefix)}
apiEndpoints:
  open: { paths: /api/open/* }
  narrow: { paths: /api/narrow/* }
  narrow-slow: { paths: /api/narrow-slow/* }
serviceEndpoints:
  echo:
    url: ${upstreamUrl}
    healthCheckIntervalMs: 0
    headersTimeoutMs: 5000
  narrow:
    url: ${upstreamUrl}
    connections: 1
    healthCheckIntervalMs: 0
    headersTimeoutMs: 600
policies: [proxy]
pipelines:
  open:
    apiEndpoints: [open]
    policies: [{ proxy: [{ action: { serviceEndpoint: echo } }] }]
  narrow:
    apiEndpoints: [narrow]
    policies: [{ proxy: [{ action: { serviceEndpoint: narrow } }] }]
  narrow-slow:
    apiEndpoints: [narrow-slow]
    policies: [{ proxy: [{ action: { serviceEndpoint: narrow, headersTimeoutMs: 10000 } }] }]
`;
}

/**
 * The ordinary pool (undici dispatch, answers written straight into the client response): what node's client
 * did for it before must still hold.
 */
describe('gateway: ordinary requests on the undici pool', () => {
  let upstream: Upstream;
  let gw: TestGateway;

  before(async () => {
    upstream = await startUpstream();
    gw = await startGateway({ upstreamUrl: upstream.url, yaml: yaml(runPrefix(), upstream.url) });
  });
  after(async () => {
    await gw?.stop();
    await upstream?.close();
  });

  it('passes repeated response headers on as node joins them, and drops those named in Connection', async () => {
    upstream.handle('/api/open/headers', (_req, res) => {
      res.writeHead(200, [
        ['content-type', 'text/plain'],
        ['set-cookie', 'a=1; Path=/'],
        ['set-cookie', 'b=2; Path=/'],
        ['x-multi', 'one'],
        ['x-multi', 'two'],
        ['connection', 'keep-alive, x-hop'],
        ['x-hop', 'secret'],
        ['constructor', 'plain header'],
      ]);
      res.end('ok');
    });
    const response = await request(`${gw.url}/api/open/headers`);
    expect(await response.body.text()).to.equal('ok');
    expect(response.statusCode).to.equal(200);
    expect(response.headers['set-cookie']).to.deep.equal(['a=1; Path=/', 'b=2; Path=/']);
    expect(response.headers['x-multi']).to.equal('one, two');
    expect(response.headers['x-hop']).to.equal(undefined);
    expect(response.headers.constructor).to.equal('plain header');
    expect(response.headers['x-content-type-options']).to.equal('nosniff');
  });

  it('holds the service back while the client does not read (backpressure), then delivers every byte', async () => {
    const CHUNK = Buffer.alloc(64 * 1024, 'x');
    const TOTAL_CHUNKS = 1024; // 64 MB: far more than the socket buffers on the way can hold
    let written = 0;
    let waitingForDrain = false;
    let finished = false;
    upstream.handle('/api/open/big', (_req, res: ServerResponse) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(CHUNK.length * TOTAL_CHUNKS) });
      const pump = () => {
        waitingForDrain = false;
        while (written < TOTAL_CHUNKS) {
          written += 1;
          if (!res.write(CHUNK)) {
            waitingForDrain = true;
            res.once('drain', pump);
            return;
          }
        }
        res.end();
        finished = true;
      };
      pump();
    });
    const port = Number(new URL(gw.url).port);
    const socket = connect(port, '127.0.0.1');
    let received = 0;
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
    });
    socket.pause();
    socket.write('GET /api/open/big HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
    await waitFor(() => waitingForDrain, 'the service to wait for its client');
    // a gateway without backpressure would read all 64 MB into memory and let the service finish
    const finishedUnread = await waitFor(() => finished, 'the service to finish', 1_500).then(
      () => true,
      () => false,
    );
    expect(finishedUnread, 'the service finished while nobody read').to.equal(false);
    expect(written, 'chunks the service got rid of while nobody read').to.be.below(TOTAL_CHUNKS / 4);
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.resume();
    await closed;
    expect(finished).to.equal(true);
    expect(received).to.be.above(CHUNK.length * TOTAL_CHUNKS);
  });

  it('answers 504 at the header deadline while queued for a socket, and never sends that request later', async () => {
    const held: ServerResponse[] = [];
    upstream.handle('/api/narrow-slow/hold', (_req, res) => {
      held.push(res);
    });
    // the only socket of the service, held (this route waits 10 s for headers)
    const first = request(`${gw.url}/api/narrow-slow/hold`);
    await waitFor(() => held.length === 1, 'the first request to hold the only socket');
    // this one waits in the pool, and its 600 ms deadline runs while it waits
    const queued = await request(`${gw.url}/api/narrow/queued`);
    expect(queued.statusCode).to.equal(504);
    expect(((await queued.body.json()) as { code: string }).code).to.equal('UPSTREAM_TIMEOUT');
    // the socket comes free: the request answered 504 must not go out on it now
    (held[0] as ServerResponse).writeHead(200).end('first');
    const answered = await first;
    expect(await answered.body.text()).to.equal('first');
    upstream.handle('/api/narrow/after', (_req, res) => res.writeHead(200).end('after'));
    const after = await request(`${gw.url}/api/narrow/after`);
    expect(await after.body.text()).to.equal('after');
    expect(upstream.seen.map((s) => s.url)).to.include('/api/narrow/after');
    expect(upstream.seen.map((s) => s.url)).not.to.include('/api/narrow/queued');
  });

  it('lets a request in flight finish when a reload drops its instance, and sends new ones to the new instance', async () => {
    const held: ServerResponse[] = [];
    upstream.handle('/api/open/reload-held', (_req, res) => {
      held.push(res);
    });
    const inFlight = request(`${gw.url}/api/open/reload-held`);
    await waitFor(() => held.length === 1, 'the request to reach the old instance');
    const next = await startUpstream();
    try {
      const version = gw.gateway.configStatus().version;
      writeFileSync(gw.configFile, yaml(runPrefix(), next.url));
      await waitFor(() => gw.gateway.configStatus().version > version, 'the reload');
      // the old instance's pool closes gracefully: the held answer still arrives whole
      (held[0] as ServerResponse).writeHead(200, { 'content-type': 'text/plain' }).end('old instance');
      const answered = await inFlight;
      expect(answered.statusCode).to.equal(200);
      expect(await answered.body.text()).to.equal('old instance');
      const after = await request(`${gw.url}/api/open/after-reload`);
      expect(after.statusCode).to.equal(200);
      await after.body.arrayBuffer();
      expect(next.seen.map((s) => s.url)).to.deep.equal(['/api/open/after-reload']);
      expect(upstream.seen.map((s) => s.url)).not.to.include('/api/open/after-reload');
    } finally {
      writeFileSync(gw.configFile, yaml(runPrefix(), upstream.url));
      await next.close();
    }
  });
});
