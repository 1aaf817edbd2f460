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
    // the gateway reuses one health probe for 2 s (anonymous bursts cost one probe): poll past that period
    expect(await healthWithin(5_000, 503)).to.equal(503);
    await platform.restart('accounting');
    expect(platform.urls.accounting).to.equal(before);
    expect(await healthWithin(5_000, 200)).to.equal(200);
  });

  /** Polls the gateway's /health until it answers `wanted` or the time is up; returns the last status. */
  async function healthWithin(ms: number, wanted: number): Promise<number> {
    const deadline = Date.now() + ms;
    for (;;) {
      const response = await fetch(`${platform.gatewayUrl}/health`);
      await response.arrayBuffer();
      if (response.status === wanted || Date.now() > deadline) return response.status;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
});
