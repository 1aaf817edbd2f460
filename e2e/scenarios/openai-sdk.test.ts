// The OpenAI-compatible API (issue 13) with the official SDKs as real clients: the `openai` npm package and the
// Python `openai` package, against the running platform through the gateway. Every completion is metered by the
// one stream pipeline (usage equals what accounting charged), stored as a chat session, and supervisable.
import { execFile, execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import OpenAI from 'openai';
import { api, createUser, items, type Session } from '../support/client.ts';
import { assertLedgerInvariant } from '../support/ledger.ts';
import { type Platform, startPlatform } from '../support/platform.ts';

const root = new URL('../..', import.meta.url).pathname;
const python = join(root, '.tools', 'py-interop', 'bin', 'python');
const pyClient = join(root, 'e2e', 'interop', 'python', 'openai_client.py');
const run = promisify(execFile);

/** The API key (`sk-...`) each student's program passes to the SDK: made by `student()` through /api/auth/api-keys. */
const apiKeys = new Map<string, { id: string; key: string }>();
const apiKeyOf = (user: Session): string => {
  const made = apiKeys.get(user.userId);
  if (!made) throw new Error(`no API key was made for ${user.username}`);
  return made.key;
};

type Usage = { prompt_tokens: number; completion_tokens: number; total_tokens: number };
type StoredMessage = { role: string; content: string; status: string; usage?: { inputTokens: number; outputTokens: number }; credits?: number };
type Transaction = { type: string; amount: number; reservationId: string | null };

async function waitUntil<T>(read: () => Promise<T>, ok: (value: T) => boolean, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('OpenAI SDKs through the gateway (/v1)', () => {
  let platform: Platform;
  let admin: Session;
  let gw: string;

  const sdk = (user: Session | string) => new OpenAI({ apiKey: typeof user === 'string' ? user : apiKeyOf(user), baseURL: `${gw}/v1`, maxRetries: 0 });

  async function createKey(user: Session, body: Record<string, unknown>): Promise<{ id: string; key: string }> {
    const created = await api<{ id: string; key: string }>(gw, 'POST', '/api/auth/api-keys', { token: user.accessToken, body });
    expect(created.status, JSON.stringify(created.body)).to.equal(201);
    return created.body;
  }

  /** an end user with `credits` and an API key of her own (no credit limit) for the SDK */
  async function student(credits: number, prefix = 'oa'): Promise<Session> {
    const user = await createUser(platform, 'enduser', prefix);
    if (credits > 0) {
      const allocated = await api(gw, 'POST', '/api/credits/allocate', { token: admin.accessToken, body: { userId: user.userId, credits } });
      expect(allocated.status, JSON.stringify(allocated.body)).to.equal(201);
    }
    apiKeys.set(user.userId, await createKey(user, { name: `${prefix} sdk` }));
    return user;
  }

  const refusal = (pending: Promise<unknown>) =>
    pending.then(
      () => undefined,
      (e: unknown) => e as InstanceType<typeof OpenAI.APIError>,
    );

  async function storedReply(user: Session, sessionId: string): Promise<{ title: string; messages: StoredMessage[] }> {
    const got = await api<{ session: { title: string }; messages: StoredMessage[] }>(gw, 'GET', `/api/chat/sessions/${sessionId}`, { token: user.accessToken });
    expect(got.status, JSON.stringify(got.body)).to.equal(200);
    return { title: got.body.session.title, messages: got.body.messages };
  }

  async function charges(user: Session): Promise<Transaction[]> {
    const got = await api(gw, 'GET', '/api/credits/transactions?limit=100', { token: user.accessToken });
    return items<Transaction>(got.body).filter((t) => t.type === 'charge');
  }

  async function usageTotals(user: Session) {
    const got = await api<{ totals: { requests: number; inputTokens: number; outputTokens: number; credits: number } }>(gw, 'GET', '/api/usage/stats', {
      token: user.accessToken,
    });
    return got.body.totals;
  }

  /** what accounting's prices make of the SDK's usage: the ledger must have charged exactly that */
  async function priced(user: Session, usage: Usage): Promise<number> {
    const got = await api<{ credits: number }>(gw, 'POST', '/api/credits/calculate', {
      token: user.accessToken,
      body: { modelId: 'local-dev', inputTokens: usage.prompt_tokens, outputTokens: usage.completion_tokens },
    });
    expect(got.status, JSON.stringify(got.body)).to.equal(200);
    return got.body.credits;
  }

  /** the SDK's usage is the ledger's: one charge of exactly the priced usage, usage stats hold the same tokens, nothing reserved */
  async function expectChargedExactly(user: Session, usage: Usage, allocated: number): Promise<void> {
    const ledger = await waitUntil(
      () => charges(user),
      (c) => c.length > 0,
      'the charge is in the ledger',
    );
    expect(ledger).to.have.length(1);
    const credits = await priced(user, usage);
    expect(Math.abs((ledger[0] as Transaction).amount)).to.equal(credits);
    const totals = await usageTotals(user);
    expect(totals).to.include({ requests: 1, inputTokens: usage.prompt_tokens, outputTokens: usage.completion_tokens, credits });
    const balance = await api<{ available: number; reserved: number }>(gw, 'GET', '/api/credits/balance', { token: user.accessToken });
    expect(balance.body).to.include({ available: allocated - credits, reserved: 0 });
    await assertLedgerInvariant(platform, user.userId);
  }

  before(async function () {
    this.timeout(300_000);
    execFileSync('bash', [join(root, 'e2e', 'interop', 'setup.sh')], { stdio: 'inherit' });
    platform = await startPlatform({ LOCAL_MODEL_TOKENS: '60', LOCAL_MODEL_TOKEN_DELAY_MS: '20' });
    gw = platform.gatewayUrl;
    admin = await createUser(platform, 'admin');
  });
  after(async () => {
    await platform?.stop();
  });

  describe('node: the openai npm package', () => {
    it('models.list() lists the models the caller may use, with the ids of /api/chat/models', async () => {
      const user = await student(0, 'models');
      const listed = [];
      for await (const model of sdk(user).models.list()) listed.push(model);
      const ours = await api<{ models: Array<{ id: string }> }>(gw, 'GET', '/api/chat/models', { token: user.accessToken });
      expect(listed.map((m) => m.id).sort()).to.deep.equal(ours.body.models.map((m) => m.id).sort());
      expect(listed.map((m) => m.id)).to.include('local-dev');
      expect(listed[0]).to.include({ object: 'model' });
    });

    it('chat.completions.create() answers a chat.completion stored as a session, usage charged exactly', async function () {
      this.timeout(30_000);
      const user = await student(1000, 'complete');
      const completion = await sdk(user).chat.completions.create({
        model: 'local-dev',
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'What is a ledger?\nSecond line' },
        ],
        max_tokens: 12,
        temperature: 0.2,
      });
      expect(completion.object).to.equal('chat.completion');
      expect(completion.model).to.equal('local-dev');
      const choice = completion.choices[0] as OpenAI.Chat.Completions.ChatCompletion.Choice;
      expect(choice.finish_reason).to.equal('length');
      expect(choice.message.role).to.equal('assistant');
      const usage = completion.usage as Usage;
      expect(usage.completion_tokens).to.equal(12);
      expect(usage.total_tokens).to.equal(usage.prompt_tokens + usage.completion_tokens);
      const sessionId = (completion as unknown as { session_id: string }).session_id;
      const stored = await storedReply(user, sessionId);
      expect(stored.title).to.equal('What is a ledger?');
      const reply = stored.messages.find((m) => m.role === 'assistant') as StoredMessage;
      expect(reply.content).to.equal(choice.message.content);
      expect(reply.usage).to.deep.equal({ inputTokens: usage.prompt_tokens, outputTokens: usage.completion_tokens });
      expect(completion.id).to.match(/^chatcmpl-[0-9a-f]{24}$/);
      await expectChargedExactly(user, usage, 1000);
    });

    it('stream: true yields chat.completion.chunk deltas whose text is the stored reply, and the usage chunk is the charge', async function () {
      this.timeout(30_000);
      const user = await student(1000, 'stream');
      const stream = await sdk(user).chat.completions.create({
        model: 'local-dev',
        messages: [{ role: 'user', content: 'Stream me something' }],
        stream: true,
        stream_options: { include_usage: true },
        max_completion_tokens: 30,
      });
      let text = '';
      let finish: string | null = null;
      let usage: Usage | undefined;
      let sessionId = '';
      let chunks = 0;
      for await (const chunk of stream) {
        chunks += 1;
        expect(chunk.object).to.equal('chat.completion.chunk');
        sessionId ||= (chunk as unknown as { session_id?: string }).session_id ?? '';
        if (chunk.usage) usage = chunk.usage as Usage;
        for (const choice of chunk.choices) {
          text += choice.delta.content ?? '';
          finish = choice.finish_reason ?? finish;
        }
      }
      expect(chunks).to.be.greaterThan(30);
      expect(finish).to.equal('length');
      expect(usage?.completion_tokens).to.equal(30);
      const stored = await storedReply(user, sessionId);
      const reply = stored.messages.find((m) => m.role === 'assistant') as StoredMessage;
      expect(reply.status).to.equal('complete');
      expect(text).to.equal(reply.content);
      await expectChargedExactly(user, usage as Usage, 1000);
    });

    it('aborting the SDK stream mid-reply charges the partial usage once', async function () {
      this.timeout(30_000);
      const user = await student(1000, 'abort');
      const stream = await sdk(user).chat.completions.create({
        model: 'local-dev',
        messages: [{ role: 'user', content: 'A long answer please' }],
        stream: true,
      });
      let received = '';
      let sessionId = '';
      let deltas = 0;
      for await (const chunk of stream) {
        sessionId ||= (chunk as unknown as { session_id?: string }).session_id ?? '';
        const piece = chunk.choices[0]?.delta.content ?? '';
        received += piece;
        if (piece) deltas += 1;
        if (deltas === 5) stream.controller.abort();
      }
      expect(deltas).to.equal(5);
      const reply = await waitUntil(
        async () => (await storedReply(user, sessionId)).messages.find((m) => m.role === 'assistant'),
        (m) => m !== undefined,
        'the partial reply is stored',
      );
      expect(reply?.status).to.equal('interrupted');
      expect(reply?.content.startsWith(received)).to.equal(true);
      const produced = reply?.usage as { inputTokens: number; outputTokens: number };
      expect(produced.outputTokens).to.be.within(5, 59);
      await expectChargedExactly(user, { prompt_tokens: produced.inputTokens, completion_tokens: produced.outputTokens, total_tokens: 0 }, 1000);
    });

    it('insufficient credits raises the SDK 402 APIError before any chunk, and leaves no session behind', async () => {
      const user = await student(0, 'broke');
      for (const stream of [false, true]) {
        const error = await sdk(user)
          .chat.completions.create({ model: 'local-dev', messages: [{ role: 'user', content: 'Hi' }], stream })
          .then(
            () => undefined,
            (e: unknown) => e,
          );
        expect(error).to.be.instanceOf(OpenAI.APIError);
        expect((error as InstanceType<typeof OpenAI.APIError>).status).to.equal(402);
        expect((error as InstanceType<typeof OpenAI.APIError>).code).to.equal('insufficient_credits');
      }
      const sessions = await api(gw, 'GET', '/api/chat/sessions', { token: user.accessToken });
      expect(items(sessions.body)).to.have.length(0);
      expect(await charges(user)).to.have.length(0);
    });

    it('an invalid key raises AuthenticationError (the gateway refuses it in OpenAI shape)', async () => {
      for (const key of ['sk-not-a-real-key-0000000000000000000000000', 'garbage']) {
        const error = await sdk(key)
          .models.list()
          .then(
            () => undefined,
            (e: unknown) => e,
          );
        expect(error).to.be.instanceOf(OpenAI.AuthenticationError);
        expect((error as InstanceType<typeof OpenAI.AuthenticationError>).code).to.equal('invalid_api_key');
      }
    });

    it('a deleted key raises AuthenticationError on the next call, streaming or not', async () => {
      const user = await student(1000, 'deleted');
      const client = sdk(user);
      const listed = [];
      for await (const model of client.models.list()) listed.push(model.id);
      expect(listed).to.include('local-dev');
      const made = apiKeys.get(user.userId) as { id: string };
      const deleted = await api(gw, 'DELETE', `/api/auth/api-keys/${made.id}`, { token: user.accessToken });
      expect(deleted.status, JSON.stringify(deleted.body)).to.equal(204);
      for (const next of [
        () => client.models.list(),
        () => client.chat.completions.create({ model: 'local-dev', messages: [{ role: 'user', content: 'Hi' }], stream: true }),
      ]) {
        const error = await refusal(next());
        expect(error).to.be.instanceOf(OpenAI.AuthenticationError);
        expect(error).to.include({ code: 'invalid_api_key' });
      }
      expect(await charges(user)).to.have.length(0);
    });

    it("a key over its credit limit is refused with the SDK's 402 while its user still has credits and another key works", async () => {
      const user = await student(1000, 'limited');
      // one credit cannot cover any completion's worst case (max output tokens at the model's price)
      const limited = await createKey(user, { name: 'one credit', creditLimit: 1 });
      for (const stream of [false, true]) {
        const error = await refusal(sdk(limited.key).chat.completions.create({ model: 'local-dev', messages: [{ role: 'user', content: 'Hi' }], stream }));
        expect(error).to.be.instanceOf(OpenAI.APIError);
        expect(error).to.include({ status: 402, code: 'insufficient_credits' });
        expect(error?.message).not.to.include(limited.key);
      }
      expect(await charges(user)).to.have.length(0);
      const completion = await sdk(user).chat.completions.create({ model: 'local-dev', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 5 });
      expect(completion.usage?.completion_tokens).to.equal(5);
      await expectChargedExactly(user, completion.usage as Usage, 1000);
    });

    it('an access token works on /v1 as a key does (the same models, a metered completion)', async () => {
      const user = await student(1000, 'token');
      const byToken = sdk(user.accessToken);
      const viaToken = [];
      for await (const model of byToken.models.list()) viaToken.push(model.id);
      const viaKey = [];
      for await (const model of sdk(user).models.list()) viaKey.push(model.id);
      expect(viaToken.sort()).to.deep.equal(viaKey.sort());
      const completion = await byToken.chat.completions.create({ model: 'local-dev', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 4 });
      expect(completion.usage?.completion_tokens).to.equal(4);
      await expectChargedExactly(user, completion.usage as Usage, 1000);
    });

    it('refusals in OpenAI shape: model_not_found 404, invalid_request_error 400 with param, 429 with Retry-After', async function () {
      this.timeout(30_000);
      const user = await student(1000, 'refuse');
      const client = sdk(user);
      const fail = (body: Record<string, unknown>) =>
        client.chat.completions.create(body as unknown as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming).then(
          () => undefined,
          (e: unknown) => e as InstanceType<typeof OpenAI.APIError>,
        );
      const missing = await fail({ model: 'no-such-model', messages: [{ role: 'user', content: 'Hi' }] });
      expect(missing).to.be.instanceOf(OpenAI.NotFoundError);
      expect(missing).to.include({ code: 'model_not_found', param: 'model' });
      const image = await fail({
        model: 'local-dev',
        messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.test/cat.png' } }] }],
      });
      expect(image).to.be.instanceOf(OpenAI.BadRequestError);
      expect(image).to.include({ type: 'invalid_request_error', param: 'messages.0.content.0' });
      expect(image?.message).to.match(/image_url.*not supported/);
      const twoChoices = await fail({ model: 'local-dev', messages: [{ role: 'user', content: 'Hi' }], n: 2 });
      expect(twoChoices).to.be.instanceOf(OpenAI.BadRequestError);
      expect(twoChoices).to.include({ param: 'n' });
      const badTemperature = await fail({ model: 'local-dev', messages: [{ role: 'user', content: 'Hi' }], temperature: 5 });
      expect(badTemperature).to.include({ status: 400, param: 'temperature' });
      // the gateway's per-user cap of model runs at once (2) answers the third with 429 in OpenAI shape
      const open = await Promise.all(
        [1, 2].map(() => client.chat.completions.create({ model: 'local-dev', messages: [{ role: 'user', content: 'Hold' }], stream: true })),
      );
      const iterators = open.map((s) => s[Symbol.asyncIterator]());
      await Promise.all(iterators.map((it) => it.next()));
      const third = await fail({ model: 'local-dev', messages: [{ role: 'user', content: 'Hi' }] });
      expect(third).to.be.instanceOf(OpenAI.RateLimitError);
      expect(third).to.include({ code: 'rate_limit_exceeded' });
      expect(Number(third?.headers?.get('retry-after'))).to.be.greaterThan(0);
      for (const s of open) s.controller.abort();
      await waitUntil(
        () => charges(user),
        (c) => c.length === 2,
        'both aborted streams are charged',
      );
    });

    it("an interrupt by the student's supervisor ends the SDK stream with finish_reason set and the reason", async function () {
      this.timeout(30_000);
      const supervisor = await createUser(platform, 'supervisor', 'oasup');
      const user = await student(1000, 'supervised');
      const rel = await api(gw, 'POST', '/api/monitoring/relationships', {
        token: admin.accessToken,
        body: { supervisorId: supervisor.userId, studentId: user.userId },
      });
      expect(rel.status, JSON.stringify(rel.body)).to.equal(201);
      const stream = await sdk(user).chat.completions.create({ model: 'local-dev', messages: [{ role: 'user', content: 'Tell me a story' }], stream: true });
      let sessionId = '';
      let text = '';
      let last: OpenAI.Chat.Completions.ChatCompletionChunk | undefined;
      let interrupted = false;
      for await (const chunk of stream) {
        last = chunk;
        sessionId ||= (chunk as unknown as { session_id?: string }).session_id ?? '';
        text += chunk.choices[0]?.delta.content ?? '';
        if (text.length > 0 && !interrupted) {
          interrupted = true;
          const answer = await api(gw, 'POST', `/api/sessions/${sessionId}/interrupt`, { token: supervisor.accessToken, body: { reason: 'Off topic' } });
          expect(answer.status, JSON.stringify(answer.body)).to.equal(202);
        }
      }
      expect(last?.choices[0]?.finish_reason).to.equal('interrupted');
      expect((last as unknown as { interruption: { by: string; reason: string } }).interruption).to.deep.equal({
        by: supervisor.username,
        reason: 'Off topic',
      });
      const stored = await storedReply(user, sessionId);
      const reply = stored.messages.find((m) => m.role === 'assistant') as StoredMessage;
      expect(reply.status).to.equal('interrupted');
      expect(reply.content).to.equal(text);
      const usage = reply.usage as { inputTokens: number; outputTokens: number };
      await expectChargedExactly(user, { prompt_tokens: usage.inputTokens, completion_tokens: usage.outputTokens, total_tokens: 0 }, 1000);
    });
  });

  describe('python: the openai package', () => {
    const py = async (user: Session | string, command: string, model?: string) => {
      const key = typeof user === 'string' ? user : apiKeyOf(user);
      const { stdout } = await run(python, [pyClient, `${gw}/v1`, key, command, ...(model ? [model] : [])], { timeout: 60_000 });
      return JSON.parse(stdout) as Record<string, unknown>;
    };

    it('models, create and a stream: usage equals the ledger, the streamed text the stored reply', async function () {
      this.timeout(60_000);
      const user = await student(1000, 'py');
      expect((await py(user, 'models')).ids).to.include('local-dev');
      const complete = await py(user, 'complete');
      expect(complete).to.include({ finish_reason: 'length' });
      expect((complete.usage as Usage).completion_tokens).to.equal(20);
      const streamed = await py(user, 'stream');
      expect(streamed.finish_reason).to.equal('length');
      const stored = await storedReply(user, streamed.session_id as string);
      expect(streamed.text).to.equal(stored.messages.find((m) => m.role === 'assistant')?.content);
      const both = [complete.usage as Usage, streamed.usage as Usage];
      const credits = (await priced(user, both[0] as Usage)) + (await priced(user, both[1] as Usage));
      const ledger = await charges(user);
      expect(ledger.map((t) => Math.abs(t.amount)).reduce((a, b) => a + b, 0)).to.equal(credits);
      const totals = await usageTotals(user);
      expect(totals).to.include({
        requests: 2,
        inputTokens: both.reduce((a, u) => a + u.prompt_tokens, 0),
        outputTokens: both.reduce((a, u) => a + u.completion_tokens, 0),
        credits,
      });
    });

    it('the SDK raises AuthenticationError for an invalid or deleted key, 402 for no credits or a key over its limit, NotFoundError for an unknown model', async function () {
      this.timeout(60_000);
      expect(await py('sk-not-a-real-key-0000000000000000000000000', 'models')).to.include({
        error: 'AuthenticationError',
        status: 401,
        code: 'invalid_api_key',
      });
      const broke = await student(0, 'pybroke');
      expect(await py(broke, 'complete')).to.include({ status: 402, code: 'insufficient_credits' });
      const limited = await createKey(broke, { name: 'py limited', creditLimit: 1 });
      const allocated = await api(gw, 'POST', '/api/credits/allocate', { token: admin.accessToken, body: { userId: broke.userId, credits: 1000 } });
      expect(allocated.status).to.equal(201);
      expect(await py(limited.key, 'stream')).to.include({ status: 402, code: 'insufficient_credits' });
      const deleted = await api(gw, 'DELETE', `/api/auth/api-keys/${limited.id}`, { token: broke.accessToken });
      expect(deleted.status).to.equal(204);
      expect(await py(limited.key, 'models')).to.include({ error: 'AuthenticationError', status: 401, code: 'invalid_api_key' });
      expect(await py(broke, 'stream', 'no-such-model')).to.include({ error: 'NotFoundError', status: 404, code: 'model_not_found', param: 'model' });
    });
  });
});
