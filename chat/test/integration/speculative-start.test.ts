// A provider call started alongside its reservation (issue 13, first chunk): started only when this instance's last
// answer from accounting covers the stream's worst case, held until the reservation is confirmed (nothing reaches
// the client or an observer before), cut when the reservation is refused (the same 402, nothing stored or charged).
// The OpenAI-compatible upstream is a real HTTP server under the test's control; accounting is the stand-in, whose
// reservations the test holds undecided while it looks.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { testActor } from '@platform/shared-types/testing';
import { expect } from 'chai';
import type { Redis } from 'ioredis';
import { OpenAiProvider } from '../../src/providers/openai-provider.ts';
import type { Provider } from '../../src/providers/provider.ts';
import { fetch, type Platform, SseClient, startPlatform, waitFor } from '../support/harness.ts';

interface UpstreamCall {
  /** deltas written to the socket so far */
  written: number;
  /** the client closed the request before the reply ended */
  aborted: boolean;
  ended: boolean;
  finish: () => void;
}

/** An OpenAI-compatible server: `burst` deltas at once, the rest (and usage) when the test calls `finish` (or at once). */
class Upstream {
  readonly calls: UpstreamCall[] = [];
  burst = 3;
  holdRest = false;
  url = '';
  readonly #server: Server = createServer((req, res) => this.#answer(req, res));

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    for await (const _ of req);
    let finish = () => {};
    const finished = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const call: UpstreamCall = { written: 0, aborted: false, ended: false, finish };
    this.calls.push(call);
    res.on('close', () => {
      if (!res.writableFinished) call.aborted = true;
    });
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const chunk = (data: unknown) => `data: ${JSON.stringify(data)}\n\n`;
    const delta = (i: number) =>
      new Promise<void>((resolve) => res.write(chunk({ choices: [{ index: 0, delta: { content: `w${i} ` }, finish_reason: null }] }), () => resolve()));
    for (let i = 0; i < this.burst; i++) {
      await delta(i);
      call.written++;
    }
    if (this.holdRest) await finished;
    if (res.destroyed) return;
    await delta(this.burst);
    call.written++;
    res.write(chunk({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }));
    res.write(chunk({ choices: [], usage: { prompt_tokens: 11, completion_tokens: call.written, total_tokens: 11 + call.written } }));
    res.end('data: [DONE]\n\n');
    call.ended = true;
  }
}

/** the provider as configured, counting its calls the moment one starts (before any request leaves) */
function counted(provider: Provider, starts: { count: number }): Provider {
  return {
    stream(request) {
      starts.count++;
      return provider.stream(request);
    },
  };
}

describe('chat: a provider call started alongside its reservation (speculative start)', () => {
  const upstream = new Upstream();
  const starts = { count: 0 };
  let platform: Platform;
  let observer: Redis;
  const published: string[] = [];
  const url = (path: string) => `${platform.instances[0]?.url}${path}`;
  const body = (content: string, stream = true) => JSON.stringify({ model: 'openai-compatible', messages: [{ role: 'user', content }], stream });
  const complete = (user: ReturnType<typeof testActor>, content: string) =>
    fetch(url('/v1/chat/completions'), { method: 'POST', headers: platform.json(user), body: body(content, false) });
  const db = () => platform.instances[0]?.stores.mongo.db;

  before(async () => {
    await upstream.start();
    const provider = counted(new OpenAiProvider({ baseUrl: upstream.url, timeoutMs: 10_000 }), starts);
    platform = await startPlatform({ env: { OPENAI_BASE_URL: upstream.url, OPENAI_API_KEY: 'sk-test' }, providers: { custom: { openai: provider } } });
    // every event any stream sends its observers goes through these channels
    observer = platform.instances[0]?.stores.redis.duplicate() as Redis;
    observer.on('pmessage', (_pattern, channel) => published.push(channel));
    await observer.psubscribe(`${platform.redisPrefix}session:*`);
  });
  after(async () => {
    await observer.quit();
    await platform.stop();
    await upstream.stop();
  });
  afterEach(() => {
    upstream.burst = 3;
    upstream.holdRest = false;
  });

  /** a user whose first completion (reserved first: no hint yet) taught this instance their balance */
  async function knownUser() {
    const user = testActor('enduser');
    const before = starts.count;
    const first = await complete(user, 'hello');
    expect(first.status, await first.clone().text()).to.equal(200);
    expect(starts.count).to.equal(before + 1);
    return user;
  }

  it("a user's first stream reserves before its provider starts (no answer from accounting to go by yet)", async () => {
    const user = testActor('enduser');
    const release = platform.accounting.holdReservations();
    const before = starts.count;
    const answer = complete(user, 'first ever');
    await waitFor(() => platform.accounting.reservationsWaiting === 1, 'the reservation at accounting');
    expect(starts.count, 'the provider started before the reservation was confirmed').to.equal(before);
    release();
    expect((await answer).status).to.equal(200);
    expect(starts.count).to.equal(before + 1);
  });

  it('a refused reservation cuts the speculatively started provider call: the same 402, no chunk, nothing stored, charged or observed', async () => {
    const user = await knownUser();
    // the same refusal without speculation, for comparison: a user this instance knows nothing of, without credits
    const stranger = testActor('enduser');
    platform.accounting.balances.set(stranger.userId, 0);
    const plain = await fetch(url('/v1/chat/completions'), { method: 'POST', headers: platform.json(stranger), body: body('spend it') });
    const sessionsBefore = await db()?.collection('sessions').countDocuments({ userId: user.userId });
    const messagesBefore = await db()?.collection('messages').countDocuments({ userId: user.userId });
    const callsBefore = platform.accounting.calls.length;
    const publishedBefore = published.length;
    upstream.holdRest = true;
    const release = platform.accounting.holdReservations();
    const answer = fetch(url('/v1/chat/completions'), { method: 'POST', headers: platform.json(user), body: body('spend it') });
    await waitFor(() => platform.accounting.reservationsWaiting === 1, 'the reservation at accounting');
    // the provider call is running (its first deltas are out) while accounting has not decided
    const call = await waitFor(() => upstream.calls.find((c) => c.written >= 1 && !c.ended), 'the speculative provider call');
    platform.accounting.balances.set(user.userId, 0); // spent elsewhere meanwhile: the hint is stale
    release();
    const refused = await answer;
    expect(refused.status).to.equal(402);
    expect(refused.headers.get('content-type')).to.match(/^application\/json/);
    const refusal = (await refused.json()) as { error: Record<string, unknown> };
    const expected = (await plain.json()) as { error: Record<string, unknown> };
    expect(plain.status).to.equal(402);
    expect(refusal.error).to.deep.equal(expected.error);
    await waitFor(() => call.aborted, 'the provider request closed');
    call.finish();
    expect(call.ended).to.equal(false);
    expect(await db()?.collection('sessions').countDocuments({ userId: user.userId })).to.equal(sessionsBefore);
    expect(await db()?.collection('messages').countDocuments({ userId: user.userId })).to.equal(messagesBefore);
    const later = platform.accounting.calls.slice(callsBefore).map((c) => c.path);
    expect(later.filter((p) => /\/(finalize|abort|renew)$/.test(p))).to.deep.equal([]);
    expect(published.slice(publishedBefore)).to.deep.equal([]);
    // the refusal taught this instance: the user's next stream reserves before its provider starts
    const before = starts.count;
    const next = platform.accounting.holdReservations();
    const again = complete(user, 'again');
    await waitFor(() => platform.accounting.reservationsWaiting === 1, 'the next reservation');
    expect(starts.count).to.equal(before);
    next();
    expect((await again).status).to.equal(402);
  });

  it('a speculative start that wins the race: its events wait for the reservation, then all reach the client in order, charged once', async () => {
    const user = await knownUser();
    const publishedBefore = published.length;
    upstream.holdRest = true;
    const release = platform.accounting.holdReservations();
    let answered = false;
    const opening = SseClient.open(url('/v1/chat/completions'), { method: 'POST', headers: platform.json(user), body: body('race') }).then((client) => {
      answered = true;
      return client;
    });
    await waitFor(() => platform.accounting.reservationsWaiting === 1, 'the reservation at accounting');
    const call = await waitFor(() => upstream.calls.find((c) => c.written === 3 && !c.ended && !c.aborted), 'three deltas from the provider');
    // the provider has produced; nothing of it has reached the client (not even the response head) or an observer
    await waitFor(() => platform.accounting.reservationsWaiting === 1, 'the reservation still undecided');
    expect(answered).to.equal(false);
    expect(published.slice(publishedBefore)).to.deep.equal([]);
    release();
    const client = await opening;
    expect(client.status).to.equal(200);
    call.finish();
    await client.waitForEnd();
    const chunks = client.events.filter((e) => e.event === 'message').map((e) => e.data as { choices?: Array<{ delta?: { content?: string } }> });
    const text = chunks.map((c) => c.choices?.[0]?.delta?.content ?? '').join('');
    expect(text).to.equal('w0 w1 w2 w3 ');
    const sessionId = String((chunks[0] as { session_id?: string }).session_id);
    const reservationId = platform.accounting.calls.filter((c) => c.path.endsWith('/initialize') && c.body.sessionId === sessionId)[0]?.body
      .reservationId as string;
    const charges = platform.accounting.chargesOf(reservationId);
    expect(charges.map((c) => [c.path.split('/').at(-1), c.body.inputTokens, c.body.outputTokens])).to.deep.equal([['finalize', 11, 4]]);
    const reply = await waitFor(async () => db()?.collection('messages').findOne({ role: 'assistant', reservationId }), 'the stored reply');
    expect(reply).to.include({ status: 'complete', content: text, userId: user.userId });
    // observers saw the whole stream too, starting with its session event (after the reservation)
    expect(published.slice(publishedBefore).length).to.be.greaterThan(4);
  });
});
