// Liveness and readiness of every service (the Helm chart's probes): /livez never asks the stores, /readyz
// does, and a stopping service fails readiness for its drain delay while it still serves requests.
import { expect } from 'chai';
import { ApiRouter, createServiceApp, type StartedService, type Stores, startService } from '../../src/express/index.ts';
import { createLogger } from '../../src/logger.ts';
import { createTestAuth } from '../../src/testing/index.ts';

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe('service probes: /livez, /readyz and the drain on stop', () => {
  const auth = createTestAuth();
  let storesUp = true;

  async function start(drainMs: number): Promise<StartedService<Stores>> {
    const router = new ApiRouter().route({ method: 'get', path: '/api/ping', summary: 'ping', access: 'public' }, () => ({ pong: true }));
    return startService({
      logger: createLogger('test', { level: 'silent' }),
      port: 0,
      host: '127.0.0.1',
      ops: { port: 0, host: '127.0.0.1' },
      drainMs,
      connect: async () => ({ ready: async () => ({ store: storesUp }), close: async () => undefined }),
      build: (stores) =>
        createServiceApp({
          name: 'chat',
          logger: createLogger('test', { level: 'silent' }),
          internalSecret: auth.secrets.INTERNAL_SECRET,
          internalKeyring: auth.internalKeyring,
          accessKeyring: auth.accessKeyring,
          ready: () => stores.ready(),
          routers: [router],
        }),
    });
  }

  it('keeps /livez at 200 while a store is down; /readyz follows the stores', async () => {
    const service = await start(0);
    try {
      storesUp = false;
      expect((await fetch(`${service.url}/livez`)).status).to.equal(200);
      expect((await fetch(`${service.url}/readyz`)).status).to.equal(503);
      storesUp = true;
      expect((await fetch(`${service.url}/readyz`)).status).to.equal(200);
    } finally {
      storesUp = true;
      await service.stop();
    }
  });

  it('fails readiness first on stop, serves requests through the drain delay, then closes', async () => {
    const drainMs = 1_500;
    const service = await start(drainMs);
    expect((await fetch(`${service.url}/readyz`)).status).to.equal(200);
    const stopped = service.stop();
    let done = false;
    void stopped.then(() => {
      done = true;
    });
    await waitFor(async () => (await fetch(`${service.url}/readyz`)).status === 503, drainMs);
    expect((await fetch(`${service.url}/ready`)).status).to.equal(503);
    // still serving while load balancers take it out
    expect((await fetch(`${service.url}/livez`)).status).to.equal(200);
    expect(await (await fetch(`${service.url}/api/ping`)).json()).to.deep.equal({ pong: true });
    expect(done, 'stop must wait for the drain delay').to.equal(false);
    await stopped;
    const refused = await fetch(`${service.url}/livez`).catch((error: unknown) => error);
    expect(refused).to.be.instanceOf(Error);
  });
});
