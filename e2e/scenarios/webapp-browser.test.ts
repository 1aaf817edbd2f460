// The end-user web app (/app/) in headless Debian Chromium against the real platform, every part a separate
// process, loaded from the public gateway as a person would (issue 17). A new user signs up, opens the link of
// the dev mail, logs in, gets credits from an admin (in the dashboard), chats with streamed replies, sees the balance
// drop by exactly what each reply was charged, and gets feedback and an interrupt from a supervisor who watches
// in the dashboard at the same time. Model output with HTML and javascript: links renders as text: the
// OpenAI-compatible model is pointed at a stand-in server (a third party) that echoes the user's message.
import { randomUUID } from 'node:crypto';
import { createKeyring, signAccessToken } from '@platform/shared-types';
import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import { launchChromium, screenshot, signInThroughForm } from '../../monitoring/test/support/browser.ts';
import { waitFor } from '../../monitoring/test/support/wait.ts';
import { type AxeViolation, seriousViolations } from '../support/axe.ts';
import { api, createUser, type Session, uniqueUser } from '../support/client.ts';
import { type EchoModel, HOSTILE, startEchoModel } from '../support/echo-model.ts';
import { assertLedgerInvariant } from '../support/ledger.ts';
import { type Platform, startPlatform } from '../support/platform.ts';

const OUTPUT_DIR = new URL('../test-output/webapp/', import.meta.url);
const CREDITS = 5000;
async function newPage(browser: Browser, viewport = { width: 1280, height: 900 }): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport });
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  return { page, errors };
}

describe('end-user web app in headless Chromium through the gateway', function () {
  this.timeout(180_000);
  let platform: Platform;
  let gw: string;
  let echo: EchoModel;
  let admin: Session;
  let supervisor: Session;
  let browser: Browser;
  let student: Page;
  let studentErrors: string[];
  const person = uniqueUser('ada');
  let studentId = '';
  const a11y: Record<string, AxeViolation[]> = {};

  /** axe on what the page shows now, kept by screen name; asserted per screen and all together at the end */
  async function checkScreen(page: Page, name: string): Promise<void> {
    const violations = await seriousViolations(page);
    a11y[name] = violations;
    expect(violations, `${name}: ${JSON.stringify(violations, null, 1)}`).to.deep.equal([]);
    await screenshot(page, OUTPUT_DIR, `${name}.png`);
  }
  /** the link in the newest dev mail of that kind to the new user (the mail is written just after the 202) */
  async function mailedLink(kind: string): Promise<{ link: URL; token: string }> {
    await waitFor(() => platform.mailFor(person.email, kind) !== undefined, `the ${kind} mail`, 10_000);
    const mail = platform.mailFor(person.email, kind);
    const url = /https?:\/\/\S+/.exec(mail?.text ?? '')?.[0];
    expect(url, `a link in ${mail?.text}`).to.be.a('string');
    return { link: new URL(url as string), token: mail?.meta.token ?? '' };
  }
  const studentToken = async () =>
    (await student.evaluate(() => (JSON.parse(sessionStorage.getItem('webapp.session') ?? '{}') as { accessToken?: string }).accessToken)) ?? '';
  const balanceShown = async (page: Page) => Number(await page.locator('#balance-available').getAttribute('data-available'));

  before(async function () {
    this.timeout(15 * 60_000); // a fresh machine installs Chromium first
    echo = await startEchoModel();
    // a slow local reply (the model's default 200 output tokens, one word per 150 ms: 30 s) for the supervisor to
    // interrupt well before its end
    platform = await startPlatform({
      LOCAL_MODEL_TOKENS: '2000',
      LOCAL_MODEL_TOKEN_DELAY_MS: '150',
      OPENAI_BASE_URL: echo.url,
      RATE_LIMIT_PREFIX: `rl:webapp-${randomUUID()}:`,
    });
    gw = platform.gatewayUrl;
    admin = await createUser(platform, 'admin');
    supervisor = await createUser(platform, 'supervisor', 'sup');
    browser = await launchChromium();
    ({ page: student, errors: studentErrors } = await newPage(browser));
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && student) {
      await screenshot(student, OUTPUT_DIR, 'failure-student.png');
      const shown = await student
        .locator('article.message')
        .evaluateAll((nodes) => nodes.map((n) => `${n.getAttribute('data-status')}: ${n.textContent?.slice(-80)}`));
      const balance = studentId ? await api(gw, 'GET', `/api/credits/balance?userId=${studentId}`, { token: admin.accessToken }) : undefined;
      console.log('messages shown:', shown, 'balance:', balance?.body, 'page errors:', studentErrors);
    }
  });
  after(async () => {
    await browser?.close();
    await platform?.stop();
    echo?.server.close();
  });

  it('signs up, opens the link of the confirmation mail, and logs in', async () => {
    await student.goto(`${gw}/app/`);
    await student.getByRole('heading', { name: 'Log in' }).waitFor();
    expect(new URL(student.url()).pathname).to.equal('/app/login');
    await checkScreen(student, '01-login');

    await student.getByRole('link', { name: 'Create an account' }).click();
    await student.getByRole('heading', { name: 'Create an account' }).waitFor();
    await checkScreen(student, '02-signup');
    await student.getByLabel('Username').fill(person.username);
    await student.getByLabel('Email').fill(person.email);
    await student.getByLabel('Password').fill(person.password);
    await student.getByRole('button', { name: 'Sign up' }).click();
    await student.getByRole('heading', { name: 'Check your mail' }).waitFor();
    await checkScreen(student, '03-check-mail');

    // logging in before confirming is refused with a way to get the mail again
    await student.getByRole('link', { name: 'Go to log in' }).click();
    await student.getByLabel('Email or username').fill(person.email);
    await student.getByLabel('Password').fill(person.password);
    await student.getByRole('button', { name: 'Log in' }).click();
    await student.getByRole('button', { name: 'Send the confirmation mail again' }).waitFor();
    expect(studentErrors).to.deep.equal(['Failed to load resource: the server responded with a status of 403 (Forbidden)']);
    studentErrors.length = 0; // the refused login, as expected

    // the mail's link is the app's own screen; it confirms the address
    const { link, token } = await mailedLink('verify-email');
    expect(link.pathname).to.equal('/app/verify-email');
    expect(link.searchParams.get('token')).to.equal(token);
    await student.goto(`${gw}${link.pathname}${link.search}`);
    await student.getByText('Your email address is confirmed.').waitFor();
    await checkScreen(student, '04-verified');
    // a used link says so instead of confirming twice
    const reused = await api(gw, 'POST', '/api/auth/verify-email', { body: { token } });
    expect(reused.status).to.equal(400);

    await student.getByRole('link', { name: 'Go to log in' }).click();
    await student.getByLabel('Email or username').fill(person.username);
    await student.getByLabel('Password').fill(person.password);
    await student.getByRole('button', { name: 'Log in' }).click();
    await student.getByRole('heading', { name: 'Your chats' }).waitFor();
    await student.locator('#balance-available[data-available="0"]').waitFor();
    await student.locator('#live-state[data-state="live"]').waitFor();
    studentId = await student.evaluate(() => (JSON.parse(sessionStorage.getItem('webapp.session') ?? '{}') as { user?: { id: string } }).user?.id ?? '');
    expect(studentId).to.be.a('string').and.not.equal('');
    await checkScreen(student, '05-chats-empty');
  });

  it('gets credits from an admin in the dashboard; the balance shows them', async () => {
    const { page: adminPage, errors } = await newPage(browser);
    await signInThroughForm(adminPage, gw, admin.email, admin.password);
    await adminPage.getByText(`Welcome, ${admin.username}.`).waitFor();
    await adminPage.getByLabel('Or any user (name or email)').fill(person.email);
    await adminPage.locator('#allocate-credits').fill(String(CREDITS));
    await adminPage.getByLabel('Notes (optional)').fill('welcome credits');
    await adminPage.getByRole('button', { name: 'Allocate' }).click();
    await adminPage.locator('#status').getByText(`Allocated ${CREDITS} credits`).waitFor();
    await checkScreen(adminPage, '06-dashboard-admin-allocates');
    expect(errors).to.deep.equal([]);
    await adminPage.close();

    // coming back to the tab shows the new figure without a reload
    await student.evaluate("window.dispatchEvent(new Event('focus'))");
    await student.locator(`#balance-available[data-available="${CREDITS}"]`).waitFor();
  });

  it('chats with a streamed reply; model HTML and javascript: links render as text; the balance drops by the charge', async () => {
    const picker = student.getByLabel('Model');
    const options = await picker.locator('option').allTextContents();
    expect(options.join('|')).to.contain('1 in / 2 out credits per 1,000 tokens').and.contain('1 in / 4 out credits per 1,000 tokens');
    await picker.selectOption('openai-compatible');
    await student.getByLabel('Title (optional)').fill('Markdown check');
    await student.getByRole('button', { name: 'New chat' }).click();
    await student.getByRole('heading', { name: 'Markdown check' }).waitFor();
    await student.locator('.session-list a[aria-current="page"]').getByText('Markdown check').waitFor();
    await checkScreen(student, '07-new-chat');

    await student.getByLabel('Your message').fill(HOSTILE);
    await student.getByRole('button', { name: 'Send' }).click();
    const reply = student.locator('article.message.assistant').last();
    await reply.locator('xpath=self::*[@data-status="complete"]').waitFor({ timeout: 30_000 });
    const body = reply.locator('.message-body');
    const text = (await body.textContent()) ?? '';
    expect(text).to.contain('<script>window.__pwned = "script"</script>');
    expect(text).to.contain('<img src="x" onerror="window.__pwned = \'img\'">');
    expect(text).to.contain('[click me](javascript:window.__pwned=1)');
    expect(text).to.contain('<a href="javascript:alert(1)">raw link</a>');
    expect(await body.locator('script, img, iframe, [onerror], [onclick]').count(), 'no element from the model output').to.equal(0);
    expect(await body.locator('a[href^="javascript"]').count()).to.equal(0);
    expect(await body.locator('strong').textContent()).to.equal('bold');
    expect(await body.locator('a[href="https://example.com/"]').getAttribute('rel')).to.contain('noopener');
    expect(await student.evaluate(() => (globalThis as unknown as { __pwned?: unknown }).__pwned)).to.equal(undefined);

    const charged = Number(await reply.locator('[data-credits]').getAttribute('data-credits'));
    expect(charged).to.be.greaterThan(0);
    await student.locator(`#balance-available[data-available="${CREDITS - charged}"]`).waitFor();
    const balance = await api<{ available: number; reserved: number }>(gw, 'GET', `/api/credits/balance?userId=${studentId}`, { token: admin.accessToken });
    expect(balance.body).to.include({ available: CREDITS - charged, reserved: 0 });
    await checkScreen(student, '08-reply-rendered');
    expect(studentErrors, 'no CSP report, no script error').to.deep.equal([]);
  });

  it('streams a long local reply live, shows the supervisor’s feedback and interrupt in the chat, and charges exactly what was produced', async () => {
    // the admin makes the supervisor responsible for the new user, found by name and email (no raw ids)
    const { page: adminPage, errors: adminErrors } = await newPage(browser);
    await signInThroughForm(adminPage, gw, admin.email, admin.password);
    await adminPage.getByText(`Welcome, ${admin.username}.`).waitFor();
    await adminPage.getByLabel('Supervisor (name or email)').fill(supervisor.email);
    await adminPage.getByLabel('Student (name or email)').fill(person.username);
    await adminPage.getByRole('button', { name: 'Create', exact: true }).click();
    await adminPage.locator('#status').getByText('Relationship created.').waitFor();
    await adminPage.locator('#relationships-table tbody tr').filter({ hasText: person.username }).filter({ hasText: supervisor.username }).waitFor();
    await checkScreen(adminPage, '08a-dashboard-relationship');
    expect(adminErrors).to.deep.equal([]);
    await adminPage.close();
    const before = await balanceShown(student);
    await student.getByLabel('Model').selectOption('local-dev');
    await student.getByLabel('Title (optional)').fill('Long story');
    await student.getByRole('button', { name: 'New chat' }).click();
    await student.getByRole('heading', { name: 'Long story' }).waitFor();
    const sessionId = decodeURIComponent(new URL(student.url()).pathname.split('/').pop() ?? '');
    await student.getByLabel('Your message').fill('Tell me a very long story');
    await student.getByRole('button', { name: 'Send' }).click();
    const reply = student.locator('article.message.assistant').last();
    const replyLength = async () => ((await reply.locator('.message-body').textContent()) ?? '').length;
    await waitFor(async () => (await replyLength()) > 0, 'the reply to start', 15_000);
    const seen = await replyLength();
    await waitFor(async () => (await replyLength()) > seen, 'the reply to keep growing as it streams', 15_000);
    await student.getByRole('button', { name: 'Stop' }).waitFor();
    await student.locator('#balance-available').locator('xpath=..').getByText('reserved').waitFor();
    await screenshot(student, OUTPUT_DIR, '09-streaming.png');

    // the supervisor watches the same reply in the dashboard
    const { page: dashboard, errors: dashboardErrors } = await newPage(browser);
    await signInThroughForm(dashboard, gw, supervisor.email, supervisor.password);
    const row = dashboard.locator(`tr[data-student-id="${studentId}"]`);
    await row
      .locator(`li[data-session-id="${sessionId}"]`)
      .getByRole('button', { name: `Watch ${person.username}'s ` })
      .click();
    const transcript = dashboard.locator('#transcript');
    await waitFor(async () => ((await transcript.textContent()) ?? '').length > 0, 'the dashboard transcript to fill', 15_000);

    await dashboard.getByLabel('Feedback to the student').fill('Good start; keep it *short*, please.');
    await dashboard.getByRole('button', { name: 'Send feedback' }).click();
    const feedback = student.locator('article.message.supervisor');
    await feedback.getByText('Good start; keep it *short*, please.').waitFor();
    expect(await feedback.locator('.message-author').textContent()).to.equal(`Feedback from Supervisor ${supervisor.username}`);
    expect(await reply.getAttribute('data-status'), 'the reply still streams when the feedback lands').to.equal('streaming');
    await checkScreen(dashboard, '10-dashboard-watching');
    await checkScreen(student, '11-feedback-live');

    await dashboard.getByLabel('Interrupt reason (optional)').fill('Off-topic, stop here');
    await dashboard.getByRole('button', { name: 'Interrupt' }).click();
    await reply.locator('xpath=self::*[@data-status="interrupted"]').waitFor({ timeout: 15_000 });
    expect(await reply.textContent()).to.contain(`Stopped by ${supervisor.username}: Off-topic, stop here`);
    await dashboard.locator('#watch-state').getByText('interrupted', { exact: true }).waitFor();
    await checkScreen(dashboard, '12-dashboard-interrupted');

    const charged = Number(await reply.locator('[data-credits]').getAttribute('data-credits'));
    expect(charged).to.be.greaterThan(0);
    await student.locator(`#balance-available[data-available="${before - charged}"]`).waitFor();
    const settled = await api<{ available: number; reserved: number }>(gw, 'GET', `/api/credits/balance?userId=${studentId}`, { token: admin.accessToken });
    expect(settled.body).to.include({ available: before - charged, reserved: 0 });
    await assertLedgerInvariant(platform, studentId);
    await checkScreen(student, '13-interrupted');

    // reopened later, the chat keeps the feedback where it was given and the stopped reply
    await student.reload();
    await student.locator('article.message.supervisor').getByText('Good start; keep it *short*, please.').waitFor();
    expect(await student.locator('article.message.assistant').last().getAttribute('data-status')).to.equal('interrupted');
    expect(dashboardErrors).to.deep.equal([]);
    await dashboard.close();
  });

  it('attaches a file with the daily quota shown, and sends it with the next message', async () => {
    await student.locator('.session-list a').getByText('Markdown check').click();
    await student.getByRole('heading', { name: 'Markdown check' }).waitFor();
    await student.locator('#quota').getByText('Uploads today: 0 of 10').waitFor();
    await student.locator('#composer-file').setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('Plain **bold** from a file.\n') });
    await student.getByRole('list', { name: 'Attached files' }).getByText('notes.txt').waitFor();
    await student.locator('#quota').getByText('Uploads today: 1 of 10').waitFor();
    const files = await api<{ files: Array<{ id: string; name: string }> }>(gw, 'GET', '/api/chat/files', { token: await studentToken() });
    expect(files.body.files.map((f) => f.name)).to.deep.equal(['notes.txt']);
    await checkScreen(student, '14a-attachment');
    const before = await balanceShown(student);
    const sent = student.waitForRequest((request) => request.url().endsWith('/stream') && request.method() === 'POST');
    await student.getByLabel('Your message').fill('Plain **bold** with the file attached');
    await student.getByRole('button', { name: 'Send' }).click();
    expect(JSON.parse((await sent).postData() ?? '{}')).to.deep.include({ fileIds: [files.body.files[0]?.id] });
    const reply = student.locator('article.message.assistant').last();
    await reply.locator('xpath=self::*[@data-status="complete"]').waitFor({ timeout: 30_000 });
    expect(await student.getByRole('list', { name: 'Attached files' }).count(), 'attachments go with one message').to.equal(0);
    const charged = Number(await reply.locator('[data-credits]').getAttribute('data-credits'));
    await student.locator(`#balance-available[data-available="${before - charged}"]`).waitFor();
  });

  it('shows usage per day and per model over the last 30 days, and the transactions', async () => {
    await student.getByRole('link', { name: 'Usage' }).click();
    await student.getByRole('heading', { name: 'Usage, last 30 days' }).waitFor();
    const stats = await api<{ totals: { credits: number }; byModel: Array<{ modelId: string; credits: number }> }>(
      gw,
      'GET',
      `/api/usage/stats?userId=${studentId}`,
      { token: admin.accessToken },
    );
    expect(stats.body.totals.credits).to.equal(CREDITS - (await balanceShown(student)));
    const today = new Date().toISOString().slice(0, 10);
    await student.locator(`rect[data-day="${today}"][data-value="${stats.body.totals.credits}"]`).waitFor();
    expect(await student.locator('rect.bar[data-day]').count()).to.equal(30);
    for (const model of stats.body.byModel) {
      expect(await student.locator(`tr[data-model-id="${model.modelId}"] .figure`).textContent()).to.equal(String(model.credits));
    }
    expect(stats.body.byModel.map((m) => m.modelId).sort()).to.deep.equal(['local-dev', 'openai-compatible']);
    await student.locator('#transactions-table tbody tr').first().waitFor();
    const types = await student.locator('#transactions-table tbody tr').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-type')));
    expect(types.length).to.be.greaterThanOrEqual(3);
    expect(types.at(-1), 'the allocation is the oldest entry').to.match(/alloc/);
    await checkScreen(student, '14-usage');
  });

  it('creates an API key, shows it once, and sees its last use and spend after a call with it; deletes it', async () => {
    await student.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: gw });
    await student.getByRole('link', { name: 'API keys' }).click();
    await student.getByRole('heading', { name: 'API keys', exact: true }).waitFor();
    await student.getByText('No keys yet.').waitFor();
    await checkScreen(student, '14b-api-keys-empty');
    await student.getByLabel('Name').fill('laptop script');
    await student.getByLabel('Expires in days (optional)').fill('30');
    await student.getByLabel('Credit limit (optional)').fill('500');
    await student.getByRole('button', { name: 'Create key' }).click();
    const key = ((await student.locator('#new-api-key').textContent()) ?? '').trim();
    expect(key).to.match(/^sk-[A-Za-z0-9_-]{43,}$/);
    await student.getByRole('button', { name: 'Copy', exact: true }).click();
    await student.getByText('Copied to the clipboard.').waitFor();
    expect(await student.evaluate('navigator.clipboard.readText()')).to.equal(key);
    const row = student.locator('#api-keys-table tbody tr');
    await row.getByText('laptop script').waitFor();
    expect(await row.locator('code').textContent()).to.equal(`${key.slice(0, 10)}…`);
    expect(await row.locator('.last-used').textContent()).to.equal('Never used');
    expect(await row.locator('.limit').textContent()).to.equal('500 of 500 left');
    await checkScreen(student, '14c-api-key-created');
    await student.getByRole('button', { name: 'Done' }).click();
    expect(await student.locator('body').textContent(), 'the key is shown once').not.to.contain(key);

    // a program calls the OpenAI-compatible API through the gateway with the key
    const before = await api<{ available: number }>(gw, 'GET', `/api/credits/balance?userId=${studentId}`, { token: admin.accessToken });
    const models = await api<{ data: Array<{ id: string }> }>(gw, 'GET', '/v1/models', { token: key });
    expect(models.status).to.equal(200);
    expect(models.body.data.map((m) => m.id)).to.include('openai-compatible');
    const completion = await api<{ usage: { completion_tokens: number } }>(gw, 'POST', '/v1/chat/completions', {
      token: key,
      body: { model: 'openai-compatible', messages: [{ role: 'user', content: 'Plain **bold** text from a script.' }] },
    });
    expect(completion.status, JSON.stringify(completion.body)).to.equal(200);
    const after = await api<{ available: number }>(gw, 'GET', `/api/credits/balance?userId=${studentId}`, { token: admin.accessToken });
    const charged = before.body.available - after.body.available;
    expect(charged).to.be.greaterThan(0);

    await student.getByRole('button', { name: 'Refresh' }).click();
    await row.locator(`.spent[data-charged="${charged}"]`).waitFor();
    expect(await row.locator('.limit').textContent()).to.equal(`${500 - charged} of 500 left`);
    const lastUsed = Date.parse((await row.locator('.last-used').getAttribute('data-last-used')) ?? '');
    expect(lastUsed).to.be.within(Date.now() - 120_000, Date.now() + 5_000);
    await student.evaluate("window.dispatchEvent(new Event('focus'))");
    await student.locator(`#balance-available[data-available="${after.body.available}"]`).waitFor();
    await checkScreen(student, '14d-api-key-used');

    await student.getByRole('button', { name: 'Delete laptop script' }).click();
    await student.getByRole('button', { name: 'Really delete laptop script' }).click();
    await student.getByText('Deleted laptop script').waitFor();
    await student.getByText('No keys yet.').waitFor();
    expect((await api(gw, 'GET', '/v1/models', { token: key })).status, 'a deleted key is refused').to.equal(401);
    await student.getByRole('link', { name: 'Usage' }).click();
    await student.getByRole('heading', { name: 'Usage, last 30 days' }).waitFor();
  });

  it('renews an expired access token silently, then logs out for good', async () => {
    const expired = signAccessToken(
      createKeyring(platform.secrets.JWT_ACCESS_SECRET),
      { sub: studentId, username: person.username, email: person.email, role: 'enduser' },
      { ttlSeconds: -60 },
    );
    const stored = await student.evaluate((token) => {
      const session = JSON.parse(sessionStorage.getItem('webapp.session') ?? 'null') as { accessToken: string; refreshToken: string } | null;
      if (session) sessionStorage.setItem('webapp.session', JSON.stringify({ ...session, accessToken: token }));
      return session;
    }, expired);
    expect(stored).to.not.equal(null);
    const refreshed = student.waitForResponse((response) => response.url().endsWith('/api/auth/refresh'));
    await student.reload();
    expect((await refreshed).status()).to.equal(200);
    await student.getByRole('heading', { name: 'Usage, last 30 days' }).waitFor();
    await student.locator('#balance-available[data-available]:not([data-available=""])').waitFor();
    const renewed = await student.evaluate(() => JSON.parse(sessionStorage.getItem('webapp.session') ?? '{}') as { refreshToken?: string });
    expect(renewed.refreshToken).to.be.a('string').and.not.equal(stored?.refreshToken);

    await student.getByRole('button', { name: 'Log out' }).click();
    await student.getByText('You are logged out.').waitFor();
    expect(await student.evaluate(() => sessionStorage.getItem('webapp.session'))).to.equal(null);
    // the refresh token it held is dead on the server too
    const reuse = await api(gw, 'POST', '/api/auth/refresh', { body: { refreshToken: renewed.refreshToken } });
    expect(reuse.status).to.equal(401);
    // only the expected 401 of the expired token reached the console
    expect(studentErrors.filter((error) => !error.includes('401'))).to.deep.equal([]);
  });

  it('resets a forgotten password through the mailed link', async () => {
    await student.getByRole('link', { name: 'Forgot your password?' }).click();
    await student.getByRole('heading', { name: 'Forgot your password?' }).waitFor();
    await checkScreen(student, '15-forgot');
    await student.getByLabel('Email').fill(person.email);
    await student.getByRole('button', { name: 'Send a reset link' }).click();
    await student.getByText(`If ${person.email} has an account`).waitFor();
    const { link } = await mailedLink('reset-password');
    expect(link.pathname).to.equal('/app/reset-password');
    await student.goto(`${gw}${link.pathname}${link.search}`);
    await student.getByRole('heading', { name: 'Choose a new password' }).waitFor();
    await checkScreen(student, '16-reset');
    const newPassword = `${person.password}-renewed`;
    await student.getByLabel('New password', { exact: true }).fill(newPassword);
    await student.getByLabel('New password again').fill(newPassword);
    await student.getByRole('button', { name: 'Set the new password' }).click();
    await student.getByText('Your password is changed.').waitFor();
    await student.getByLabel('Email or username').fill(person.email);
    await student.getByLabel('Password').fill(newPassword);
    await student.getByRole('button', { name: 'Log in' }).click();
    await student.getByRole('heading', { name: 'Your chats' }).waitFor();
    person.password = newPassword;
  });

  it('works on a phone-sized screen', async () => {
    const { page: phone, errors } = await newPage(browser, { width: 390, height: 844 });
    await phone.goto(`${gw}/app/login`);
    await phone.getByLabel('Email or username').fill(person.email);
    await phone.getByLabel('Password').fill(person.password);
    await phone.getByRole('button', { name: 'Log in' }).click();
    await phone.getByRole('heading', { name: 'Your chats' }).waitFor();
    await phone.locator('.session-list a').getByText('Long story').click();
    await phone.locator('article.message.supervisor').first().waitFor();
    const overflow = async () => phone.evaluate('document.documentElement.scrollWidth - window.innerWidth') as Promise<number>;
    await screenshot(phone, OUTPUT_DIR, '17-phone-chat.png');
    expect(await overflow(), 'no sideways scrolling in a chat').to.be.at.most(0);
    // the composer and the balance are on screen without zooming out
    expect(await phone.getByLabel('Your message').isVisible()).to.equal(true);
    expect(await phone.locator('#balance-available').isVisible()).to.equal(true);
    // the open chat takes the screen; the list is behind a link
    expect(await phone.getByRole('heading', { name: 'Your chats' }).isVisible()).to.equal(false);
    expect(await phone.getByRole('link', { name: '← All chats' }).isVisible()).to.equal(true);
    await checkScreen(phone, '17-phone-chat');
    await phone.getByRole('link', { name: 'Usage' }).click();
    await phone.getByRole('heading', { name: 'Usage, last 30 days' }).waitFor();
    expect(await overflow(), 'no sideways scrolling on the usage page').to.be.at.most(0);
    await checkScreen(phone, '18-phone-usage');
    expect(errors).to.deep.equal([]);
    await phone.close();
    // every screen above (18 of the app, 4 of the dashboard) was checked: none had a serious or critical violation
    expect(Object.keys(a11y).length).to.equal(22);
    expect(Object.values(a11y).flat()).to.deep.equal([]);
  });
});
