// The dashboard's screens of issue 17 in headless Chromium against the real platform through the gateway: an admin
// creates a relationship by searching names (no raw id anywhere on the page), a supervisor sees a student's live
// session with its time to first token, watches hostile model output render as text, and reads the student's
// credit and usage charts; the admin changes a model price and lists and deletes a user's API key. axe-core finds
// no serious or critical violation on any screen; screenshots in e2e/test-output/dashboard/.
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import { launchChromium, newDashboardPage, screenshot, signInThroughForm } from '../../monitoring/test/support/browser.ts';
import { waitFor } from '../../monitoring/test/support/wait.ts';
import { seriousViolations } from '../support/axe.ts';
import { api, createUser, type Session, type SseEvent, sse } from '../support/client.ts';
import { type EchoModel, HOSTILE, startEchoModel } from '../support/echo-model.ts';
import { type Platform, startPlatform } from '../support/platform.ts';

const OUTPUT_DIR = new URL('../test-output/dashboard/', import.meta.url);
const CREDITS = 4000;
/** the echo model waits this long before its first chunk: a time to first token the dashboard must show */
const FIRST_CHUNK_MS = 600;

describe('dashboard screens (charts, live sessions with time to first token, relationships, prices, API keys) in headless Chromium', function () {
  this.timeout(180_000);
  let gw: string;
  let platform: Platform;
  let admin: Session;
  let supervisor: Session;
  let student: Session;
  let echo: EchoModel;
  let browser: Browser;
  let adminPage: Page;
  let supervisorPage: Page;
  let pageErrors: string[][] = [];
  const aborts: AbortController[] = [];

  async function checkScreen(page: Page, name: string): Promise<void> {
    const violations = await seriousViolations(page);
    expect(violations, `${name}: ${JSON.stringify(violations, null, 1)}`).to.deep.equal([]);
    await screenshot(page, OUTPUT_DIR, `${name}.png`);
  }
  /** what a person reads on the page holds no user id */
  async function expectNoRawIds(page: Page): Promise<void> {
    const shown = `${(await page.locator('body').textContent()) ?? ''} ${await page.locator('body').evaluate((b) => [...b.querySelectorAll('[aria-label]')].map((n) => n.getAttribute('aria-label')).join(' '))}`;
    for (const user of [admin, supervisor, student]) expect(shown, `the id of ${user.username}`).not.to.contain(user.userId);
  }

  before(async function () {
    this.timeout(15 * 60_000); // a fresh machine installs Chromium first
    // 16 characters every 250 ms: the hostile reply streams for some seconds, long enough to be watched live
    echo = await startEchoModel({ firstChunkMs: FIRST_CHUNK_MS, chunkMs: 250 });
    platform = await startPlatform({ OPENAI_BASE_URL: echo.url, RATE_LIMIT_PREFIX: `rl:dash-${randomUUID()}:` });
    gw = platform.gatewayUrl;
    admin = await createUser(platform, 'admin');
    supervisor = await createUser(platform, 'supervisor', 'sup');
    student = await createUser(platform, 'enduser', 'stu');
    browser = await launchChromium();
    const a = await newDashboardPage(browser);
    adminPage = a.page;
    const s = await newDashboardPage(browser);
    supervisorPage = s.page;
    pageErrors = [a.pageErrors, s.pageErrors];
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      if (adminPage) await screenshot(adminPage, OUTPUT_DIR, 'failure-admin.png');
      if (supervisorPage) await screenshot(supervisorPage, OUTPUT_DIR, 'failure-supervisor.png');
    }
  });
  after(async () => {
    for (const controller of aborts) controller.abort();
    echo?.server.close();
    await browser?.close();
    await platform?.stop();
  });

  it('an admin creates the relationship by searching names and emails; no raw id on the page', async () => {
    await adminPage.goto(`${gw}/monitoring/`);
    await adminPage.getByRole('heading', { name: 'Sign in' }).waitFor();
    await checkScreen(adminPage, '00-sign-in');
    await signInThroughForm(adminPage, gw, admin.email, admin.password);
    await adminPage.getByText(`Welcome, ${admin.username}.`).waitFor();
    await adminPage.getByRole('heading', { name: 'Admin console' }).waitFor();
    await adminPage.getByLabel('Supervisor (name or email)', { exact: true }).waitFor();
    await adminPage.locator('#rel-supervisor').fill(supervisor.email);
    await adminPage.locator('#rel-student').fill(student.username);
    await adminPage.getByRole('button', { name: 'Create', exact: true }).click();
    await adminPage.locator('#status').getByText('Relationship created.').waitFor();
    const row = adminPage.locator('#relationships-table tbody tr', { hasText: student.username });
    await row.getByText(supervisor.username).waitFor();
    const rel = await api<{ relationships: Array<{ supervisorId: string; studentId: string }> }>(gw, 'GET', '/api/monitoring/relationships', {
      token: admin.accessToken,
    });
    expect(rel.body.relationships.some((r) => r.supervisorId === supervisor.userId && r.studentId === student.userId)).to.equal(true);
    // the admin looks at the supervisor's students, picked by name
    await adminPage.locator('#supervisor-pick').fill(supervisor.username);
    await adminPage.locator('#supervisor-form').getByRole('button', { name: 'Show' }).click();
    await adminPage.locator(`tr[data-student-id="${student.userId}"]`).getByRole('rowheader', { name: student.username }).waitFor();
    await expectNoRawIds(adminPage);
    await checkScreen(adminPage, '01-admin-relationships');
  });

  it("a supervisor sees the student's live session with its time to first token and watches hostile output as text", async () => {
    const allocation = await api(gw, 'POST', '/api/credits/allocate', {
      token: admin.accessToken,
      body: { userId: student.userId, credits: CREDITS },
      headers: { 'idempotency-key': `dash-${student.userId}` },
    });
    expect(allocation.status, JSON.stringify(allocation.body)).to.equal(201);
    const created = await api<{ session: { id: string } }>(gw, 'POST', '/api/chat/sessions', {
      token: student.accessToken,
      body: { modelId: 'openai-compatible' },
    });
    expect(created.status, JSON.stringify(created.body)).to.equal(201);
    const sessionId = created.body.session.id;

    await signInThroughForm(supervisorPage, gw, supervisor.email, supervisor.password);
    await supervisorPage.getByText(`Welcome, ${supervisor.username}.`).waitFor();
    const row = supervisorPage.locator(`tr[data-student-id="${student.userId}"]`);
    await row.getByRole('rowheader', { name: student.username }).waitFor();

    const controller = new AbortController();
    aborts.push(controller);
    const events: SseEvent[] = [];
    const streamed = (async () => {
      for await (const event of sse(gw, `/api/chat/sessions/${sessionId}/stream`, {
        token: student.accessToken,
        body: { message: HOSTILE },
        signal: controller.signal,
      }))
        events.push(event);
    })();
    await waitFor(() => events.some((e) => e.event === 'delta'), 'the first delta', 15_000);

    // the live session with chat's measure of its first token (at least the model's wait before it)
    const live = row.locator(`li[data-session-id="${sessionId}"]`);
    await waitFor(
      async () => {
        await supervisorPage.getByRole('button', { name: 'Refresh' }).click();
        return (await live.locator('.ttft[data-ttft-ms]').count()) > 0 && (await live.locator('.ttft').getAttribute('data-ttft-ms')) !== '';
      },
      'the session with its time to first token',
      15_000,
    );
    const ttft = Number(await live.locator('.ttft').getAttribute('data-ttft-ms'));
    expect(ttft).to.be.at.least(FIRST_CHUNK_MS - 20);
    expect(await live.textContent()).to.contain('first token after');
    const students = await api<{ students: Array<{ id: string; activeStreams: Array<{ sessionId: string; timeToFirstTokenMs: number | null }> }> }>(
      gw,
      'GET',
      '/api/supervised-students',
      { token: supervisor.accessToken },
    );
    const listed = students.body.students.find((s) => s.id === student.userId)?.activeStreams.find((s) => s.sessionId === sessionId);
    expect(listed?.timeToFirstTokenMs).to.equal(ttft);
    await checkScreen(supervisorPage, '02-supervisor-live-ttft');

    // watching: the hostile reply arrives as text; nothing of it runs or becomes an element
    await live.getByRole('button', { name: `Watch ${student.username}'s openai-compatible session` }).click();
    await supervisorPage.locator('#watch-state').getByText(/^done/).waitFor({ timeout: 30_000 });
    await streamed;
    const transcript = supervisorPage.locator('#transcript');
    const text = (await transcript.textContent()) ?? '';
    expect(text).to.contain('<script>window.__pwned = "script"</script>');
    expect(text).to.contain('<img src="x" onerror="window.__pwned = \'img\'">');
    expect(text).to.contain('[click me](javascript:window.__pwned=1)');
    expect(text).to.contain('<a href="javascript:alert(1)">raw link</a>');
    expect(await transcript.locator('script, img, a').count()).to.equal(0);
    expect(await supervisorPage.evaluate('window.__pwned')).to.equal(undefined);
    await expectNoRawIds(supervisorPage);
    await checkScreen(supervisorPage, '03-supervisor-watched-hostile-output');
  });

  it("shows the student's credits, tokens and balance per day for the last 30 days, as accounting counts them", async () => {
    const query = `userId=${student.userId}`;
    const stats = await api<{ totals: { credits: number; inputTokens: number; outputTokens: number } }>(gw, 'GET', `/api/usage/stats?${query}`, {
      token: supervisor.accessToken,
    });
    const balance = await api<{ available: number }>(gw, 'GET', `/api/credits/balance?${query}`, { token: supervisor.accessToken });
    expect(stats.body.totals.credits).to.be.greaterThan(0);
    await supervisorPage.reload();
    const charts = supervisorPage.locator('#student-charts');
    await charts.locator('#chart-totals').getByText(`${balance.body.available} credits available now`).waitFor({ timeout: 15_000 });
    const today = new Date().toISOString().slice(0, 10);
    expect(await charts.locator('[data-chart="chart-credits"] rect.bar[data-day]').count()).to.equal(30);
    const day = (chart: string) => charts.locator(`[data-chart="${chart}"] [data-day="${today}"]`);
    expect(await day('chart-credits').getAttribute('data-value')).to.equal(String(stats.body.totals.credits));
    expect(await day('chart-tokens').getAttribute('data-value')).to.equal(String(stats.body.totals.inputTokens + stats.body.totals.outputTokens));
    // the balance line ends today at what the student has now (nothing is reserved any more)
    expect(await day('chart-balance').getAttribute('data-value')).to.equal(String(balance.body.available));
    expect(balance.body.available).to.equal(CREDITS - stats.body.totals.credits);
    await checkScreen(supervisorPage, '04-supervisor-student-charts');

    // an admin reads anyone's charts, found by name
    await adminPage.reload();
    await adminPage.locator('#chart-user-search').fill(student.email);
    await adminPage.getByRole('button', { name: 'Show charts' }).click();
    await adminPage.locator('#chart-totals').getByText(`${balance.body.available} credits available now`).waitFor({ timeout: 15_000 });
    await checkScreen(adminPage, '05-admin-student-charts');
  });

  it('an admin changes a model price in the prices screen; accounting uses it', async () => {
    const priceRow = adminPage.locator('#prices-table tr[data-price-model="local-dev"]');
    await priceRow.getByRole('rowheader').waitFor();
    await priceRow.getByRole('spinbutton', { name: /^Input price of/ }).fill('7');
    await priceRow.getByRole('spinbutton', { name: /^Output price of/ }).fill('11');
    await priceRow.getByRole('button', { name: /^Save prices of/ }).click();
    await adminPage
      .locator('#status')
      .getByText(/^Prices of .* are now 7 \/ 11\.$/)
      .waitFor();
    const prices = await api<{ prices: Array<{ modelId: string; inputPer1k: number; outputPer1k: number }> }>(gw, 'GET', '/api/models/prices', {
      token: admin.accessToken,
    });
    expect(prices.body.prices.find((p) => p.modelId === 'local-dev')).to.include({ inputPer1k: 7, outputPer1k: 11 });
    const calculated = await api<{ credits: number }>(gw, 'POST', '/api/credits/calculate', {
      token: student.accessToken,
      body: { modelId: 'local-dev', inputTokens: 1000, outputTokens: 1000 },
    });
    expect(calculated.body.credits).to.equal(18);
    await checkScreen(adminPage, '06-admin-prices');
  });

  it("an admin lists a user's API keys with last use and spend, and deletes one", async () => {
    const created = await api<{ id: string; key: string }>(gw, 'POST', '/api/auth/api-keys', { token: student.accessToken, body: { name: 'homework script' } });
    expect(created.status, JSON.stringify(created.body)).to.equal(201);
    const call = await api<{ usage: unknown }>(gw, 'POST', '/v1/chat/completions', {
      token: created.body.key,
      body: { model: 'openai-compatible', messages: [{ role: 'user', content: 'Plain **bold** via a key.' }] },
    });
    expect(call.status, JSON.stringify(call.body)).to.equal(200);
    const spend = await api<{ apiKeys: Array<{ apiKeyId: string; chargedCredits: number }> }>(gw, 'GET', `/api/credits/api-keys?userId=${student.userId}`, {
      token: admin.accessToken,
    });
    const charged = spend.body.apiKeys.find((k) => k.apiKeyId === created.body.id)?.chargedCredits;
    expect(charged).to.be.greaterThan(0);

    await adminPage.locator('#keys-user-search').fill(student.username);
    await adminPage.getByRole('button', { name: 'Show keys' }).click();
    const keyRow = adminPage.locator('#keys-table tr[data-key-name="homework script"]');
    await keyRow.getByRole('rowheader').waitFor();
    expect(await keyRow.locator('[data-charged]').getAttribute('data-charged')).to.equal(String(charged));
    expect(await keyRow.textContent()).not.to.contain('never used');
    expect((await keyRow.locator('td').nth(2).textContent())?.trim(), 'last used').to.not.equal('never');
    await expectNoRawIds(adminPage);
    await checkScreen(adminPage, '07-admin-api-keys');

    adminPage.once('dialog', (dialog) => void dialog.accept());
    await keyRow.getByRole('button', { name: `Delete the key homework script of ${student.username}` }).click();
    await adminPage.locator('#status').getByText(`Deleted the key homework script of ${student.username}.`).waitFor();
    await keyRow.waitFor({ state: 'detached' });
    const refused = await api(gw, 'GET', '/v1/models', { token: created.body.key });
    expect(refused.status).to.equal(401);
    const listed = await api<{ apiKeys: Array<{ id: string }> }>(gw, 'GET', `/api/auth/api-keys?userId=${student.userId}`, { token: admin.accessToken });
    expect(listed.body.apiKeys.map((k) => k.id)).not.to.include(created.body.id);
    await checkScreen(adminPage, '08-admin-api-key-deleted');
  });

  it('no page error on either page', () => {
    expect(pageErrors.flat().filter((e) => !e.includes('401'))).to.deep.equal([]);
  });
});
