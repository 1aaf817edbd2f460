import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger, IDENTITY_CLAIM_HEADERS, IDENTITY_HEADERS, type ServiceName } from '@platform/shared-types';
import { createServiceApp } from '@platform/shared-types/express';
import { createTestAuth, expectProblem, testActor } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { request } from 'undici';
import { runPrefix, startGateway, type TestGateway } from '../support/harness.ts';
import { yamlHead } from '../support/test-config.ts';

/** A service built with the shared kit (the real identity middleware): answers who it sees and the identity headers it got. */
async function startService(name: ServiceName, auth: ReturnType<typeof createTestAuth>): Promise<{ url: string; server: Server }> {
  const app = createServiceApp({
    name,
    logger: createLogger(name, { level: 'silent', nodeEnv: 'test' }),
    internalSecret: auth.secrets.INTERNAL_SECRET,
    internalKeyring: auth.internalKeyring,
    accessKeyring: auth.accessKeyring,
    ready: async () => ({}),
    routers: [],
    before: [
      [
        '/api',
        (req, res) => {
          const identity: Record<string, string> = {};
          for (const header of [...IDENTITY_CLAIM_HEADERS, IDENTITY_HEADERS.requestId]) {
            const value = req.headers[header];
            if (typeof value === 'string') identity[header] = value;
          }
          res.json({ service: name, actor: req.actor ?? null, identity });
        },
      ],
    ],
  });
  const server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

const yaml = (prefix: string, urls: { chat: string; accounting: string }) => `${yamlHead(prefix)}
apiEndpoints:
  chat: { paths: /api/chat/* }
  accounting: { paths: /api/credits/* }
serviceEndpoints:
  chat:
    url: ${urls.chat}
  accounting:
    url: ${urls.accounting}
policies: [verify-token, revocation, identity-headers, proxy]
pipelines:
  chat:
    apiEndpoints: [chat]
    policies: [{ verify-token: }, { revocation: }, { identity-headers: }, { proxy: [{ action: { serviceEndpoint: chat } }] }]
  accounting:
    apiEndpoints: [accounting]
    policies: [{ verify-token: }, { revocation: }, { identity-headers: }, { proxy: [{ action: { serviceEndpoint: accounting } }] }]
`;

describe('identity signature: captured headers are worthless on another route or service (DESIGN section 3)', () => {
  const auth = createTestAuth();
  let chat: Awaited<ReturnType<typeof startService>>;
  let accounting: Awaited<ReturnType<typeof startService>>;
  let gw: TestGateway;

  before(async () => {
    chat = await startService('chat', auth);
    accounting = await startService('accounting', auth);
    gw = await startGateway({
      upstreamUrl: chat.url,
      yaml: yaml(runPrefix(), { chat: chat.url, accounting: accounting.url }),
      auth,
    });
  });
  after(async () => {
    await gw?.stop();
    for (const service of [chat, accounting]) {
      service?.server.closeAllConnections();
      await new Promise((resolve) => service?.server.close(resolve));
    }
  });

  /** What a listener on the private network captures: the identity headers the gateway injected for one request. */
  async function capture(path: string): Promise<Record<string, string>> {
    const actor = testActor('admin');
    const response = await fetch(`${gw.url}${path}`, { headers: { authorization: `Bearer ${auth.token(actor)}` } });
    const body = (await response.json()) as { actor: unknown; identity: Record<string, string> };
    expect(response.status).to.equal(200);
    expect(body.actor).to.deep.equal(actor);
    expect(body.identity[IDENTITY_HEADERS.signature]).to.match(/^t=\d+,v2=[0-9a-f]{64}$/);
    return body.identity;
  }

  /** Replays the captured set straight at a service, as an attacker on the private network would. */
  async function replay(base: string, method: string, target: string, headers: Record<string, string>) {
    const response = await request(`${base}${target}`, { method, headers });
    return { status: response.statusCode, body: (await response.body.json()) as { code?: string; service?: string; actor?: unknown } };
  }

  it('accepts the captured set on its own request, and nowhere else', async () => {
    const captured = await capture('/api/chat/sessions?limit=5');
    // the original request (same method, path, service) still verifies within the 60 s
    const original = await replay(chat.url, 'GET', '/api/chat/sessions?limit=5', captured);
    expect(original.status).to.equal(200);
    expect(original.body.actor).to.include({ role: 'admin' });

    const elsewhere = [
      { what: 'another path', base: chat.url, method: 'GET', target: '/api/chat/sessions/other' },
      { what: 'another path (case variant)', base: chat.url, method: 'GET', target: '/api/chat/SESSIONS' },
      { what: 'another method', base: chat.url, method: 'DELETE', target: '/api/chat/sessions' },
      { what: 'another method (POST)', base: chat.url, method: 'POST', target: '/api/chat/sessions' },
      { what: 'another service, same path', base: accounting.url, method: 'GET', target: '/api/chat/sessions' },
      { what: 'another service and path', base: accounting.url, method: 'GET', target: '/api/credits/balance' },
    ];
    for (const attempt of elsewhere) {
      const answer = await replay(attempt.base, attempt.method, attempt.target, captured);
      expect(answer.status, attempt.what).to.equal(401);
      expect(answer.body.code, attempt.what).to.equal('UNAUTHENTICATED');
    }
  });

  it('signs each request for the service it goes to', async () => {
    const captured = await capture('/api/credits/balance');
    expect((await replay(accounting.url, 'GET', '/api/credits/balance', captured)).status).to.equal(200);
    expect((await replay(chat.url, 'GET', '/api/credits/balance', captured)).status).to.equal(401);
    await expectProblem(await fetch(`${chat.url}/api/credits/balance`, { headers: captured }), 401, 'UNAUTHENTICATED');
  });
});
