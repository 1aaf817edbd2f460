// The platform started as separate processes, reached only through the gateway.
import { expect } from 'chai';
import { type Platform, startPlatform } from '../support/platform.ts';

describe('platform through the gateway', () => {
  let platform: Platform;
  before(async function () {
    this.timeout(120_000);
    platform = await startPlatform();
  });
  after(async () => {
    await platform?.stop();
  });

  it('reports every part ready on /health', async () => {
    const response = await fetch(`${platform.gatewayUrl}/health`);
    const body = (await response.json()) as { parts: Record<string, string> };
    expect(response.status, JSON.stringify(body)).to.equal(200);
    expect(Object.values(body.parts).every((state) => state === 'ready')).to.equal(true);
  });

  it('restarts a killed part on the same port', async () => {
    const before = platform.urls.accounting;
    await platform.kill('accounting', 'SIGKILL');
    const down = await fetch(`${platform.gatewayUrl}/health`);
    expect(down.status).to.equal(503);
    await platform.restart('accounting');
    expect(platform.urls.accounting).to.equal(before);
    expect((await fetch(`${platform.gatewayUrl}/health`)).status).to.equal(200);
  });
});
