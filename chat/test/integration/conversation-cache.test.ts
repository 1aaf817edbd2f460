import type { Actor } from '@platform/shared-types';
import { expectProblem, storeUrls, testActor } from '@platform/shared-types/testing';
import { expect } from 'chai';
import type { CommandStartedEvent } from 'mongodb';
import { Types } from 'mongoose';
import { LocalProvider } from '../../src/providers/local-provider.ts';
import type { ChatTurn } from '../../src/providers/provider.ts';
import { type ChatService, createSession, FAST, fetch, type Platform, startPlatform, streamMessage } from '../support/harness.ts';

/** the reply the local model gives to exactly these turns (it is a function of the prompt) */
async function localReply(turns: ChatTurn[]): Promise<string> {
  const provider = new LocalProvider({ tokens: Number(FAST.LOCAL_MODEL_TOKENS), tokenDelayMs: 0 });
  const request = { model: undefined as never, turns, maxOutputTokens: 10_000, sessionId: 'expected', signal: new AbortController().signal };
  let text = '';
  for await (const event of provider.stream(request)) if (event.type === 'delta') text += event.text;
  return text;
}

const READS = new Set(['find', 'aggregate', 'count', 'distinct', 'getMore']);

describe('conversation cache: stream starts read Redis, exactly what the store holds (two instances, real stores)', () => {
  let platform: Platform;
  const instance = (i: number) => platform.instances[i] as ChatService;
  const url = (path: string, i = 0) => `${instance(i).url}${path}`;
  /** driver commands of instance `i` reading `sessions` or `messages` (command monitoring on the real connection) */
  const conversationReads: CommandStartedEvent[][] = [[], []];

  before(async () => {
    // command monitoring from the connection string, so every pooled connection reports
    const mongoUrl = `${storeUrls().MONGO_URL}${storeUrls().MONGO_URL.includes('?') ? '&' : '?'}monitorCommands=true`;
    platform = await startPlatform({ count: 2, env: { MONGO_URL: mongoUrl, MODELS_CACHE_TTL_MS: '600000', LOCAL_MODEL_TOKEN_DELAY_MS: '40' } });
    platform.instances.forEach((service, i) => {
      service.stores.mongo.getClient().on('commandStarted', (event: CommandStartedEvent) => {
        const collection = event.command[event.commandName];
        if (READS.has(event.commandName) && (collection === 'sessions' || collection === 'messages')) conversationReads[i]?.push(event);
      });
    });
  });
  after(async () => {
    await platform.stop();
  });

  /** streams one message to its end; the reply's text, the model it ran on and the store reads before its first delta */
  async function turn(actor: Actor, sessionId: string, message: string, i = 0) {
    const readsBefore = conversationReads[i]?.length ?? 0;
    const stream = await streamMessage(platform, actor, sessionId, message, i);
    await stream.waitForEvent('delta');
    const readsBeforeFirstDelta = (conversationReads[i]?.length ?? 0) - readsBefore;
    await stream.waitForEnd();
    expect(stream.terminal()?.event, JSON.stringify(stream.events.at(-1))).to.equal('done');
    const session = stream.named('session')[0]?.data as { modelId: string };
    return { text: stream.text(), modelId: session.modelId, readsBeforeFirstDelta };
  }

  const patch = async (actor: Actor, sessionId: string, body: Record<string, unknown>, i = 0) => {
    const response = await fetch(url(`/api/chat/sessions/${sessionId}`, i), { method: 'PATCH', headers: platform.json(actor), body: JSON.stringify(body) });
    expect(response.status).to.equal(200);
  };

  it('a cache hit reads neither sessions nor messages before the first delta, from creation on; a miss does (the monitor sees reads)', async () => {
    const user = testActor('enduser');
    const sessionId = await createSession(platform, user);
    const first = await turn(user, sessionId, 'first question');
    expect(first.readsBeforeFirstDelta).to.equal(0);
    const second = await turn(user, sessionId, 'second question');
    expect(second.readsBeforeFirstDelta).to.equal(0);
    expect(second.text).to.equal(
      await localReply([
        { role: 'user', content: 'first question' },
        { role: 'assistant', content: first.text },
        { role: 'user', content: 'second question' },
      ]),
    );
    // a rename spends the entry: the next stream reads the store (and writes the entry back for the one after)
    await patch(user, sessionId, { title: 'renamed' });
    const third = await turn(user, sessionId, 'third question');
    expect(third.readsBeforeFirstDelta).to.be.at.least(2);
    expect((await turn(user, sessionId, 'fourth question')).readsBeforeFirstDelta).to.equal(0);
  });

  it('a model switched by PATCH (on the other instance) between streams is the model of the next stream', async () => {
    const user = testActor('enduser');
    const sessionId = await createSession(platform, user, 'local-dev');
    expect((await turn(user, sessionId, 'hello')).modelId).to.equal('local-dev');
    await patch(user, sessionId, { modelId: 'local-tiny' }, 1);
    expect((await turn(user, sessionId, 'again')).modelId).to.equal('local-tiny');
  });

  it('a title given by PATCH is not overwritten by the next stream (its titled flag is current)', async () => {
    const user = testActor('enduser');
    const sessionId = await createSession(platform, user); // untitled: the first message would name it
    await patch(user, sessionId, { title: 'Chosen title' });
    const titleUpdates: CommandStartedEvent[] = [];
    const watch = (event: CommandStartedEvent) => {
      const updates = (event.command.updates ?? []) as { q: Record<string, unknown> }[];
      if (event.commandName === 'update' && event.command.update === 'sessions' && updates.some((u) => u.q.titled === false)) titleUpdates.push(event);
    };
    instance(0).stores.mongo.getClient().on('commandStarted', watch);
    try {
      await turn(user, sessionId, 'a message that must not become the title');
    } finally {
      instance(0).stores.mongo.getClient().off('commandStarted', watch);
    }
    expect(titleUpdates).to.have.length(0);
    const view = (await (await fetch(url(`/api/chat/sessions/${sessionId}`), { headers: platform.headers(user) })).json()) as { session: { title: string } };
    expect(view.session.title).to.equal('Chosen title');
  });

  it('a deleted session cannot stream from its cache entry (on either instance)', async () => {
    const user = testActor('enduser');
    const sessionId = await createSession(platform, user);
    await turn(user, sessionId, 'before the delete');
    const deleted = await fetch(url(`/api/chat/sessions/${sessionId}`, 1), { method: 'DELETE', headers: platform.headers(user) });
    expect(deleted.status).to.equal(204);
    for (const i of [0, 1]) {
      await expectProblem(
        await fetch(url(`/api/chat/sessions/${sessionId}/stream`, i), {
          method: 'POST',
          headers: platform.json(user),
          body: JSON.stringify({ message: 'after' }),
        }),
        404,
        'NOT_FOUND',
      );
    }
    const messages = await instance(0).stores.runtime.sessions.dal.messages.countDocuments({ sessionId: new Types.ObjectId(sessionId), role: 'user' });
    expect(messages).to.equal(0);
  });

  it('a history written by the other instance is in the next prompt on this one', async () => {
    const user = testActor('enduser');
    const sessionId = await createSession(platform, user);
    const a = await turn(user, sessionId, 'question on instance 0', 0);
    const b = await turn(user, sessionId, 'question on instance 1', 1);
    const c = await turn(user, sessionId, 'question back on instance 0', 0);
    expect([a.readsBeforeFirstDelta, b.readsBeforeFirstDelta, c.readsBeforeFirstDelta]).to.deep.equal([0, 0, 0]);
    expect(c.text).to.equal(
      await localReply([
        { role: 'user', content: 'question on instance 0' },
        { role: 'assistant', content: a.text },
        { role: 'user', content: 'question on instance 1' },
        { role: 'assistant', content: b.text },
        { role: 'user', content: 'question back on instance 0' },
      ]),
    );
  });

  it("refuses a stream's write-back when a mutation ran during the stream: the next stream has the new model", async () => {
    const user = testActor('enduser');
    const sessionId = await createSession(platform, user, 'local-dev');
    const stream = await streamMessage(platform, user, sessionId, 'a long answer please', 0);
    await stream.waitForEvent('delta');
    await patch(user, sessionId, { modelId: 'local-tiny' }, 1);
    // the rename landed while the stream still had several tokens to go (40 ms each), well before it let go
    expect(stream.named('delta').length).to.be.below(Number(FAST.LOCAL_MODEL_TOKENS) - 3);
    await stream.waitForEnd();
    expect(stream.terminal()?.event).to.equal('done');
    expect(stream.named('session')[0]?.data.modelId).to.equal('local-dev');
    const next = await turn(user, sessionId, 'next');
    expect(next.modelId).to.equal('local-tiny');
    expect(next.readsBeforeFirstDelta).to.be.at.least(2);
  });

  it("refuses another user's session from the cache (NOT_FOUND, no store read) and leaves the owner's entry valid", async () => {
    const owner = testActor('enduser');
    const intruder = testActor('enduser');
    const sessionId = await createSession(platform, owner);
    await turn(owner, sessionId, 'mine');
    const reads = conversationReads[0]?.length ?? 0;
    await expectProblem(
      await fetch(url(`/api/chat/sessions/${sessionId}/stream`), {
        method: 'POST',
        headers: platform.json(intruder),
        body: JSON.stringify({ message: 'theirs' }),
      }),
      404,
      'NOT_FOUND',
    );
    expect(conversationReads[0]?.length).to.equal(reads);
    expect((await turn(owner, sessionId, 'still mine')).readsBeforeFirstDelta).to.equal(0);
  });

  it('a store read (a miss) that a rename overlapped is not written back at release', async () => {
    const user = testActor('enduser');
    const sessionId = await createSession(platform, user, 'local-dev');
    const { conversations } = instance(0).stores.runtime;
    // a refused stream spends the entry and writes nothing back
    const spent = await conversations.start(sessionId, 'refused:stream', user.userId);
    if (spent.kind !== 'hit') throw new Error(`expected a hit, got ${spent.kind}`);
    await conversations.release(sessionId, 'refused:stream', spent.ticket, undefined);
    // the next stream misses and reads the store (model local-dev) while a rename switches the model
    const missed = await conversations.start(sessionId, 'slow:stream', user.userId);
    if (missed.kind !== 'miss') throw new Error(`expected a miss, got ${missed.kind}`);
    await patch(user, sessionId, { modelId: 'local-tiny' }, 1);
    const ticket = await conversations.lock(sessionId, 'slow:stream', missed.seen);
    if (!ticket) throw new Error('the lock was not taken');
    const read = { userId: user.userId, modelId: 'local-dev', titled: false, history: [] };
    expect(await conversations.release(sessionId, 'slow:stream', ticket, read)).to.equal(false);
    expect((await turn(user, sessionId, 'which model?')).modelId).to.equal('local-tiny');
  });

  it('a stream that died between lock and release leaves no valid entry: the next stream reads what it stored', async () => {
    const user = testActor('enduser');
    const sessionId = await createSession(platform, user);
    const { runtime, redis } = instance(0).stores;
    // a stream takes the lock with a valid entry, stores its user message, and its process dies
    const started = await runtime.conversations.start(sessionId, 'dead-instance:stream', user.userId);
    expect(started.kind).to.equal('hit');
    await runtime.sessions.dal.addMessage({
      sessionId: new Types.ObjectId(sessionId),
      userId: user.userId,
      role: 'user',
      content: 'the dead stream asked',
      status: 'complete',
    });
    await redis.del(`${platform.redisPrefix}lock:${sessionId}`); // its lock expired
    const next = await turn(user, sessionId, 'asked again', 1);
    expect(next.readsBeforeFirstDelta).to.be.at.least(2);
    expect(next.text).to.equal(await localReply([{ role: 'user', content: 'the dead stream asked\n\nasked again' }]));
  });
});
