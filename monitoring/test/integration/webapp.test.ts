import { expect } from 'chai';
import { startTestMonitoring, type TestMonitoring } from '../support/monitoring.ts';

/** The end-user web app's files, as monitoring serves them at /app/ (the gateway routes /app and /app/* here). */
describe('web app at /app/', () => {
  let m: TestMonitoring;

  before(async function () {
    this.timeout(60_000);
    m = await startTestMonitoring();
  });
  after(async () => {
    await m?.stop();
  });

  it('serves index.html with a strict CSP for /app/ and every app route, and redirects /app', async () => {
    const redirect = await fetch(`${m.url}/app`, { redirect: 'manual' });
    expect(redirect.status).to.equal(301);
    expect(redirect.headers.get('location')).to.equal('/app/');
    for (const path of ['/app/', '/app/login', '/app/verify-email?token=abc', '/app/chat/65f0c0ffee', '/app/usage']) {
      const page = await fetch(`${m.url}${path}`);
      expect(page.status, path).to.equal(200);
      expect(page.headers.get('content-type'), path).to.match(/^text\/html/);
      const csp = page.headers.get('content-security-policy') ?? '';
      expect(csp).to.contain("default-src 'none'").and.contain("script-src 'self'").and.contain("connect-src 'self'").and.contain("frame-ancestors 'none'");
      expect(csp).not.to.match(/unsafe-inline|unsafe-eval|https?:/);
      expect(page.headers.get('x-content-type-options')).to.equal('nosniff');
      const html = await page.text();
      expect(html).to.contain('<script type="module" src="/app/assets/app.js"></script>');
      expect(html).not.to.match(/<script>|<style>|\sstyle=|\son[a-z]+=/i);
    }
  });

  it('serves the bundle built from the sources and the lock: one JavaScript module with the app, one stylesheet', async () => {
    const script = await fetch(`${m.url}/app/assets/app.js`);
    expect(script.status).to.equal(200);
    expect(script.headers.get('content-type')).to.match(/^text\/javascript/);
    const source = await script.text();
    expect(source).to.contain('/api/chat/events').and.contain('/api/auth/refresh').and.contain('DOMPurify');
    expect(source, 'bundled: no bare imports left for the browser to resolve').not.to.match(/\bfrom\s*["'](preact|marked|dompurify)/);
    expect(source, 'no TypeScript left').not.to.match(/interface Session|: Promise<void>/);
    const again = await fetch(`${m.url}/app/assets/app.js`, { headers: { 'if-none-match': script.headers.get('etag') ?? '' } });
    expect(again.status).to.equal(304);
    const styles = await fetch(`${m.url}/app/assets/app.css`);
    expect(styles.headers.get('content-type')).to.match(/^text\/css/);
    // one style with the dashboard: its base rules are bundled in
    expect(await styles.text())
      .to.contain('.skip-link')
      .and.contain('.topbar');
    const head = await fetch(`${m.url}/app/assets/app.js`, { method: 'HEAD' });
    expect(head.status).to.equal(200);
    expect(await head.text()).to.equal('');
  });

  it('answers 404 for an unknown asset and refuses other methods', async () => {
    const missing = await fetch(`${m.url}/app/assets/nope.js`);
    expect(missing.status).to.equal(404);
    expect(await missing.text()).not.to.contain('<script');
    const post = await fetch(`${m.url}/app/`, { method: 'POST' });
    expect(post.status).to.equal(404);
  });
});
