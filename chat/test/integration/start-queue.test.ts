import { expectProblem, testActor } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { Types } from 'mongoose';
import type { ChatRuntime } from '../../src/runtime.ts';
import { createSession, fetch, type Platform, type SseClient, type SseEvent, startPlatform, streamMessage, waitFor } from '../support/harness.ts';

describe('start queue: a bounded number of streams in their start at once, the rest wait their turn holding nothing (real stores, accounting stand-in)', () => {
  let platform: Platform;
  const runtime = () => platform.instances[0]?.stores.runtime as ChatRuntime;
  const url = (path: string) => `${platform.instances[0]?.url}${path}`;
  const initializeCalls = (sessionId: string) => platform.accounting.calls.filter((c) => c.path.endsWith('/initialize') && c.body.sessionId === sessionId);
  const storedMessages = (sessionId: string) => runtime().sessions.dal.messages.countDocuments({ sessionId: new Types.ObjectId(sessionId) });

  before(async () => {
    // one stream in its start at once, one more may wait
    platform = await startPlatform({
      env: { STREAM_START_CONCURRENCY: '1', STREAM_START_QUEUE_MAX: '1', LOCAL_MODEL_TOKENS: '5', LOCAL_MODEL_TOKEN_DELAY_MS: '5' },
    });
  });
  after(async () => {
    await platform.stop();
  });

  /** a stream whose reservation is held at accounting (so it stays in its start) until the returned release */
  async function holdOneStart() {
    const user = testActor('enduser');
    const sessionId = await createSession(platform, user);
    const release = platform.accounting.holdReservations();
    const opening = streamMessage(platform, user, sessionId, 'first in line');
    await waitFor(() => platform.accounting.reservationsWaiting === 1, 'the first stream reserving');
    return { opening, release };
  }

  it('a stream that waits its turn reserves only once it has it, and is open (session event with its reservation) before its first token', async () => {
    const first = await holdOneStart();
    const user = testActor('enduser');
    const sessionId = await createSession(platform, user);
    const second = streamMessage(platform, user, sessionId, 'second in line');
    try {
      await waitFor(() => runtime().starts.waiting === 1, 'the second stream waiting its turn');
      expect(runtime().starts.running).to.equal(1);
      expect(initializeCalls(sessionId)).to.have.length(0);
      expect(await storedMessages(sessionId)).to.equal(0);
    } finally {
      first.release();
    }
    const streams = await Promise.all([first.opening, second]);
    await Promise.all(streams.map((stream) => stream.waitForEnd()));
    const queued = streams[1] as SseClient;
    expect(queued.terminal()?.event).to.equal('done');
    expect(queued.events[0]?.event).to.equal('session');
    const { reservationId } = (queued.events[0] as SseEvent).data as { reservationId: string };
    expect(initializeCalls(sessionId).map((c) => [c.body.reservationId, c.status])).to.deep.equal([[reservationId, 200]]);
    expect(platform.accounting.chargesOf(reservationId)).to.have.length(1);
    expect(runtime().starts.running).to.equal(0);
  });

  it('a client that leaves while it waits frees its place: nothing reserved, stored or charged, and the session is free', async () => {
    const first = await holdOneStart();
    const user = testActor('enduser');
    const sessionId = await createSession(platform, user);
    const leaving = new AbortController();
    const gone = fetch(url(`/api/chat/sessions/${sessionId}/stream`), {
      method: 'POST',
      headers: platform.json(user),
      body: JSON.stringify({ message: 'I will not wait' }),
      signal: leaving.signal,
    }).catch(() => undefined);
    try {
      await waitFor(() => runtime().starts.waiting === 1, 'the stream waiting its turn');
      leaving.abort();
      await gone;
      await waitFor(() => runtime().starts.waiting === 0, 'the place freed');
      expect(runtime().starts.running).to.equal(1);
    } finally {
      first.release();
    }
    await (await first.opening).waitForEnd();
    expect(initializeCalls(sessionId)).to.have.length(0);
    expect(await storedMessages(sessionId)).to.equal(0);
    expect(await runtime().streams.isStreaming(sessionId)).to.equal(false);
    // the session takes a stream at once
    const next = await streamMessage(platform, user, sessionId, 'now I wait');
    await next.waitForEnd();
    expect(next.terminal()?.event).to.equal('done');
  });

  it('refuses a stream at once (503, Retry-After) when the queue is full, reserving nothing', async () => {
    const first = await holdOneStart();
    const waiting = testActor('enduser');
    const waitingSession = await createSession(platform, waiting);
    const second = streamMessage(platform, waiting, waitingSession, 'I may wait');
    const refused = testActor('enduser');
    const refusedSession = await createSession(platform, refused);
    try {
      await waitFor(() => runtime().starts.waiting === 1, 'the second stream waiting its turn');
      const response = await fetch(url(`/api/chat/sessions/${refusedSession}/stream`), {
        method: 'POST',
        headers: platform.json(refused),
        body: JSON.stringify({ message: 'no room for me' }),
      });
      expect(response.headers.get('retry-after')).to.equal('1');
      await expectProblem(response, 503, 'UPSTREAM_UNAVAILABLE');
    } finally {
      first.release();
    }
    const streams = await Promise.all([first.opening, second]);
    await Promise.all(streams.map((stream) => stream.waitForEnd()));
    expect(streams.map((stream) => stream.terminal()?.event)).to.deep.equal(['done', 'done']);
    expect(initializeCalls(refusedSession)).to.have.length(0);
    expect(await storedMessages(refusedSession)).to.equal(0);
  });
});
