import { randomUUID } from 'node:crypto';
import { testActor } from '@platform/shared-types/testing';
import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import { launchChromium, newDashboardPage, screenshot, signInThroughForm } from '../support/browser.ts';
import { waitFor } from '../support/fake-services.ts';
import { startFrontServer } from '../support/front-server.ts';
import { startTestMonitoring, type TestMonitoring } from '../support/monitoring.ts';

const OUTPUT_DIR = new URL('../../test-output/', import.meta.url);

describe('dashboard in headless Chromium (monitoring + same-origin test front)', function () {
  this.timeout(60_000);
  let m: TestMonitoring;
  let front: Awaited<ReturnType<typeof startFrontServer>>;
  let browser: Browser;
  let page: Page;
  let pageErrors: string[] = [];
  const admin = testActor('admin', { username: 'root' });
  const supervisor = testActor('supervisor', { username: 'grace' });
  const student = testActor('enduser', { username: 'linus' });
  const student2 = testActor('enduser', { username: 'ada' });
  const passwords = new Map([
    [supervisor.userId, 'supervisor-password'],
    [admin.userId, 'admin-password'],
  ]);
  const sessionId = `sess-${randomUUID().slice(0, 8)}`;

  before(async function () {
    this.timeout(15 * 60_000); // a fresh machine installs Chromium first
    m = await startTestMonitoring();
    for (const actor of [admin, supervisor, student, student2]) m.fakeAuth.add(actor);
    for (const st of [student, student2]) {
      const response = await fetch(`${m.url}/api/monitoring/relationships`, {
        method: 'POST',
        headers: { ...m.auth.identityHeaders(admin), 'content-type': 'application/json' },
        body: JSON.stringify({ supervisorId: supervisor.userId, studentId: st.userId }),
      });
      expect(response.status).to.equal(201);
    }
    m.accounting.balances.set(student.userId, { available: 250, reserved: 40 });
    m.accounting.balances.set(student2.userId, { available: 15, reserved: 0 });
    m.accounting.active.set(student.userId, [
      { reservationId: randomUUID(), sessionId, modelId: 'local-echo', reservedCredits: 40, startedAt: new Date().toISOString() },
    ]);
    m.chat.open(sessionId, student.userId);
    m.chat.emit(sessionId, 'session', { sessionId, messageId: 'msg-1', reservationId: randomUUID() });
    front = await startFrontServer({ auth: m.auth, monitoringUrl: m.url, fakeAuth: m.fakeAuth, accounting: m.accounting, chat: m.chat, passwords });
    browser = await launchChromium();
    ({ page, pageErrors } = await newDashboardPage(browser));
  });
  after(async () => {
    await browser?.close();
    await front?.close();
    await m?.stop();
  });

  const signIn = (identity: string, password: string) => signInThroughForm(page, front.url, identity, password);

  it('a supervisor signs in, sees students, watches a live stream, sends feedback, allocates credits and interrupts', async () => {
    await signIn(supervisor.email, 'wrong-password');
    await page.getByText('Wrong email or password').waitFor();
    await screenshot(page, OUTPUT_DIR, 'dashboard-login.png');
    await page.getByLabel('Password').fill('supervisor-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText(`Welcome, ${supervisor.username}.`).waitFor();

    const row = page.locator(`tr[data-student-id="${student.userId}"]`);
    await row.getByRole('rowheader', { name: student.username }).waitFor();
    expect(await row.textContent())
      .to.contain('250')
      .and.contain(student.email)
      .and.contain('local-echo');
    await page.locator(`tr[data-student-id="${student2.userId}"]`).getByText('none').waitFor();

    await row
      .locator(`li[data-session-id="${sessionId}"]`)
      .getByRole('button', { name: `Watch ${student.username}'s local-echo session` })
      .click();
    await page.locator('#watch-state').getByText('streaming').waitFor();
    await waitFor(() => m.chat.openObservers === 1, 'the relay to open chat’s observe stream');
    m.chat.emit(sessionId, 'delta', { text: 'The mitochondria ' });
    m.chat.emit(sessionId, 'delta', { text: 'is the powerhouse of the cell.' });
    await page.locator('#transcript').getByText('The mitochondria is the powerhouse of the cell.').waitFor();

    await page.getByLabel('Feedback to the student').fill('Cite your sources, please.');
    await page.getByRole('button', { name: 'Send feedback' }).click();
    await page.locator('#watch-events').getByText('Feedback: Cite your sources, please.').waitFor();
    expect(front.feedback).to.deep.equal([{ sessionId, message: 'Cite your sources, please.', by: supervisor.userId }]);

    await page.getByLabel('Student', { exact: true }).selectOption(student.userId);
    await page.getByLabel('Credits', { exact: true }).fill('50');
    await page.getByLabel('Notes (optional)').fill('weekly top-up');
    await page.getByRole('button', { name: 'Allocate' }).click();
    await page.getByText(`Allocated 50 credits to ${student.username}; new balance 300.`).waitFor();
    expect(front.allocations).to.have.length(1);
    expect(front.allocations[0]?.key).to.match(/^[0-9a-f-]{36}$/);
    expect(front.allocations[0]?.body).to.deep.equal({ userId: student.userId, credits: 50, notes: 'weekly top-up' });
    await row.getByText('300').waitFor();

    await page.getByLabel('Interrupt reason (optional)').fill('Off-topic');
    await page.getByRole('button', { name: 'Interrupt' }).click();
    await page.locator('#watch-state').getByText('interrupted').waitFor();
    await page.locator('#watch-events').getByText('Interrupted: Off-topic').waitFor();
    expect(front.interrupts).to.deep.equal([{ sessionId, reason: 'Off-topic', by: supervisor.userId }]);
    await waitFor(() => m.chat.openObservers === 0 && m.service.monitoring.relay.openCount === 0, 'the relay to close after the terminal event');

    await screenshot(page, OUTPUT_DIR, 'dashboard-supervisor.png');
    expect(await page.locator('#admin-view').isVisible()).to.equal(false);
    expect(pageErrors.filter((e) => !e.includes('401'))).to.deep.equal([]);
  });

  it('an admin gets the console: users, relationships, and deletes a relationship', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await signIn(admin.username, 'admin-password');
    await page.getByRole('heading', { name: 'Admin console' }).waitFor();
    await page.locator('#users-table').getByRole('rowheader', { name: student2.username }).waitFor();
    const relationships = page.locator('#relationships-table tbody tr');
    await waitFor(async () => (await relationships.count()) === 2, 'two relationships listed');

    await page.getByRole('button', { name: `Delete ${supervisor.username} supervising ${student2.username}` }).click();
    await page.getByText('Relationship deleted.').waitFor();
    await waitFor(async () => (await relationships.count()) === 1, 'one relationship left');
    const check = await fetch(`${m.url}/internal/relationships/check?supervisorId=${supervisor.userId}&studentId=${student2.userId}`, {
      headers: m.auth.serviceHeaders('chat', 'monitoring'),
    });
    expect(await check.json()).to.deep.equal({ supervises: false });

    await page.getByLabel(`Role of ${student2.username}`).selectOption('supervisor');
    await page.getByText(`Updated ${student2.username}.`).waitFor();
    expect(m.fakeAuth.users.get(student2.userId)?.role).to.equal('supervisor');
    // models and chatflows with their access and prices
    const model = page.locator('#models-table tr[data-model-id="local-dev"]');
    await model.getByRole('rowheader').waitFor();
    expect(await model.textContent())
      .to.contain('everyone')
      .and.contain('1 / 2')
      .and.contain('enabled');
    const flow = page.locator('#chatflows-table tr[data-chatflow-id="flow-1"]');
    await flow.getByText('admins only').waitFor();
    // allowed users by name or email, never by id; adding the same user twice keeps one entry
    for (let twice = 0; twice < 2; twice++) {
      await page.getByLabel('Add a user to Tutor (name or email)').fill(student.email);
      await page.getByRole('button', { name: 'Add the user to Tutor' }).click();
      await flow.getByText(`users: ${student.username}`).waitFor();
    }
    expect(front.catalog.chatflows[0]?.allowedUsers).to.deep.equal([student.userId]);
    expect(await flow.textContent()).not.to.contain(student.userId);
    await flow.getByRole('button', { name: `Remove ${student.username} from Tutor` }).waitFor();
    await screenshot(page, OUTPUT_DIR, 'dashboard-admin.png');
    expect(pageErrors.filter((e) => !e.includes('401'))).to.deep.equal([]);
  });
});
