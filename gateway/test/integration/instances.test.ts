import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { runPrefix, startGateway, type TestGateway, waitFor } from '../support/harness.ts';
import { yamlHead } from '../support/test-config.ts';

/** One instance of a service: our own HTTP server that says who it is, counts what reached it, and can be told to fail. */
class Instance {
  readonly name: string;
  port = 0;
  server?: Server;
  seen: string[] = [];
  ready = true;

  constructor(name: string) {
    this.name = name;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      if (req.url === '/ready') {
        res.writeHead(this.ready ? 200 : 503, { 'content-type': 'application/json' }).end('{}');
        return;
      }
      this.seen.push(`${req.method} ${req.url}`);
      req.resume();
      req.on('end', () => {
        // the connection breaks before any answer: the request may or may not have been acted on
        if (req.url?.includes('/reset-')) return req.socket.destroy();
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ instance: this.name }));
      });
    });
    const server = this.server;
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as AddressInfo).port;
    return this;
  }

  /** gone: connections to its port are refused from now on */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

function yaml(prefix: string, urls: string[], healthCheckIntervalMs = 150): string {
  return `${yamlHead(prefix)}
apiEndpoints:
  health: { paths: /health }
  open: { paths: /api/open/* }
  held: { paths: /api/held/* }
serviceEndpoints:
  twin:
    urls: [${urls.join(', ')}]
    healthCheckIntervalMs: ${healthCheckIntervalMs}
    headersTimeoutMs: 2000
policies: [proxy, health]
pipelines:
  health:
    apiEndpoints: [health]
    policies: [{ health: [{ action: { cacheMs: 0 } }] }]
  open:
    apiEndpoints: [open]
    policies: [{ proxy: [{ action: { serviceEndpoint: twin } }] }]
  held:
    apiEndpoints: [held]
    policies: [{ proxy: [{ action: { serviceEndpoint: twin, pool: long-lived } }] }]
`;
}

interface Health {
  status: string;
  parts: Record<string, string>;
  instances: Record<string, Array<{ url: string; state: string; ejected: boolean }>>;
}

describe('gateway: several instances of a service', () => {
  let a: Instance;
  let b: Instance;
  let gw: TestGateway;

  const who = async (path = '/api/open/x', init?: RequestInit) => {
    const response = await fetch(`${gw.url}${path}`, init);
    return { status: response.status, instance: response.status === 200 ? ((await response.json()) as { instance: string }).instance : await response.text() };
  };
  const health = async () => (await (await fetch(`${gw.url}/health`)).json()) as Health;

  beforeEach(async () => {
    a = await new Instance('a').start();
    b = await new Instance('b').start();
    gw = await startGateway({ upstreamUrl: a.url, yaml: yaml(runPrefix(), [a.url, b.url]) });
  });
  afterEach(async () => {
    await gw?.stop();
    await a?.stop();
    await b?.stop();
  });

  it('balances requests over every instance', async () => {
    const answers = await Promise.all(Array.from({ length: 40 }, () => who()));
    expect(answers.every((x) => x.status === 200)).to.equal(true);
    const counts = { a: answers.filter((x) => x.instance === 'a').length, b: answers.filter((x) => x.instance === 'b').length };
    expect(counts.a + counts.b).to.equal(40);
    expect(counts.a, JSON.stringify(counts)).to.be.at.least(10);
    expect(counts.b, JSON.stringify(counts)).to.be.at.least(10);
  });

  it('loses no GET when an instance goes away (retried on the other), ejects it, reports it in /health and takes it back after a back-off', async () => {
    // no periodic health checks: only the refused connections tell the gateway
    await gw.stop();
    gw = await startGateway({ upstreamUrl: a.url, yaml: yaml(runPrefix(), [a.url, b.url], 0) });
    await Promise.all(Array.from({ length: 10 }, () => who())); // kept-alive sockets to both
    await a.stop();
    const during = await Promise.all(Array.from({ length: 30 }, () => who()));
    expect(during.map((x) => x.status)).to.deep.equal(Array(30).fill(200));
    expect(during.every((x) => x.instance === 'b')).to.equal(true);
    // a POST with a buffered body is retried too: a refused connection sent nothing
    const posted = await who('/api/open/post', { method: 'POST', body: '{"n":1}', headers: { 'content-type': 'application/json' } });
    expect(posted).to.deep.equal({ status: 200, instance: 'b' });

    const down = await health();
    expect(down.parts.twin).to.equal('ready'); // one instance still serves
    expect(down.instances.twin).to.deep.equal([
      { url: a.url, state: 'unreachable', ejected: true, outstanding: 0 },
      { url: b.url, state: 'ready', ejected: false, outstanding: 0 },
    ]);

    await a.start(); // back on the same port: tried again once its back-off (1 s, then doubling) is over
    await waitFor(async () => (await who()).instance === 'a', 'instance a takes requests again', 10_000, 100);
    const back = await health();
    expect(back.instances.twin?.map((i) => [i.state, i.ejected])).to.deep.equal([
      ['ready', false],
      ['ready', false],
    ]);
  });

  it('ejects an instance whose health check fails, even though it accepts connections, until it passes again', async () => {
    a.ready = false;
    await waitFor(async () => (await health()).instances.twin?.[0]?.ejected === true, 'a ejected', 5_000, 50);
    a.seen = [];
    const answers = await Promise.all(Array.from({ length: 20 }, () => who()));
    expect(answers.every((x) => x.status === 200 && x.instance === 'b')).to.equal(true);
    expect(a.seen).to.deep.equal([]);
    a.ready = true;
    await waitFor(async () => (await who()).instance === 'a', 'a back after a passing check', 5_000, 50);
  });

  it('retries a GET once on the other instance when the connection breaks, never a POST whose body was sent, never a stream', async () => {
    const get = await who('/api/open/reset-get');
    expect(get.status).to.equal(502);
    // both broke: the GET went to each instance exactly once (one retry, on the other one)
    expect([a.seen.length, b.seen.length]).to.deep.equal([1, 1]);

    a.seen = [];
    b.seen = [];
    const post = await who('/api/open/reset-post', { method: 'POST', body: '{"n":1}', headers: { 'content-type': 'application/json' } });
    expect(post.status).to.equal(502);
    expect(a.seen.length + b.seen.length).to.equal(1);

    a.seen = [];
    b.seen = [];
    const stream = await who('/api/held/reset-stream');
    expect(stream.status).to.equal(502);
    expect(a.seen.length + b.seen.length).to.equal(1);
  });

  it('answers 503 when every instance is gone', async () => {
    await a.stop();
    await b.stop();
    const answer = await who();
    expect(answer.status).to.equal(503);
    const body = await health();
    expect(body.parts.twin).to.equal('unreachable');
    expect(body.status).to.equal('degraded');
  });
});
