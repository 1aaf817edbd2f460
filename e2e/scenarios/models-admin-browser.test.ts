// The dashboard's admin screen of models and Flowise chatflows (issue 18) in headless Chromium against the real
// platform: chat, accounting and the gateway are separate processes; Flowise, the only third party, is a small
// HTTP server of this test that chat is pointed at (FLOWISE_URL).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { creditsFor } from '@platform/shared-types';
import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import { launchChromium, newDashboardPage, screenshot, signInThroughForm } from '../../monitoring/test/support/browser.ts';
import { waitFor } from '../../monitoring/test/support/wait.ts';
import { api, createUser, items, type Session } from '../support/client.ts';
import { assertLedgerInvariant } from '../support/ledger.ts';
import { type Platform, startPlatform } from '../support/platform.ts';

const OUTPUT_DIR = new URL('../test-output/', import.meta.url);
const FLOWISE_KEY = 'fw-e2e-admin-key';
const FLOW_ID = '0b8a9c1d-2e3f-4a5b-8c6d-7e8f9a0b1c2d';

/** Flowise's chatflow list and prediction API, answered only with our API key */
function startFlowise(flows: Array<{ id: string; name: string }>) {
  const predictions: string[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    if (req.headers.authorization !== `Bearer ${FLOWISE_KEY}`) return res.writeHead(401).end();
    if (req.method === 'GET' && req.url === '/api/v1/chatflows') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify(flows.map((f) => ({ ...f, deployed: true, isPublic: true, flowData: '{}' }))));
    }
    const prediction = /^\/api\/v1\/prediction\/([^/]+)$/.exec(req.url ?? '');
    if (req.method === 'POST' && prediction) {
      predictions.push(decodeURIComponent(prediction[1] as string));
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const frames = [
        { event: 'token', data: 'Tutor ' },
        { event: 'token', data: 'here.' },
        { event: 'usageMetadata', data: { input_tokens: 7, output_tokens: 3 } },
        { event: 'end', data: '[DONE]' },
      ];
      return res.end(frames.map((frame) => `data: ${JSON.stringify(frame)}\n\n`).join(''));
    }
    res.writeHead(404).end();
  });
  return new Promise<{ url: string; predictions: string[]; close: () => Promise<void> }>((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        predictions,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      }),
    ),
  );
}

describe('admin screen of models and chatflows in headless Chromium through the gateway', function () {
  this.timeout(120_000);
  let flowise: Awaited<ReturnType<typeof startFlowise>>;
  let platform: Platform;
  let gw: string;
  let admin: Session;
  let student: Session;
  let browser: Browser;
  let page: Page;
  let pageErrors: string[] = [];

  before(async function () {
    this.timeout(15 * 60_000); // a fresh machine installs Chromium first
    flowise = await startFlowise([{ id: FLOW_ID, name: 'Physics tutor' }]);
    platform = await startPlatform({ FLOWISE_URL: flowise.url, FLOWISE_API_KEY: FLOWISE_KEY, CHATFLOW_SYNC_MS: '0' });
    gw = platform.gatewayUrl;
    admin = await createUser(platform, 'admin');
    student = await createUser(platform, 'enduser', 'flow-stu');
    browser = await launchChromium();
    ({ page, pageErrors } = await newDashboardPage(browser));
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && page) await screenshot(page, OUTPUT_DIR, 'models-admin-e2e-failure.png');
  });
  after(async () => {
    await browser?.close();
    await platform?.stop();
    await flowise?.close();
  });

  it('an admin syncs chatflows, sees models and chatflows with access and accounting prices, and opens a chatflow to a student', async () => {
    await api(gw, 'POST', '/api/credits/allocate', { token: admin.accessToken, body: { userId: student.userId, credits: 1000 } });
    const predict = () =>
      api<{ code?: string; text?: string; credits?: number }>(gw, 'POST', '/api/v1/chat/predict', {
        token: student.accessToken,
        body: { chatflow_id: FLOW_ID, question: 'What is inertia?' },
      });

    await signInThroughForm(page, gw, admin.username, admin.password);
    await page.getByRole('heading', { name: 'Admin console' }).waitFor();
    // the seeded catalog with the prices accounting holds
    const prices = items<{ modelId: string; inputPer1k: number; outputPer1k: number }>(
      (await api(gw, 'GET', '/api/models/prices', { token: admin.accessToken })).body,
    );
    const localPrice = prices.find((p) => p.modelId === 'local-dev');
    expect(localPrice, 'accounting prices local-dev').to.not.equal(undefined);
    const localRow = page.locator('#models-table tr[data-model-id="local-dev"]');
    await localRow.getByRole('rowheader').waitFor();
    expect(await localRow.textContent())
      .to.contain(`${localPrice?.inputPer1k} / ${localPrice?.outputPer1k}`)
      .and.contain('enabled');
    await page.getByText('No chatflows yet').waitFor();

    // sync through the screen: the new chatflow is listed private, priced in accounting
    await page.getByRole('button', { name: 'Sync with Flowise' }).click();
    await page.locator('#sync-report').getByText('added: Physics tutor').waitFor();
    const flowRow = page.locator(`#chatflows-table tr[data-chatflow-id="${FLOW_ID}"]`);
    await flowRow.getByText('admins only').waitFor();
    const flowPrice = items<{ modelId: string; inputPer1k: number; outputPer1k: number }>(
      (await api(gw, 'GET', '/api/models/prices', { token: admin.accessToken })).body,
    ).find((p) => p.modelId === `chatflow-${FLOW_ID}`);
    expect(flowPrice, 'accounting learned the chatflow').to.not.equal(undefined);
    expect(await flowRow.textContent())
      .to.contain(`${flowPrice?.inputPer1k} / ${flowPrice?.outputPer1k}`)
      .and.contain('available');

    // private: the student is refused, and Flowise never asked
    const refused = await predict();
    expect(refused.status, JSON.stringify(refused.body)).to.equal(403);
    expect(refused.body.code).to.equal('FORBIDDEN');
    expect(flowise.predictions).to.deep.equal([]);

    // the admin adds the student in the screen; the next request is served and charged at accounting's price
    await page.getByLabel('Add a user to Physics tutor (name or email)').fill(student.email);
    await page.getByRole('button', { name: 'Add the user to Physics tutor' }).click();
    await flowRow.getByText(`users: ${student.username}`).waitFor();
    await page.locator('#status').getByText('Chatflow Physics tutor updated.').waitFor();
    const served = await predict();
    expect(served.status, JSON.stringify(served.body)).to.equal(200);
    expect(served.body.text).to.equal('Tutor here.');
    expect(served.body.credits).to.equal(creditsFor(flowPrice as { inputPer1k: number; outputPer1k: number }, 7, 3));
    expect(flowise.predictions).to.deep.equal([FLOW_ID]);
    const balance = await api<{ available: number; reserved: number }>(gw, 'GET', '/api/credits/balance', { token: student.accessToken });
    expect(balance.body).to.include({ available: 1000 - (served.body.credits as number), reserved: 0 });
    await assertLedgerInvariant(platform, student.userId);

    // a model disabled in the screen disappears from the student's list at once
    await localRow.getByRole('button', { name: 'Disable model local-dev' }).click();
    await localRow.getByText('disabled').waitFor();
    await waitFor(
      async () => {
        const listed = items<{ id: string }>((await api(gw, 'GET', '/api/chat/models', { token: student.accessToken })).body).map((m) => m.id);
        return !listed.includes('local-dev') && listed.includes(`chatflow-${FLOW_ID}`);
      },
      'the student list to drop local-dev and show the chatflow',
      10_000,
    );
    await screenshot(page, OUTPUT_DIR, 'models-admin-e2e.png');
    await localRow.getByRole('button', { name: 'Enable model local-dev' }).click();
    await localRow.getByText('enabled').waitFor();
    expect(pageErrors).to.deep.equal([]);
  });

  it('the screen is not offered to a supervisor, and the routes behind it refuse one', async () => {
    const supervisor = await createUser(platform, 'supervisor', 'flow-sup');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await signInThroughForm(page, gw, supervisor.email, supervisor.password);
    await page.getByText(`Welcome, ${supervisor.username}.`).waitFor();
    expect(await page.locator('#models-table').isVisible()).to.equal(false);
    for (const [method, path] of [
      ['GET', '/api/chat/models/catalog'],
      ['GET', '/api/chat/chatflows'],
      ['POST', '/api/chat/chatflows/sync'],
    ] as const)
      expect((await api(gw, method, path, { token: supervisor.accessToken })).status, `${method} ${path}`).to.equal(403);
    const patch = await api(gw, 'PATCH', `/api/chat/chatflows/${FLOW_ID}`, { token: supervisor.accessToken, body: { isPublic: true } });
    expect(patch.status).to.equal(403);
  });
});
