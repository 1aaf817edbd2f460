import { testActor } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { Types } from 'mongoose';
import type { ChatRuntime } from '../../src/runtime.ts';
import { createSession, fetch, type Platform, type SseEvent, startPlatform, streamMessage, waitFor } from '../support/harness.ts';

interface StoredMessage {
  role: string;
  content: string;
  status: string;
  credits?: number;
}

describe('store writes of a stream wait behind stream starts, and are still done before its terminal event (real stores, accounting stand-in)', () => {
  let platform: Platform;
  const runtime = () => platform.instances[0]?.stores.runtime as ChatRuntime;
  const url = (path: string) => `${platform.instances[0]?.url}${path}`;
  const messagesOf = async (actor: ReturnType<typeof testActor>, sessionId: string) =>
    (await (await fetch(url(`/api/chat/sessions/${sessionId}`), { headers: platform.headers(actor) })).json()) as {
      messages: StoredMessage[];
      session: { title: string };
    };

  before(async () => {
    // a bound far beyond the test: only the streams' own starts open the gate
    platform = await startPlatform({ env: { LOCAL_MODEL_TOKENS: '40', LOCAL_MODEL_TOKEN_DELAY_MS: '5', STORE_DEFER_MAX_MS: '60000' } });
  });
  after(async () => {
    await platform.stop();
  });

  it('writes nothing while the stream waits for its reservation; the user message, title and reply are stored before done', async () => {
    const user = testActor('enduser');
    const sessionId = await createSession(platform, user);
    const release = platform.accounting.holdReservations();
    const opening = streamMessage(platform, user, sessionId, 'Deferred writes\nsecond line');
    try {
      await waitFor(
        () => platform.accounting.reservationsWaiting === 1 && runtime().gate.waiting >= 1,
        'the reservation held and the user message behind the gate',
      );
      // the insert is parked in the gate (not running), so the store cannot have it
      const stored = await runtime().sessions.dal.messages.countDocuments({ sessionId: new Types.ObjectId(sessionId) });
      expect(stored).to.equal(0);
      expect(runtime().gate.starting).to.equal(1);
    } finally {
      release();
    }
    const stream = await opening;
    await stream.waitForEnd();
    expect(stream.terminal()?.event).to.equal('done');
    const { messages, session } = await messagesOf(user, sessionId);
    expect(messages.map((m) => [m.role, m.status])).to.deep.equal([
      ['user', 'complete'],
      ['assistant', 'complete'],
    ]);
    expect(messages[1]?.content).to.equal(stream.text());
    expect(session.title).to.equal('Deferred writes');
    expect(runtime().gate.starting).to.equal(0);
    expect(runtime().gate.waiting).to.equal(0);
  });

  it('a deferred user message write that fails ends the stream with an error event and charges what was produced, once', async () => {
    const user = testActor('enduser');
    const sessionId = await createSession(platform, user);
    const { dal } = runtime().sessions;
    const original = dal.addMessage.bind(dal);
    let failed = 0;
    dal.addMessage = async (message) => {
      if (message.role !== 'user') return original(message);
      failed++;
      throw new Error('injected store failure');
    };
    try {
      const stream = await streamMessage(platform, user, sessionId, 'this write will fail');
      await stream.waitForEnd();
      const { reservationId } = (stream.events[0] as SseEvent).data as { reservationId: string };
      expect(failed).to.equal(1);
      // the write ran once the first delta was out, so something was produced and is charged
      expect(stream.named('delta').length).to.be.greaterThan(0);
      const terminal = stream.terminal() as SseEvent;
      expect(terminal.event).to.equal('error');
      expect(stream.events.filter((e) => ['done', 'interrupted', 'error'].includes(e.event))).to.have.length(1);
      const usage = terminal.data.usage as { outputTokens: number };
      expect(usage.outputTokens).to.be.greaterThan(0);
      const charges = platform.accounting.chargesOf(reservationId);
      expect(charges).to.have.length(1);
      expect(terminal.data.credits).to.equal(platform.accounting.reservations.get(reservationId)?.charged);
      expect(terminal.data.credits).to.be.greaterThan(0);
      const assistant = (await messagesOf(user, sessionId)).messages.find((m) => m.role === 'assistant');
      expect(assistant?.status).to.equal('error');
      expect(assistant?.credits).to.equal(terminal.data.credits);
    } finally {
      dal.addMessage = original;
    }
  });
});
