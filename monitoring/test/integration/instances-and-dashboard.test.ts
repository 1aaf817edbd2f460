import { testActor } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { configSchema } from '../../src/config.ts';
import { start } from '../../src/main.ts';
import { waitFor } from '../support/fake-services.ts';
import { startTestMonitoring, type TestMonitoring } from '../support/monitoring.ts';

describe('two monitoring instances on one database; dashboard assets', () => {
  let a: TestMonitoring;
  let b: Awaited<ReturnType<typeof start>>;
  const admin = testActor('admin');
  const supervisor = testActor('supervisor');
  const student = testActor('enduser');

  before(async () => {
    a = await startTestMonitoring({ env: { CHECK_CACHE_TTL_MS: '60000' } });
    b = await start(configSchema.parse({ ...a.config, PORT: '0' }));
    for (const actor of [admin, supervisor, student]) a.fakeAuth.add(actor);
  });
  after(async () => {
    await b?.stop();
    await a?.stop();
  });

  const check = async (url: string) => {
    const response = await fetch(`${url}/internal/relationships/check?supervisorId=${supervisor.userId}&studentId=${student.userId}`, {
      headers: a.auth.serviceHeaders('accounting', 'monitoring'),
    });
    return ((await response.json()) as { supervises: boolean }).supervises;
  };

  it('a delete on one instance clears the other instance’s cache (Redis pub/sub)', async () => {
    const created = await fetch(`${a.url}/api/monitoring/relationships`, {
      method: 'POST',
      headers: { ...a.auth.identityHeaders(admin), 'content-type': 'application/json' },
      body: JSON.stringify({ supervisorId: supervisor.userId, studentId: student.userId }),
    });
    const { relationship } = (await created.json()) as { relationship: { id: string } };
    expect(await check(b.url)).to.equal(true); // b caches "yes" for a minute
    const removed = await fetch(`${a.url}/api/monitoring/relationships/${relationship.id}`, { method: 'DELETE', headers: a.auth.identityHeaders(admin) });
    expect(removed.status).to.equal(204);
    expect(await check(a.url)).to.equal(false);
    // well inside the minute b would otherwise keep it (2 s was not enough on a loaded 2-core machine)
    await waitFor(async () => !(await check(b.url)), 'instance b to drop its cached answer', 10_000);
  });

  it('serves the dashboard at /monitoring/ with a strict CSP, and its script as plain JavaScript', async () => {
    const redirect = await fetch(`${a.url}/monitoring`, { redirect: 'manual' });
    expect(redirect.status).to.equal(301);
    expect(redirect.headers.get('location')).to.equal('/monitoring/');
    const page = await fetch(`${a.url}/monitoring/`);
    expect(page.status).to.equal(200);
    expect(page.headers.get('content-type')).to.match(/^text\/html/);
    expect(page.headers.get('content-security-policy')).to.contain("script-src 'self'");
    expect(await page.text()).to.contain('<script type="module" src="app.js"></script>');
    const script = await fetch(`${a.url}/monitoring/app.js`);
    expect(script.headers.get('content-type')).to.match(/^text\/javascript/);
    const source = await script.text();
    // the bundle (the web app's API helper included) calls the public paths
    expect(source).to.contain('/api/supervised-students').and.contain('/api/auth/refresh');
    expect(source).not.to.match(/interface Session|: Promise<void>/);
    const again = await fetch(`${a.url}/monitoring/app.js`, { headers: { 'if-none-match': script.headers.get('etag') ?? '' } });
    expect(again.status).to.equal(304);
    expect((await fetch(`${a.url}/monitoring/styles.css`)).headers.get('content-type')).to.match(/^text\/css/);
    expect((await fetch(`${a.url}/monitoring/nope.js`)).status).to.equal(404);
  });
});
