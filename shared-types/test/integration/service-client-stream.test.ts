import { once } from 'node:events';
import { expect } from 'chai';
import { ApiError } from '../../src/errors.ts';
import { ApiRouter, type RunningServer } from '../../src/express/index.ts';
import { requestContext } from '../../src/logger.ts';
import { ServiceClient } from '../../src/service-client.ts';
import { createTestAuth, testActor } from '../../src/testing/index.ts';
import { listenServiceApp } from '../support/service-app.ts';

describe('ServiceClient.stream against a real service app', () => {
  const auth = createTestAuth();
  const seen: Array<{ caller?: string; actor?: string; requestId: string; query: unknown }> = [];
  let closedByClient = 0;
  let server: RunningServer;
  let client: ServiceClient;

  before(async () => {
    const router = new ApiRouter()
      .route({ method: 'get', path: '/internal/events', summary: 'events', access: 'service', produces: 'text/event-stream' }, async ({ req, res, actor }) => {
        seen.push({ caller: req.caller, actor: actor?.userId, requestId: req.requestId, query: req.query });
        res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
        res.write('event: delta\ndata: {"text":"a"}\n\n');
        if (req.query.hold === '1') {
          res.once('close', () => closedByClient++);
          return;
        }
        res.end('event: done\ndata: {}\n\n');
      })
      .route({ method: 'get', path: '/internal/json', summary: 'json', access: 'service' }, () => ({ not: 'a stream' }))
      .route({ method: 'get', path: '/internal/gone', summary: 'gone', access: 'service' }, () => {
        throw new ApiError('NOT_FOUND', 'No such session');
      })
      .route({ method: 'get', path: '/internal/broken', summary: 'broken', access: 'service' }, () => {
        throw new Error('boom');
      });
    server = await listenServiceApp('chat', auth, [router]);
    client = new ServiceClient({
      caller: 'monitoring',
      internalKeyring: auth.internalKeyring,
      baseUrls: { chat: server.url, accounting: 'http://127.0.0.1:9' },
    });
  });
  after(() => Promise.all([client.close(), server.close()]));

  it('streams the answer with the service token, the user token, the query and the current request id', async () => {
    const actor = testActor('supervisor');
    const answer = await requestContext.run({ requestId: 'req-stream-1' }, () =>
      client.stream('chat', '/internal/events', { accept: 'text/event-stream', userToken: auth.token(actor), query: { userId: 'stu-1' } }),
    );
    expect(answer.status).to.equal(200);
    expect(String(answer.headers['content-type'])).to.match(/^text\/event-stream/);
    expect(await answer.body.text()).to.equal('event: delta\ndata: {"text":"a"}\n\nevent: done\ndata: {}\n\n');
    expect(seen.at(-1)).to.deep.equal({ caller: 'monitoring', actor: actor.userId, requestId: 'req-stream-1', query: { userId: 'stu-1' } });
  });

  it('maps refusals as call() does: the callee problem code for a 4xx, UPSTREAM_UNAVAILABLE otherwise', async () => {
    for (const [path, code, status] of [
      ['/internal/gone', 'NOT_FOUND', 404],
      ['/internal/broken', 'UPSTREAM_UNAVAILABLE', 502],
      ['/internal/no-such-route', 'NOT_FOUND', 404],
    ] as const) {
      const viaStream = await client.stream('chat', path, { accept: 'text/event-stream' }).catch((e: unknown) => e);
      const viaCall = await client.call('chat', path).catch((e: unknown) => e);
      expect(viaStream, path).to.be.instanceOf(ApiError).with.property('code', code);
      expect((viaStream as ApiError).status, path).to.equal(status);
      expect([(viaStream as ApiError).code, (viaStream as ApiError).status, (viaStream as ApiError).message]).to.deep.equal([
        (viaCall as ApiError).code,
        (viaCall as ApiError).status,
        (viaCall as ApiError).message,
      ]);
    }
    const unreachable = await client.stream('accounting', '/internal/events', { accept: 'text/event-stream' }).catch((e: unknown) => e);
    expect(unreachable).to.be.instanceOf(ApiError).with.property('code', 'UPSTREAM_UNAVAILABLE');
  });

  it('refuses a 2xx answer of another type than asked for', async () => {
    const error = await client.stream('chat', '/internal/json', { accept: 'text/event-stream' }).catch((e: unknown) => e);
    expect(error).to.be.instanceOf(ApiError).with.property('code', 'UPSTREAM_UNAVAILABLE');
    expect((error as ApiError).status).to.equal(502);
  });

  it('the signal ends the stream at the callee', async () => {
    const controller = new AbortController();
    const answer = await client.stream('chat', '/internal/events', { accept: 'text/event-stream', query: { hold: '1' }, signal: controller.signal });
    const [first] = (await once(answer.body, 'data')) as [Buffer];
    expect(String(first)).to.include('event: delta');
    const before = closedByClient;
    controller.abort();
    const deadline = Date.now() + 10_000;
    while (closedByClient === before && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(closedByClient).to.equal(before + 1);
  });

  it('holds streams on connections of their own: call() answers while streams hold a one-connection pool busy', async () => {
    const narrow = new ServiceClient({ caller: 'monitoring', internalKeyring: auth.internalKeyring, baseUrls: { chat: server.url }, connections: 1 });
    const controller = new AbortController();
    try {
      const held = await Promise.all(
        [1, 2].map(() => narrow.stream('chat', '/internal/events', { accept: 'text/event-stream', query: { hold: '1' }, signal: controller.signal })),
      );
      for (const answer of held) await once(answer.body, 'data');
      const answer = await narrow.call<{ not: string }>('chat', '/internal/json', { timeoutMs: 5_000 });
      expect(answer.body).to.deep.equal({ not: 'a stream' });
    } finally {
      controller.abort();
      await narrow.close();
    }
  });
});
