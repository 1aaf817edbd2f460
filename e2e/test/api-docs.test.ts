// The browsable API reference (issue 16): the merged OpenAPI document of a running platform passes
// `@redocly/cli lint` with no errors (e2e/redocly.yaml), has named component schemas, a summary and a
// description per operation and examples for the main request bodies; GET /api/docs opens in headless
// Chromium under its CSP and lists every operation.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import type { Browser } from 'playwright-core';
import { launchChromium, newDashboardPage, screenshot } from '../../monitoring/test/support/browser.ts';
import { ROOT } from '../../scripts/platform.ts';
import { type Platform, startPlatform } from '../support/platform.ts';

const OUTPUT_DIR = new URL('../test-output/', import.meta.url);
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

interface Operation {
  summary?: string;
  description?: string;
  requestBody?: { content: Record<string, { schema?: { $ref?: string }; example?: unknown }> };
}
interface Doc {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, unknown> };
  'x-unavailable-services': string[];
}

function operations(doc: Doc): Array<{ method: string; path: string; operation: Operation }> {
  return Object.entries(doc.paths).flatMap(([path, byMethod]) =>
    Object.entries(byMethod)
      .filter(([method]) => METHODS.includes(method))
      .map(([method, operation]) => ({ method, path, operation })),
  );
}

describe('API docs: merged OpenAPI and the browsable reference', function () {
  this.timeout(120_000);
  let platform: Platform;
  let doc: Doc;
  let browser: Browser | undefined;

  before(async function () {
    this.timeout(15 * 60_000); // a fresh machine installs Chromium first
    platform = await startPlatform();
    const response = await fetch(`${platform.gatewayUrl}/api/docs/openapi.json`);
    expect(response.status).to.equal(200);
    doc = (await response.json()) as Doc;
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await platform?.stop();
  });

  it('merges every service, and answers the same document at /api/docs to a client that does not ask for HTML', async () => {
    expect(doc['x-unavailable-services']).to.deep.equal([]);
    // what schemathesis and other tools fetch: no text/html in Accept
    const plain = await fetch(`${platform.gatewayUrl}/api/docs`, { headers: { accept: 'application/json' } });
    expect(plain.headers.get('content-type')).to.match(/^application\/json/);
    expect(plain.headers.get('vary')).to.match(/Accept/);
    expect(Object.keys(((await plain.json()) as Doc).paths)).to.deep.equal(Object.keys(doc.paths));
    const html = await fetch(`${platform.gatewayUrl}/api/docs`, { headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' } });
    expect(html.headers.get('content-type')).to.match(/^text\/html/);
    const csp = html.headers.get('content-security-policy') ?? '';
    expect(csp).to.include("script-src 'self'").and.include("default-src 'none'");
    expect(csp).not.to.match(/unsafe-inline|unsafe-eval|https?:/);
    expect(await html.text()).not.to.match(/<script>|https?:\/\//);
    const missing = await fetch(`${platform.gatewayUrl}/api/docs/assets/package.json`);
    expect(missing.status).to.equal(404);
    expect(missing.headers.get('content-type')).to.equal('application/problem+json');
  });

  it('passes @redocly/cli lint with no errors', () => {
    const dir = mkdtempSync(join(tmpdir(), 'openapi-lint-'));
    try {
      const file = join(dir, 'openapi.json');
      writeFileSync(file, JSON.stringify(doc));
      const run = spawnSync('npx', ['redocly', 'lint', file, '--config', join(ROOT, 'e2e', 'redocly.yaml'), '--format', 'json'], {
        cwd: ROOT,
        encoding: 'utf8',
        env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' },
      });
      const start = run.stdout.indexOf('{');
      expect(start, `redocly printed no report: ${run.stdout}\n${run.stderr}`).to.be.at.least(0);
      const report = JSON.parse(run.stdout.slice(start)) as {
        totals: { errors: number; warnings: number };
        problems: Array<{ ruleId: string; severity: string; message: string; location: Array<{ pointer: string }> }>;
      };
      const errors = report.problems.filter((problem) => problem.severity === 'error');
      expect(errors.map((e) => `${e.ruleId} ${e.location[0]?.pointer}: ${e.message}`)).to.deep.equal([]);
      expect(report.totals.errors).to.equal(0);
      expect(run.status).to.equal(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names reusable component schemas, describes every operation and gives the main request bodies an example', () => {
    for (const id of ['Problem', 'User', 'SignupRequest', 'LoginRequest', 'LoginResponse', 'AllocateCreditsRequest', 'ChatMessageRequest']) {
      expect(doc.components.schemas, id).to.have.property(id);
    }
    const text = JSON.stringify(doc);
    // a named schema is referenced, not copied: User is used by several operations
    expect(text.split('"#/components/schemas/User"').length - 1).to.be.at.least(3);
    const all = operations(doc);
    expect(all.length).to.be.at.least(40);
    for (const { method, path, operation } of all) {
      expect(operation.summary, `${method} ${path}`).to.be.a('string').and.not.equal('');
      expect(operation.description, `${method} ${path}`).to.be.a('string').and.not.equal('');
    }
    const main = [
      ['post', '/api/auth/signup'],
      ['post', '/api/auth/login'],
      ['post', '/api/credits/allocate'],
      ['post', '/api/credits/calculate'],
      ['post', '/api/chat/sessions'],
      ['post', '/api/chat/sessions/{id}/stream'],
      ['post', '/api/monitoring/relationships'],
    ] as const;
    for (const [method, path] of main) {
      const media = doc.paths[path]?.[method]?.requestBody?.content['application/json'];
      expect(media?.schema?.$ref, `${method} ${path}`).to.match(/^#\/components\/schemas\//);
      expect(media?.example, `${method} ${path}`).to.be.an('object');
    }
  });

  it('opens /api/docs in headless Chromium under its CSP and lists every operation', async () => {
    const { page, pageErrors } = await newDashboardPage(browser as Browser);
    const violations: string[] = [];
    await page.exposeFunction('reportViolation', (text: string) => violations.push(text));
    // page-side code as strings: e2e is type-checked without the DOM library
    await page.addInitScript({
      content: "document.addEventListener('securitypolicyviolation', (event) => window.reportViolation(event.violatedDirective + ' ' + event.blockedURI));",
    });
    const requested: string[] = [];
    page.on('request', (request) => requested.push(request.url()));
    try {
      await page.goto(`${platform.gatewayUrl}/api/docs`);
      const expected = operations(doc);
      const blocks = page.locator('.opblock');
      await page.waitForFunction(`document.querySelectorAll('.opblock').length >= ${expected.length}`, undefined, { timeout: 30_000 });
      const listed = await blocks.evaluateAll((nodes) =>
        nodes.map((node) => {
          const method = node.querySelector('.opblock-summary-method')?.textContent?.trim().toLowerCase();
          const path = node.querySelector('.opblock-summary-path')?.getAttribute('data-path');
          return `${method} ${path}`;
        }),
      );
      for (const { method, path } of expected) expect(listed, `${method} ${path}`).to.include(`${method} ${path}`);
      // the stylesheet applied (a CSP refusal would leave the page unstyled)
      const color = await page.evaluate("getComputedStyle(document.querySelector('.opblock-summary-method')).color");
      expect(color).to.equal('rgb(255, 255, 255)');
      await screenshot(page, OUTPUT_DIR, 'api-docs.png');
      expect(violations).to.deep.equal([]);
      expect(pageErrors).to.deep.equal([]);
      // nothing fetched from anywhere but the gateway
      const origin = new URL(platform.gatewayUrl).origin;
      expect(requested.filter((url) => !url.startsWith(origin) && !url.startsWith('data:'))).to.deep.equal([]);
    } finally {
      await page.close();
    }
  });
});
