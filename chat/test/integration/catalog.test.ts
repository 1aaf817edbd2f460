import { type Actor, creditsFor } from '@platform/shared-types';
import { expectProblem, testActor } from '@platform/shared-types/testing';
import { expect } from 'chai';
import nock from 'nock';
import { createSession, fetch, type Platform, type SseEvent, startPlatform, streamMessage } from '../support/harness.ts';

const FLOWISE = 'http://flowise-admin.test';
const FLOWISE_KEY = 'fw-admin-key';
const FLOW_A = '6f1c2d3e-0000-4000-8000-00000000000a';
const FLOW_B = '6f1c2d3e-0000-4000-8000-00000000000b';
const FLOW_C = '6F1C2D3E-0000-4000-8000-00000000000C';
const sse = (...items: unknown[]) => items.map((item) => `data: ${JSON.stringify(item)}\n\n`).join('');

/** Flowise answers this chatflow list (only with our API key) */
function flowiseList(flows: Array<{ id: string; name: string; deployed?: boolean }>, delayMs = 0) {
  return nock(FLOWISE, { reqheaders: { authorization: `Bearer ${FLOWISE_KEY}` } })
    .get('/api/v1/chatflows')
    .delay(delayMs)
    .reply(
      200,
      flows.map((f) => ({ ...f, flowData: '{}', isPublic: true, createdDate: '2026-01-01T00:00:00.000Z' })),
    );
}

interface ModelView {
  id: string;
  prices: { inputPer1k: number; outputPer1k: number } | null;
}
interface ChatflowView {
  id: string;
  modelId: string;
  name: string;
  displayName: string;
  available: boolean;
  isPublic: boolean;
  allowedUsers: string[];
  prices: { inputPer1k: number; outputPer1k: number } | null;
}

const localModel = {
  provider: 'local',
  upstreamModel: 'local-dev',
  defaultMaxOutputTokens: 100,
  maxOutputTokens: 400,
  contextTokens: 8192,
};

describe('models and Flowise chatflows managed at runtime, on two chat instances', () => {
  let platform: Platform;
  const admin = testActor('admin');
  const user = testActor('enduser');
  const at = (instance: number, path: string) => `${platform.instances[instance]?.url}${path}`;
  const call = (instance: number, actor: Actor, method: string, path: string, body?: unknown) =>
    fetch(at(instance, path), { method, headers: platform.json(actor), body: body === undefined ? undefined : JSON.stringify(body) });
  const modelsOf = async (instance: number, actor: Actor) =>
    ((await (await fetch(at(instance, '/api/chat/models'), { headers: platform.headers(actor) })).json()) as { models: ModelView[] }).models;
  const openAiModelsOf = async (instance: number, actor: Actor) =>
    ((await (await fetch(at(instance, '/v1/models'), { headers: platform.headers(actor) })).json()) as { data: Array<{ id: string }> }).data.map((m) => m.id);
  const chatflows = async () => ((await (await call(1, admin, 'GET', '/api/chat/chatflows')).json()) as { chatflows: ChatflowView[] }).chatflows;

  before(async () => {
    platform = await startPlatform({
      count: 2,
      // a cache TTL far longer than the test: what makes a change hold at once is the version key, not expiry
      env: {
        FLOWISE_URL: FLOWISE,
        FLOWISE_API_KEY: FLOWISE_KEY,
        CHATFLOW_SYNC_MS: '0',
        MODELS_CACHE_TTL_MS: '600000',
        LOCAL_MODEL_TOKENS: '40',
        LOCAL_MODEL_TOKEN_DELAY_MS: '25',
      },
    });
  });
  afterEach(() => {
    nock.cleanAll();
  });
  after(async () => {
    await platform.stop(); // nock stays active: other suites in this process use it too
  });

  it('sync adds new chatflows (private, priced in accounting), renames, retires and restores them, and reports it', async () => {
    flowiseList([
      { id: FLOW_A, name: 'Alpha', deployed: true },
      { id: FLOW_B, name: 'Beta' },
    ]);
    const first = await call(0, admin, 'POST', '/api/chat/chatflows/sync');
    expect(first.status).to.equal(200);
    const report = (await first.json()) as { added: unknown[]; renamed: unknown[]; retired: string[] };
    expect(report.added).to.deep.equal([
      { id: FLOW_A, name: 'Alpha' },
      { id: FLOW_B, name: 'Beta' },
    ]);
    expect(report.retired).to.deep.equal([]);
    let flows = await chatflows();
    expect(flows.map((f) => [f.id, f.name, f.available, f.isPublic])).to.deep.equal([
      [FLOW_A, 'Alpha', true, false],
      [FLOW_B, 'Beta', true, false],
    ]);
    const modelA = (flows[0] as ChatflowView).modelId;
    expect(platform.accounting.priceOf(modelA)).to.deep.equal({ inputPer1k: 2, outputPer1k: 4 });
    expect((flows[0] as ChatflowView).prices).to.deep.equal({ inputPer1k: 2, outputPer1k: 4 });

    flowiseList([{ id: FLOW_A, name: 'Alpha v2' }]);
    const second = (await (await call(1, admin, 'POST', '/api/chat/chatflows/sync')).json()) as { added: unknown[]; renamed: unknown[]; retired: string[] };
    expect(second).to.deep.include({ added: [], renamed: [{ id: FLOW_A, from: 'Alpha', to: 'Alpha v2' }], retired: [FLOW_B] });
    flows = await chatflows();
    expect(flows.map((f) => [f.id, f.name, f.available])).to.deep.equal([
      [FLOW_A, 'Alpha v2', true],
      [FLOW_B, 'Beta', false],
    ]);
    // a retired chatflow cannot start anything, even for an admin, but it is kept
    await expectProblem(await call(1, admin, 'POST', '/api/chat/sessions', { modelId: (flows[1] as ChatflowView).modelId }), 403, 'FORBIDDEN');

    flowiseList([
      { id: FLOW_A, name: 'Alpha v2' },
      { id: FLOW_B, name: 'Beta' },
    ]);
    const third = (await (await call(0, admin, 'POST', '/api/chat/chatflows/sync')).json()) as { restored: string[]; unchanged: number };
    expect(third).to.deep.include({ restored: [FLOW_B], unchanged: 1 });
    expect((await chatflows()).every((f) => f.available)).to.equal(true);
  });

  it('answers 502 when Flowise fails, and changes nothing', async () => {
    nock(FLOWISE).get('/api/v1/chatflows').reply(500, 'boom');
    const before = await chatflows();
    await expectProblem(await call(0, admin, 'POST', '/api/chat/chatflows/sync'), 502, 'UPSTREAM_UNAVAILABLE');
    expect(await chatflows()).to.deep.equal(before);
  });

  it('one sync at a time across instances: a concurrent second one is a 409 problem', async () => {
    flowiseList([{ id: FLOW_A, name: 'Alpha v2' }], 400);
    const slow = call(0, admin, 'POST', '/api/chat/chatflows/sync');
    // the first holds the Redis lock while Flowise answers; poll until the second is refused
    let refused: Awaited<ReturnType<typeof call>> | undefined;
    for (let i = 0; i < 100 && !refused; i++) {
      const attempt = await call(1, admin, 'POST', '/api/chat/chatflows/sync');
      if (attempt.status === 409) refused = attempt;
      else await attempt.body?.cancel();
    }
    expect(refused, 'a concurrent sync is refused').to.not.equal(undefined);
    await expectProblem(refused as Awaited<ReturnType<typeof call>>, 409, 'CONFLICT');
    expect((await slow).status).to.equal(200);
  });

  it('a private chatflow is refused for a user not on its list and served at once, on the other instance, after an admin adds the user', async () => {
    flowiseList([{ id: FLOW_C, name: 'Gamma' }]);
    expect((await call(0, admin, 'POST', '/api/chat/chatflows/sync')).status).to.equal(200);
    const gamma = (await chatflows()).find((f) => f.id === FLOW_C) as ChatflowView;
    expect(gamma.modelId).to.equal(`chatflow-${FLOW_C.toLowerCase()}`);
    // warm instance 1's cache with the private state
    expect((await modelsOf(1, user)).map((m) => m.id)).to.not.include(gamma.modelId);
    expect(await openAiModelsOf(1, user)).to.not.include(gamma.modelId);
    await expectProblem(await call(1, user, 'POST', '/api/chat/sessions', { modelId: gamma.modelId }), 403, 'FORBIDDEN');
    await expectProblem(await call(1, user, 'POST', '/api/v1/chat/predict', { chatflow_id: FLOW_C, question: 'hi' }), 403, 'FORBIDDEN');

    const patched = await call(0, admin, 'PATCH', `/api/chat/chatflows/${FLOW_C}`, { allowedUsers: [user.userId], displayName: 'Gamma helper' });
    expect(patched.status).to.equal(200);
    expect(((await patched.json()) as ChatflowView).allowedUsers).to.deep.equal([user.userId]);

    // no wait: the very next request on the other instance follows the list
    expect(await openAiModelsOf(1, user)).to.include(gamma.modelId);
    nock(FLOWISE)
      .post(`/api/v1/prediction/${FLOW_C}`)
      .reply(
        200,
        () =>
          sse(
            { event: 'token', data: 'Gamma here' },
            { event: 'usageMetadata', data: { input_tokens: 5, output_tokens: 2 } },
            { event: 'end', data: '[DONE]' },
          ),
        {
          'content-type': 'text/event-stream',
        },
      );
    const served = await call(1, user, 'POST', '/api/v1/chat/predict', { chatflow_id: FLOW_C, question: 'hi' });
    expect(served.status).to.equal(200);
    const reply = (await served.json()) as { text: string; credits: number };
    expect(reply.text).to.equal('Gamma here');
    expect(reply.credits).to.equal(creditsFor({ inputPer1k: 2, outputPer1k: 4 }, 5, 2));
    const listed = (await modelsOf(1, user)).find((m) => m.id === gamma.modelId) as ModelView & { displayName: string };
    expect(listed.displayName).to.equal('Gamma helper');
    // another user is still refused
    await expectProblem(await call(1, testActor('enduser'), 'POST', '/api/chat/sessions', { modelId: gamma.modelId }), 403, 'FORBIDDEN');

    // and taking the user off the list holds at once on the other instance too (instance 0 last saw the user on it)
    expect(await openAiModelsOf(0, user)).to.include(gamma.modelId);
    expect((await call(1, admin, 'PATCH', `/api/chat/chatflows/${FLOW_C}`, { allowedUsers: [] })).status).to.equal(200);
    // the completion first: nothing else on instance 0 has read the catalog since the change
    const completion = await call(0, user, 'POST', '/v1/chat/completions', { model: gamma.modelId, messages: [{ role: 'user', content: 'hi' }] });
    expect(completion.status).to.equal(404);
    expect(((await completion.json()) as { error: { code: string } }).error.code).to.equal('model_not_found');
    expect(await openAiModelsOf(0, user)).to.not.include(gamma.modelId);
    await expectProblem(await call(0, user, 'POST', '/api/chat/sessions', { modelId: gamma.modelId }), 403, 'FORBIDDEN');
  });

  it('a model added by an admin is listed on the other instance with the price accounting holds, and charged at it', async () => {
    const created = await call(0, admin, 'POST', '/api/chat/models', {
      id: 'local-runtime',
      displayName: 'Runtime local',
      ...localModel,
      access: { public: true },
      prices: { inputPer1k: 3, outputPer1k: 7 },
    });
    expect(created.status).to.equal(201);
    expect(platform.accounting.priceOf('local-runtime')).to.deep.equal({ inputPer1k: 3, outputPer1k: 7 });
    const listed = (await modelsOf(1, user)).find((m) => m.id === 'local-runtime');
    expect(listed?.prices).to.deep.equal({ inputPer1k: 3, outputPer1k: 7 });

    const sessionId = await createSession(platform, user, 'local-runtime', 1);
    const stream = await streamMessage(platform, user, sessionId, 'hello runtime model', 1);
    await stream.waitForEnd();
    const done = stream.terminal() as SseEvent;
    expect(done.event).to.equal('done');
    const usage = done.data.usage as { inputTokens: number; outputTokens: number };
    expect(done.data.credits).to.equal(creditsFor({ inputPer1k: 3, outputPer1k: 7 }, usage.inputTokens, usage.outputTokens));
    expect(platform.accounting.chargesOf((stream.events[0] as SseEvent).data.reservationId as string)).to.have.length(1);
    await expectProblem(await call(1, admin, 'POST', '/api/chat/models', { id: 'local-runtime', displayName: 'again', ...localModel }), 409, 'CONFLICT');
  });

  it('accounting stays the one price source: its price wins over the one given, and a model without a price cannot be enabled', async () => {
    platform.accounting.holdPrice('local-priced', { inputPer1k: 9, outputPer1k: 11 });
    const created = await call(0, admin, 'POST', '/api/chat/models', {
      id: 'local-priced',
      displayName: 'Priced',
      ...localModel,
      access: { public: true },
      prices: { inputPer1k: 1, outputPer1k: 1 },
    });
    expect(((await created.json()) as ModelView).prices).to.deep.equal({ inputPer1k: 9, outputPer1k: 11 });
    expect((await modelsOf(1, user)).find((m) => m.id === 'local-priced')?.prices).to.deep.equal({ inputPer1k: 9, outputPer1k: 11 });

    await expectProblem(
      await call(0, admin, 'POST', '/api/chat/models', { id: 'local-unpriced', displayName: 'Unpriced', ...localModel, access: { public: true } }),
      409,
      'CONFLICT',
    );
    const disabled = await call(0, admin, 'POST', '/api/chat/models', {
      id: 'local-unpriced',
      displayName: 'Unpriced',
      ...localModel,
      access: { public: true },
      enabled: false,
    });
    expect(disabled.status).to.equal(201);
    await expectProblem(await call(1, admin, 'PATCH', '/api/chat/models/local-unpriced', { enabled: true }), 409, 'CONFLICT');
    expect((await modelsOf(1, user)).map((m) => m.id)).to.not.include('local-unpriced');
    await expectProblem(await call(1, user, 'POST', '/api/chat/sessions', { modelId: 'local-unpriced' }), 403, 'FORBIDDEN');
    expect(platform.accounting.priceOf('local-unpriced')).to.equal(undefined);
    // enabled together with its first prices, which accounting learns
    const enabled = await call(1, admin, 'PATCH', '/api/chat/models/local-unpriced', { enabled: true, prices: { inputPer1k: 2, outputPer1k: 3 } });
    expect(enabled.status).to.equal(200);
    expect(((await enabled.json()) as ModelView).prices).to.deep.equal({ inputPer1k: 2, outputPer1k: 3 });
    expect(platform.accounting.priceOf('local-unpriced')).to.deep.equal({ inputPer1k: 2, outputPer1k: 3 });
    expect((await modelsOf(0, user)).find((m) => m.id === 'local-unpriced')?.prices).to.deep.equal({ inputPer1k: 2, outputPer1k: 3 });
    // a held price is changed in accounting only, never through chat
    await expectProblem(await call(0, admin, 'PATCH', '/api/chat/models/local-unpriced', { prices: { inputPer1k: 1, outputPer1k: 1 } }), 409, 'CONFLICT');
    expect(platform.accounting.priceOf('local-unpriced')).to.deep.equal({ inputPer1k: 2, outputPer1k: 3 });
  });

  it('refuses bad model definitions with 400 problems naming the field', async () => {
    const bad = [
      { id: 'Bad Id', displayName: 'x', ...localModel },
      { id: 'local-x', displayName: 'x', ...localModel, provider: 'bedrock' }, // not configured here
      { id: 'local-x', displayName: 'x', ...localModel, defaultMaxOutputTokens: 500 },
      { id: 'chatflow-x', displayName: 'x', ...localModel },
      { id: 'local-x', displayName: 'x', ...localModel, prices: { inputPer1k: 0, outputPer1k: 1 } },
      { id: 'local-x', displayName: 'x', ...localModel, extra: true },
    ];
    for (const body of bad) await expectProblem(await call(0, admin, 'POST', '/api/chat/models', body), 400, 'VALIDATION_FAILED');
    const all = ((await (await call(0, admin, 'GET', '/api/chat/models/catalog')).json()) as { models: ModelView[] }).models;
    expect(all.map((m) => m.id)).to.not.include('local-x');
  });

  it('a disabled model is refused for new streams on every instance while a running stream finishes and is charged once', async () => {
    expect(
      (
        await call(0, admin, 'POST', '/api/chat/models', {
          id: 'local-retiring',
          displayName: 'Retiring',
          ...localModel,
          access: { public: true },
          prices: { inputPer1k: 2, outputPer1k: 5 },
        })
      ).status,
    ).to.equal(201);
    const running = await streamMessage(platform, user, await createSession(platform, user, 'local-retiring', 0), 'a long answer please', 0);
    const idle = await createSession(platform, user, 'local-retiring', 1);
    expect(await openAiModelsOf(1, user)).to.include('local-retiring');
    await running.waitForEvent('delta');

    expect((await call(1, admin, 'PATCH', '/api/chat/models/local-retiring', { enabled: false })).status).to.equal(200);
    const refused = await streamMessage(platform, user, idle, 'one more', 1);
    await expectProblem(refused.response, 403, 'FORBIDDEN');
    await expectProblem(await call(0, user, 'POST', '/api/chat/sessions', { modelId: 'local-retiring' }), 403, 'FORBIDDEN');
    expect((await modelsOf(0, user)).map((m) => m.id)).to.not.include('local-retiring');
    expect(await openAiModelsOf(1, user)).to.not.include('local-retiring');
    const completion = await call(1, user, 'POST', '/v1/chat/completions', { model: 'local-retiring', messages: [{ role: 'user', content: 'hi' }] });
    expect(completion.status).to.equal(404);
    expect(((await completion.json()) as { error: { code: string } }).error.code).to.equal('model_not_found');
    expect(running.terminal(), 'still running when the model was disabled').to.equal(undefined);

    await running.waitForEnd(20_000);
    const done = running.terminal() as SseEvent;
    expect(done.event).to.equal('done');
    const usage = done.data.usage as { inputTokens: number; outputTokens: number };
    expect(usage.outputTokens).to.equal(40);
    expect(done.data.credits).to.equal(creditsFor({ inputPer1k: 2, outputPer1k: 5 }, usage.inputTokens, usage.outputTokens));
    const charges = platform.accounting.chargesOf((running.events[0] as SseEvent).data.reservationId as string);
    expect(charges).to.have.length(1);
  });

  describe('authorization matrix: only admins reach the management routes', () => {
    const routes: Array<[string, string, unknown?]> = [
      ['GET', '/api/chat/models/catalog'],
      [
        'POST',
        '/api/chat/models',
        { id: 'local-evil', displayName: 'Evil', ...localModel, access: { public: true }, prices: { inputPer1k: 1, outputPer1k: 1 } },
      ],
      ['PATCH', '/api/chat/models/local-dev', { enabled: false }],
      ['GET', '/api/chat/chatflows'],
      ['POST', '/api/chat/chatflows/sync'],
      ['PATCH', `/api/chat/chatflows/${FLOW_A}`, { isPublic: true }],
    ];

    it('enduser and supervisor get 403, anonymous and forged identity headers 401, and nothing changes', async () => {
      const catalogBefore = await (await call(0, admin, 'GET', '/api/chat/models/catalog')).json();
      const flowsBefore = await chatflows();
      const sync = nock(FLOWISE).get('/api/v1/chatflows').reply(200, []);
      for (const [method, path, body] of routes) {
        const payload = body === undefined ? undefined : JSON.stringify(body);
        for (const role of ['enduser', 'supervisor'] as const) {
          await expectProblem(await call(0, testActor(role), method, path, body), 403, 'FORBIDDEN');
        }
        await expectProblem(await fetch(at(1, path), { method, headers: { 'content-type': 'application/json' }, body: payload }), 401, 'UNAUTHENTICATED');
        // an enduser's signed headers with the role rewritten to admin
        const forged = platform.json(testActor('enduser'));
        forged['x-user-role'] = 'admin';
        await expectProblem(await fetch(at(1, path), { method, headers: forged, body: payload }), 401, 'UNAUTHENTICATED');
        // admin headers without their signature, and with another case of the role header
        const unsigned = platform.json(admin);
        delete unsigned['x-identity-signature'];
        await expectProblem(await fetch(at(0, path), { method, headers: unsigned, body: payload }), 401, 'UNAUTHENTICATED');
        // an admin bearer token alone (no gateway identity) is not enough on a public route
        await expectProblem(
          await fetch(at(0, path), {
            method,
            headers: { authorization: `Bearer ${platform.auth.token(admin)}`, 'X-User-Role': 'admin', 'content-type': 'application/json' },
            body: payload,
          }),
          401,
          'UNAUTHENTICATED',
        );
      }
      // a malformed body from a non-admin is still 403: authorization comes before validation
      await expectProblem(await call(0, user, 'POST', '/api/chat/models', { nonsense: true }), 403, 'FORBIDDEN');
      expect(sync.isDone(), 'Flowise was never asked').to.equal(false);
      expect(await (await call(0, admin, 'GET', '/api/chat/models/catalog')).json()).to.deep.equal(catalogBefore);
      expect(await chatflows()).to.deep.equal(flowsBefore);
      expect(platform.accounting.priceOf('local-evil')).to.equal(undefined);
    });
  });
});
