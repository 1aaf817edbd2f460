// The supervisor dashboard in a real browser (headless Debian Chromium) against the real platform: every part
// a separate process, the page loaded from the public gateway as a user would (issue 7's browser test, flow 5).
import { createKeyring, signAccessToken } from '@platform/shared-types';
import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import { launchChromium, newDashboardPage, screenshot, signInThroughForm } from '../../monitoring/test/support/browser.ts';
import { waitFor } from '../../monitoring/test/support/wait.ts';
import { api, createUser, type Session, type SseEvent, sse } from '../support/client.ts';
import { assertLedgerInvariant } from '../support/ledger.ts';
import { type Platform, startPlatform } from '../support/platform.ts';

const OUTPUT_DIR = new URL('../test-output/', import.meta.url);
const CREDITS = 5000;

describe('supervisor dashboard in headless Chromium through the gateway', function () {
  this.timeout(120_000);
  let platform: Platform;
  let gw: string;
  let admin: Session;
  let supervisor: Session;
  let student: Session;
  let browser: Browser;
  let page: Page;
  let pageErrors: string[] = [];
  const aborts: AbortController[] = [];

  before(async function () {
    this.timeout(15 * 60_000); // a fresh machine installs Chromium first
    // a long, slow stream (2000 tokens x 25 ms = 50 s) that the supervisor interrupts well before its end
    platform = await startPlatform({ LOCAL_MODEL_TOKENS: '2000', LOCAL_MODEL_TOKEN_DELAY_MS: '25' });
    gw = platform.gatewayUrl;
    admin = await createUser(platform, 'admin');
    supervisor = await createUser(platform, 'supervisor', 'sup');
    student = await createUser(platform, 'enduser', 'stu');
    browser = await launchChromium();
    ({ page, pageErrors } = await newDashboardPage(browser));
  });
  afterEach(async function () {
    // what the page showed when a step failed
    if (this.currentTest?.state === 'failed' && page) await screenshot(page, OUTPUT_DIR, 'dashboard-e2e-failure.png');
  });
  after(async () => {
    for (const controller of aborts) controller.abort();
    await browser?.close();
    await platform?.stop();
  });

  /** Starts reading an SSE stream in the background; events land in the returned list. */
  function listen(path: string, options: { token: string; body?: unknown }) {
    const controller = new AbortController();
    aborts.push(controller);
    const events: SseEvent[] = [];
    let ready = false;
    const done = (async () => {
      for await (const event of sse(gw, path, { ...options, signal: controller.signal, onComment: (comment) => (ready ||= comment === 'ready') }))
        events.push(event);
    })();
    return { events, done, isReady: () => ready, stop: () => controller.abort() };
  }

  it('a supervisor signs in, sees the student live, watches the stream, sends feedback and interrupts it', async () => {
    const relationship = await api(gw, 'POST', '/api/monitoring/relationships', {
      token: admin.accessToken,
      body: { supervisorId: supervisor.userId, studentId: student.userId },
    });
    expect(relationship.status, JSON.stringify(relationship.body)).to.equal(201);
    const allocation = await api(gw, 'POST', '/api/credits/allocate', {
      token: admin.accessToken,
      body: { userId: student.userId, credits: CREDITS, notes: 'browser e2e' },
      headers: { 'idempotency-key': `browser-${student.userId}` },
    });
    expect(allocation.status, JSON.stringify(allocation.body)).to.equal(201);

    // the student listens for supervisor events (subscribed once chat says `ready`), then starts a long stream
    const studentEvents = listen('/api/chat/events', { token: student.accessToken });
    await waitFor(studentEvents.isReady, "the student's event stream to be subscribed", 15_000);
    const created = await api<{ session: { id: string } }>(gw, 'POST', '/api/chat/sessions', { token: student.accessToken, body: { modelId: 'local-dev' } });
    expect(created.status, JSON.stringify(created.body)).to.equal(201);
    const sessionId = created.body.session.id;
    const stream = listen(`/api/chat/sessions/${sessionId}/stream`, { token: student.accessToken, body: { message: 'Tell me a very long story' } });
    await waitFor(() => stream.events.some((e) => e.event === 'delta'), 'the student stream to produce text', 15_000);
    const balance = await api<{ available: number; reserved: number }>(gw, 'GET', '/api/credits/balance', { token: student.accessToken });
    expect(balance.body.reserved, 'credits reserved for the live stream').to.be.greaterThan(0);

    // the supervisor signs in through the dashboard's form, on the gateway's origin
    await signInThroughForm(page, gw, supervisor.email, supervisor.password);
    await page.getByText(`Welcome, ${supervisor.username}.`).waitFor();
    const row = page.locator(`tr[data-student-id="${student.userId}"]`);
    await row.getByRole('rowheader', { name: student.username }).waitFor();
    const watchButton = row.locator(`li[data-session-id="${sessionId}"]`).getByRole('button', { name: `Watch ${student.username}'s local-dev session` });
    await watchButton.waitFor();
    expect(await row.textContent())
      .to.contain(student.email)
      .and.contain(String(balance.body.available))
      .and.contain(`(${balance.body.reserved} reserved)`)
      .and.contain('local-dev');
    await screenshot(page, OUTPUT_DIR, 'dashboard-e2e-students.png');

    // watching: the transcript fills and keeps growing while the student's stream runs
    await watchButton.click();
    const transcript = page.locator('#transcript');
    await page
      .locator('#watch-state')
      .getByText(/^(live|streaming)$/)
      .waitFor();
    const shownLength = async () => ((await transcript.textContent()) ?? '').length;
    await waitFor(async () => (await shownLength()) > 0, 'the transcript to show text', 15_000);
    const seenSoFar = await shownLength();
    await waitFor(async () => (await shownLength()) > seenSoFar, 'the transcript to keep growing', 15_000);
    expect(
      stream.events.some((e) => ['done', 'interrupted', 'error'].includes(e.event)),
      'stream still live',
    ).to.equal(false);

    await page.getByLabel('Feedback to the student').fill('Good start; cite your sources, please.');
    await page.getByRole('button', { name: 'Send feedback' }).click();
    await page.locator('#status').getByText('Feedback sent.').waitFor();
    await page.locator('#watch-events').getByText('Feedback: Good start; cite your sources, please.').waitFor();
    await screenshot(page, OUTPUT_DIR, 'dashboard-e2e-watching.png');

    await page.getByLabel('Interrupt reason (optional)').fill('Off-topic, stop here');
    await page.getByRole('button', { name: 'Interrupt' }).click();
    await page.locator('#watch-state').getByText('interrupted', { exact: true }).waitFor();
    await page.locator('#watch-events').getByText('Interrupted: Off-topic, stop here').waitFor();
    await screenshot(page, OUTPUT_DIR, 'dashboard-e2e-interrupted.png');

    // the student's stream ends with `interrupted` carrying the reason
    await stream.done;
    const terminal = stream.events.at(-1);
    expect(terminal?.event).to.equal('interrupted');
    expect(terminal?.data.reason).to.equal('Off-topic, stop here');
    expect(terminal?.data.byUserId).to.equal(supervisor.userId);

    // ... and its own event stream received the feedback and the interrupt
    await waitFor(
      () =>
        studentEvents.events.some((e) => e.event === 'feedback' && JSON.stringify(e.data).includes('cite your sources')) &&
        studentEvents.events.some((e) => e.event === 'interrupted' && e.data.reason === 'Off-topic, stop here'),
      'the student to receive the feedback and the interrupt',
      15_000,
    );
    studentEvents.stop();
    await studentEvents.done;

    // charged exactly what the terminal event says, nothing left reserved, the ledger adds up
    const settled = await api<{ available: number; reserved: number }>(gw, 'GET', '/api/credits/balance', { token: student.accessToken });
    expect(settled.body.available).to.equal(CREDITS - Number(terminal?.data.credits));
    expect(settled.body.reserved).to.equal(0);
    await assertLedgerInvariant(platform, student.userId);

    // the list drops the ended session by itself (reloaded on the terminal event, else by the 10 s auto-refresh)
    await row.getByText('none').waitFor();
    expect(await row.textContent()).to.contain(String(settled.body.available));
    expect(pageErrors).to.deep.equal([]);
  });

  it("renews the supervisor's expired access token through the gateway's refresh route and carries on", async () => {
    // the signed-in page from above gets an access token that expired (same secret, exp in the past)
    const expired = signAccessToken(
      createKeyring(platform.secrets.JWT_ACCESS_SECRET),
      { sub: supervisor.userId, username: supervisor.username, email: supervisor.email, role: 'supervisor' },
      { ttlSeconds: -60 },
    );
    const stored = await page.evaluate((token) => {
      const session = JSON.parse(sessionStorage.getItem('monitoring.session') ?? 'null') as { accessToken: string; refreshToken: string } | null;
      if (!session) return null;
      sessionStorage.setItem('monitoring.session', JSON.stringify({ ...session, accessToken: token }));
      return session;
    }, expired);
    expect(stored, 'the dashboard keeps its session in sessionStorage').to.not.equal(null);
    pageErrors.length = 0;

    const refreshed = page.waitForResponse((response) => response.url().endsWith('/api/auth/refresh'));
    await page.reload();
    expect((await refreshed).status()).to.equal(200);
    await page.locator(`tr[data-student-id="${student.userId}"]`).getByRole('rowheader', { name: student.username }).waitFor();
    expect(await page.locator('#login-view').isVisible(), 'still signed in').to.equal(false);
    const renewed = await page.evaluate(
      () => JSON.parse(sessionStorage.getItem('monitoring.session') ?? '{}') as { accessToken?: string; refreshToken?: string },
    );
    expect(renewed.accessToken).to.be.a('string').and.not.equal(expired);
    expect(renewed.refreshToken).to.be.a('string').and.not.equal(stored?.refreshToken);
    // the renewed token works through the gateway
    const me = await api(gw, 'GET', '/api/supervised-students', { token: renewed.accessToken });
    expect(me.status).to.equal(200);
    await screenshot(page, OUTPUT_DIR, 'dashboard-e2e-renewed.png');
    // only the expected 401 of the expired token reached the console
    expect(pageErrors.filter((error) => !error.includes('401'))).to.deep.equal([]);
  });
});
