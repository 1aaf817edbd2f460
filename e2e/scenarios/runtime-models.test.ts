// Models added by an admin at runtime (issue 18), through the public gateway only: listed, priced by accounting,
// metered exactly on the first stream, refused once disabled; none of it reachable by non-admins.
import { creditsFor } from '@platform/shared-types';
import { expect } from 'chai';
import { api, createUser, items, type Session, type SseEvent, sse } from '../support/client.ts';
import { assertLedgerInvariant } from '../support/ledger.ts';
import { type Platform, startPlatform } from '../support/platform.ts';

const MODEL = 'local-runtime-e2e';
const definition = {
  id: MODEL,
  displayName: 'Runtime local (e2e)',
  provider: 'local',
  upstreamModel: 'local-dev',
  defaultMaxOutputTokens: 60,
  maxOutputTokens: 200,
  contextTokens: 8192,
  access: { public: true },
  prices: { inputPer1k: 3, outputPer1k: 7 },
};

async function waitFor<T>(check: () => Promise<T | undefined>, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('models managed at runtime, through the gateway', () => {
  let platform: Platform;
  let admin: Session;
  let gw: string;

  before(async function () {
    this.timeout(180_000);
    platform = await startPlatform({ LOCAL_MODEL_TOKENS: '30', LOCAL_MODEL_TOKEN_DELAY_MS: '5' });
    gw = platform.gatewayUrl;
    admin = await createUser(platform, 'admin');
  });
  after(async () => {
    await platform?.stop();
  });

  it('non-admins cannot add a model (403 for enduser and supervisor, 401 anonymous); nothing is written', async () => {
    const enduser = await createUser(platform, 'enduser', 'rt-matrix');
    const supervisor = await createUser(platform, 'supervisor', 'rt-matrix');
    const body = { ...definition, id: 'local-sneaky' };
    for (const session of [enduser, supervisor]) {
      expect((await api(gw, 'POST', '/api/chat/models', { token: session.accessToken, body })).status).to.equal(403);
      expect((await api(gw, 'PATCH', '/api/chat/models/local-dev', { token: session.accessToken, body: { enabled: false } })).status).to.equal(403);
      expect((await api(gw, 'GET', '/api/chat/chatflows', { token: session.accessToken })).status).to.equal(403);
    }
    // identity headers a client sends are stripped by the gateway, never trusted
    const forged = await api(gw, 'POST', '/api/chat/models', {
      token: enduser.accessToken,
      body,
      headers: { 'x-user-role': 'admin', 'X-User-Id': admin.userId },
    });
    expect(forged.status).to.equal(403);
    expect((await api(gw, 'POST', '/api/chat/models', { body })).status).to.equal(401);
    const prices = items<{ modelId: string }>((await api(gw, 'GET', '/api/models/prices', { token: admin.accessToken })).body);
    expect(prices.map((p) => p.modelId)).to.not.include('local-sneaky');
  });

  it('a model an admin adds is listed, priced by accounting, metered exactly on its first stream, and refused once disabled', async () => {
    const created = await api<{ prices: unknown }>(gw, 'POST', '/api/chat/models', { token: admin.accessToken, body: definition });
    expect(created.status, JSON.stringify(created.body)).to.equal(201);
    // accounting learned it, with the first prices given
    const priced = items<{ modelId: string; inputPer1k: number; outputPer1k: number }>(
      (await api(gw, 'GET', '/api/models/prices', { token: admin.accessToken })).body,
    );
    expect(priced.find((p) => p.modelId === MODEL)).to.include({ inputPer1k: 3, outputPer1k: 7 });
    // the admin changes the price in accounting, the one price source; chat lists what accounting holds
    expect((await api(gw, 'PUT', `/api/models/prices/${MODEL}`, { token: admin.accessToken, body: { inputPer1k: 5, outputPer1k: 9 } })).status).to.equal(200);
    const student = await createUser(platform, 'enduser', 'rt-student');
    const listed = await waitFor(async () => {
      const models = items<{ id: string; prices: { inputPer1k: number; outputPer1k: number } }>(
        (await api(gw, 'GET', '/api/chat/models', { token: student.accessToken })).body,
      );
      const model = models.find((m) => m.id === MODEL);
      return model?.prices.inputPer1k === 5 ? model : undefined;
    }, 'the listing to show the new price');
    expect(listed.prices).to.deep.equal({ inputPer1k: 5, outputPer1k: 9 });

    await api(gw, 'POST', '/api/credits/allocate', { token: admin.accessToken, body: { userId: student.userId, credits: 1000 } });
    const session = await api<{ session: { id: string } }>(gw, 'POST', '/api/chat/sessions', { token: student.accessToken, body: { modelId: MODEL } });
    expect(session.status, JSON.stringify(session.body)).to.equal(201);
    const events: SseEvent[] = [];
    for await (const event of sse(gw, `/api/chat/sessions/${session.body.session.id}/stream`, {
      token: student.accessToken,
      body: { message: 'first words for a new model' },
    }))
      events.push(event);
    const done = events.at(-1) as SseEvent;
    expect(done.event).to.equal('done');
    const usage = done.data.usage as { inputTokens: number; outputTokens: number };
    expect(usage.outputTokens).to.be.greaterThan(0);
    const expected = creditsFor({ inputPer1k: 5, outputPer1k: 9 }, usage.inputTokens, usage.outputTokens);
    expect(done.data.credits).to.equal(expected);
    const balance = await api<{ available: number; reserved: number }>(gw, 'GET', '/api/credits/balance', { token: student.accessToken });
    expect(balance.body).to.include({ available: 1000 - expected, reserved: 0 });
    const charges = items<{ type: string; amount?: number; credits?: number }>(
      (await api(gw, 'GET', '/api/credits/transactions', { token: student.accessToken })).body,
    ).filter((t) => t.type === 'charge');
    expect(charges).to.have.length(1);
    await assertLedgerInvariant(platform, student.userId);

    // disabled: refused for new sessions and streams at once, and gone from the listing
    expect((await api(gw, 'PATCH', `/api/chat/models/${MODEL}`, { token: admin.accessToken, body: { enabled: false } })).status).to.equal(200);
    const refused = await api<{ code: string }>(gw, 'POST', '/api/chat/sessions', { token: student.accessToken, body: { modelId: MODEL } });
    expect(refused.status).to.equal(403);
    expect(refused.body.code).to.equal('FORBIDDEN');
    const again = await api<{ code: string }>(gw, 'POST', `/api/chat/sessions/${session.body.session.id}/stream`, {
      token: student.accessToken,
      body: { message: 'more' },
    });
    expect(again.status).to.equal(403);
    const after = items<{ id: string }>((await api(gw, 'GET', '/api/chat/models', { token: student.accessToken })).body);
    expect(after.map((m) => m.id)).to.not.include(MODEL);
    const balanceAfter = await api<{ available: number }>(gw, 'GET', '/api/credits/balance', { token: student.accessToken });
    expect(balanceAfter.body.available).to.equal(1000 - expected);
  });

  it('a model without a price in accounting is never usable: refused when added, refused when enabled, usable once enabled with its first prices', async () => {
    const id = 'local-unpriced-e2e';
    const bare = { ...definition, id, displayName: 'Unpriced (e2e)', prices: undefined };
    const student = await createUser(platform, 'enduser', 'rt-unpriced');
    await api(gw, 'POST', '/api/credits/allocate', { token: admin.accessToken, body: { userId: student.userId, credits: 1000 } });
    const pricedIds = async () =>
      items<{ modelId: string }>((await api(gw, 'GET', '/api/models/prices', { token: admin.accessToken })).body).map((p) => p.modelId);

    const refused = await api<{ code: string }>(gw, 'POST', '/api/chat/models', { token: admin.accessToken, body: bare });
    expect(refused.status, JSON.stringify(refused.body)).to.equal(409);
    expect(refused.body.code).to.equal('CONFLICT');
    expect(await pricedIds()).to.not.include(id);
    expect((await api(gw, 'POST', '/api/chat/sessions', { token: student.accessToken, body: { modelId: id } })).status).to.equal(404);

    expect((await api(gw, 'POST', '/api/chat/models', { token: admin.accessToken, body: { ...bare, enabled: false } })).status).to.equal(201);
    // real accounting has no price to change for it, and chat will not enable it without one
    expect((await api(gw, 'PUT', `/api/models/prices/${id}`, { token: admin.accessToken, body: { inputPer1k: 4, outputPer1k: 8 } })).status).to.equal(404);
    const notEnabled = await api<{ code: string }>(gw, 'PATCH', `/api/chat/models/${id}`, { token: admin.accessToken, body: { enabled: true } });
    expect(notEnabled.status).to.equal(409);
    const session = await api<{ code: string }>(gw, 'POST', '/api/chat/sessions', { token: student.accessToken, body: { modelId: id } });
    expect(session.status).to.equal(403);
    expect(items<{ id: string }>((await api(gw, 'GET', '/api/chat/models', { token: student.accessToken })).body).map((m) => m.id)).to.not.include(id);
    expect(await pricedIds()).to.not.include(id);

    const enabled = await api<{ prices: unknown }>(gw, 'PATCH', `/api/chat/models/${id}`, {
      token: admin.accessToken,
      body: { enabled: true, prices: { inputPer1k: 4, outputPer1k: 8 } },
    });
    expect(enabled.status, JSON.stringify(enabled.body)).to.equal(200);
    expect(enabled.body.prices).to.deep.equal({ inputPer1k: 4, outputPer1k: 8 });
    expect(await pricedIds()).to.include(id);
    const created = await api<{ session: { id: string } }>(gw, 'POST', '/api/chat/sessions', { token: student.accessToken, body: { modelId: id } });
    expect(created.status, JSON.stringify(created.body)).to.equal(201);
    const events: SseEvent[] = [];
    for await (const event of sse(gw, `/api/chat/sessions/${created.body.session.id}/stream`, { token: student.accessToken, body: { message: 'now priced' } }))
      events.push(event);
    const done = events.at(-1) as SseEvent;
    expect(done.event).to.equal('done');
    const usage = done.data.usage as { inputTokens: number; outputTokens: number };
    expect(done.data.credits).to.equal(creditsFor({ inputPer1k: 4, outputPer1k: 8 }, usage.inputTokens, usage.outputTokens));
    await assertLedgerInvariant(platform, student.userId);
  });
});
