import { Writable } from 'node:stream';
import { expect } from 'chai';
import { z } from 'zod';
import { ApiError } from '../../src/errors.ts';
import { ApiRouter, type RunningServer } from '../../src/express/index.ts';
import { SERVICE_TOKEN_HEADER } from '../../src/headers.ts';
import { createLogger, requestContext } from '../../src/logger.ts';
import { ServiceClient } from '../../src/service-client.ts';
import { createTestAuth, testActor } from '../../src/testing/index.ts';
import { verifyServiceToken } from '../../src/tokens.ts';
import { listenServiceApp } from '../support/service-app.ts';

describe('ServiceClient against a real service app', () => {
  const auth = createTestAuth();
  const seen: Array<{ caller?: string; actor?: string; requestId: string }> = [];
  let server: RunningServer;
  let client: ServiceClient;

  before(async () => {
    const router = new ApiRouter()
      .route(
        { method: 'post', path: '/internal/echo', summary: 'echo', access: 'service', body: z.object({ n: z.number().int() }).strict() },
        ({ req, body, actor }) => {
          seen.push({ caller: req.caller, actor: actor?.userId, requestId: req.requestId });
          return { doubled: body.n * 2 };
        },
      )
      .route({ method: 'get', path: '/internal/refuse', summary: 'refuse', access: 'service' }, () => {
        throw new ApiError('INSUFFICIENT_CREDITS', 'need 3 more');
      });
    server = await listenServiceApp('accounting', auth, [router]);
    client = new ServiceClient({
      caller: 'chat',
      internalKeyring: auth.internalKeyring,
      baseUrls: { accounting: server.url, monitoring: 'http://127.0.0.1:9' },
    });
  });
  after(async () => {
    await client.close();
    await server.close();
  });

  it('sends a service token, the user token and the current request id', async () => {
    const actor = testActor('enduser');
    const response = await requestContext.run({ requestId: 'req-from-context-1' }, () =>
      client.call<{ doubled: number }>('accounting', '/internal/echo', { body: { n: 21 }, userToken: auth.token(actor) }),
    );
    expect(response.body.doubled).to.equal(42);
    expect(seen.at(-1)).to.deep.equal({ caller: 'chat', actor: actor.userId, requestId: 'req-from-context-1' });
  });

  it('rethrows the callee problem with its code', async () => {
    const error = await client.call('accounting', '/internal/refuse').catch((e: unknown) => e);
    expect(error).to.be.instanceOf(ApiError);
    expect((error as ApiError).code).to.equal('INSUFFICIENT_CREDITS');
    expect((error as ApiError).status).to.equal(402);
  });

  it('reports an unreachable service as UPSTREAM_UNAVAILABLE', async () => {
    const error = await client.call('monitoring', '/internal/relationships/check').catch((e: unknown) => e);
    expect((error as ApiError).code).to.equal('UPSTREAM_UNAVAILABLE');
  });

  it('validates service route bodies strictly (unknown fields and wrong types are 400)', async () => {
    for (const body of [{ n: 1, extra: true }, { n: '1' }, { n: { $gt: 0 } }, { n: 1, 'x\u0000': 'y' }]) {
      const error = await client.call('accounting', '/internal/echo', { body }).catch((e: unknown) => e);
      expect((error as ApiError).code).to.equal('VALIDATION_FAILED');
    }
  });
});

describe('ServiceClient: one service token per callee for 20 s', () => {
  const auth = createTestAuth();
  const tokens: string[] = [];
  let server: RunningServer;

  before(async () => {
    const router = new ApiRouter().route({ method: 'get', path: '/internal/token', summary: 'token', access: 'service' }, ({ req }) => {
      tokens.push(String(req.headers[SERVICE_TOKEN_HEADER]));
      return { ok: true };
    });
    server = await listenServiceApp('accounting', auth, [router]);
  });
  after(async () => {
    await server.close();
  });

  it('sends the same token again within the reuse time, then a fresh one; every one is accepted and lives <= 60 s', async () => {
    // the clock starts 25 s in the past, so the first token (iat from this clock) is still valid, with 35 s left
    let now = Date.now() - 25_000;
    const client = new ServiceClient({ caller: 'chat', internalKeyring: auth.internalKeyring, baseUrls: { accounting: server.url }, clock: () => now });
    try {
      await client.call('accounting', '/internal/token');
      now += 19_999;
      await client.call('accounting', '/internal/token');
      now += 1;
      await client.call('accounting', '/internal/token');
      await client.call('accounting', '/internal/token');
    } finally {
      await client.close();
    }
    const claims = tokens.map((token) => verifyServiceToken(auth.internalKeyring, token, 'accounting'));
    expect(tokens[1]).to.equal(tokens[0]);
    expect(tokens[2]).to.not.equal(tokens[1]);
    expect(tokens[3]).to.equal(tokens[2]);
    expect((claims[2]?.iat ?? 0) - (claims[0]?.iat ?? 0)).to.equal(20);
    for (const claim of claims) expect(claim.exp - claim.iat).to.be.at.most(60);
  });

  it('signs one per call with serviceTokenReuseMs 0', async () => {
    let now = Date.now() - 5_000;
    const client = new ServiceClient({
      caller: 'chat',
      internalKeyring: auth.internalKeyring,
      baseUrls: { accounting: server.url },
      serviceTokenReuseMs: 0,
      clock: () => now,
    });
    const before = tokens.length;
    try {
      await client.call('accounting', '/internal/token');
      now += 1_000;
      await client.call('accounting', '/internal/token');
    } finally {
      await client.close();
    }
    expect(tokens[before + 1]).to.not.equal(tokens[before]);
  });
});

describe('logger', () => {
  it('redacts secrets and carries the request id', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const logger = createLogger('test', { level: 'info', destination: sink });
    requestContext.run({ requestId: 'req-log-1' }, () => {
      logger.info(
        { headers: { authorization: 'Bearer abc.def.ghi', cookie: 'refresh_token=zzz' }, body: { password: 'hunter2hunter2', token: 'tok' } },
        'hello',
      );
    });
    const line = lines.join('');
    expect(line).to.include('"requestId":"req-log-1"');
    for (const secret of ['abc.def.ghi', 'refresh_token=zzz', 'hunter2hunter2', '"tok"']) expect(line).not.to.include(secret);
  });
});
