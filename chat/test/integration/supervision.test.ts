import { expectProblem, testActor } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { type ChatService, createSession, fetch, type Platform, SseClient, type SseEvent, startPlatform, streamMessage, waitFor } from '../support/harness.ts';

describe('observers, interrupts and feedback across two chat instances (shared MongoDB and Redis)', () => {
  let platform: Platform;
  const instance = (i: number) => platform.instances[i] as ChatService;
  const student = testActor('enduser');
  const supervisor = testActor('supervisor');
  const stranger = testActor('supervisor');
  const admin = testActor('admin');

  const observe = (i: number, sessionId: string, userId = student.userId) =>
    SseClient.open(`${instance(i).url}/internal/sessions/${sessionId}/observe?userId=${userId}`, {
      headers: platform.auth.serviceHeaders('monitoring', 'chat'),
    });
  const interrupt = (i: number, actor: ReturnType<typeof testActor>, sessionId: string, reason?: string) =>
    fetch(`${instance(i).url}/api/sessions/${sessionId}/interrupt`, {
      method: 'POST',
      headers: platform.json(actor),
      body: JSON.stringify(reason ? { reason } : {}),
    });
  const studentEvents = async (i: number) => {
    const events = await SseClient.open(`${instance(i).url}/api/chat/events`, { headers: platform.headers(student) });
    await events.waitForComment('ready');
    return events;
  };

  before(async () => {
    // long enough replies (200 tokens x 5 ms) that there is time to join and to interrupt
    platform = await startPlatform({ count: 2, env: { LOCAL_MODEL_TOKENS: '200', LOCAL_MODEL_TOKEN_DELAY_MS: '5' } });
    platform.monitoring.supervise(supervisor.userId, student.userId);
  });
  after(async () => {
    await platform.stop();
  });

  it('an observer on instance A replays and follows a stream held by instance B to its end', async () => {
    const sessionId = await createSession(platform, student);
    const stream = await streamMessage(platform, student, sessionId, 'observe me', 1);
    await waitFor(() => stream.named('delta').length >= 5, 'some deltas');
    const observer = await observe(0, sessionId);
    expect(observer.status).to.equal(200);
    await observer.waitForEvent('done');
    await stream.waitForEnd();
    expect(observer.events[0]?.event).to.equal('session');
    expect(observer.events[0]?.data).to.deep.equal(stream.events[0]?.data);
    expect(observer.text()).to.equal(stream.text()); // replayed start + live rest, nothing twice, nothing lost
    expect(observer.named('done')[0]?.data).to.deep.equal(stream.terminal()?.data);
    observer.abort();
  });

  it('observe is service-only and 404 unless the session belongs to the named user', async () => {
    const sessionId = await createSession(platform, student);
    await expectProblem(await fetch(`${instance(0).url}/internal/sessions/${sessionId}/observe?userId=${student.userId}`), 401, 'UNAUTHENTICATED');
    await expectProblem(
      await fetch(`${instance(0).url}/internal/sessions/${sessionId}/observe?userId=${student.userId}`, { headers: platform.headers(admin) }),
      401,
      'UNAUTHENTICATED',
    );
    const wrong = await fetch(`${instance(0).url}/internal/sessions/${sessionId}/observe?userId=${stranger.userId}`, {
      headers: platform.auth.serviceHeaders('monitoring', 'chat'),
    });
    await expectProblem(wrong as unknown as Response, 404, 'NOT_FOUND');
  });

  for (const [label, target] of [
    ['the holding instance', 1],
    ['the other instance', 0],
  ] as const) {
    it(`an interrupt sent to ${label} stops the stream, charges the partial reply once, and tells student and observers`, async () => {
      const sessionId = await createSession(platform, student);
      const events = await studentEvents(0);
      const stream = await streamMessage(platform, student, sessionId, 'keep talking', 1);
      const { reservationId } = (await stream.waitForEvent('session')).data as { reservationId: string };
      const observer = await observe(0, sessionId);
      await waitFor(() => stream.named('delta').length >= 3, 'some deltas');
      const accepted = await interrupt(target, supervisor, sessionId, 'off topic');
      expect(accepted.status).to.equal(202);
      await stream.waitForEnd();
      const terminal = stream.terminal();
      expect(terminal?.event).to.equal('interrupted');
      expect(terminal?.data).to.include({ by: supervisor.username, reason: 'off topic' });
      expect(((terminal as SseEvent).data.usage as { outputTokens: number }).outputTokens)
        .to.be.greaterThan(0)
        .and.lessThan(200);
      expect(stream.named('delta').length).to.be.lessThan(200);
      expect(platform.accounting.chargesOf(reservationId)).to.have.length(1);
      expect(platform.accounting.chargesOf(reservationId)[0]?.path).to.equal('/internal/streaming-sessions/abort');
      expect(terminal?.data.credits).to.equal(platform.accounting.reservations.get(reservationId)?.charged);

      const seen = await observer.waitForEvent('interrupted');
      expect(seen.data).to.deep.equal(terminal?.data);
      const told = await events.waitForEvent('interrupted');
      expect(told.data).to.include({ sessionId, by: supervisor.username, reason: 'off topic' });
      const stored = (await (await fetch(`${instance(0).url}/api/chat/sessions/${sessionId}`, { headers: platform.headers(student) })).json()) as {
        messages: Array<{ role: string; status: string }>;
      };
      expect(stored.messages.find((m) => m.role === 'assistant')?.status).to.equal('interrupted');
      observer.abort();
      events.abort();
    });
  }

  it('only a supervisor of the owner (checked with monitoring, on their behalf) or an admin may interrupt', async () => {
    const sessionId = await createSession(platform, student);
    const stream = await streamMessage(platform, student, sessionId, 'who may stop me', 0);
    await stream.waitForEvent('delta');
    await expectProblem((await interrupt(0, stranger, sessionId)) as unknown as Response, 403, 'FORBIDDEN');
    expect(platform.monitoring.calls.some((c) => c.supervisorId === stranger.userId && c.studentId === student.userId && c.hadUserToken)).to.equal(true);
    await expectProblem((await interrupt(0, testActor('enduser'), sessionId)) as unknown as Response, 404, 'NOT_FOUND');
    expect((await interrupt(1, admin, sessionId)).status).to.equal(202);
    await stream.waitForEnd();
    expect(stream.terminal()?.event).to.equal('interrupted');
    // nothing running now
    await expectProblem((await interrupt(0, admin, sessionId)) as unknown as Response, 409, 'CONFLICT');
    await expectProblem((await interrupt(0, admin, '0123456789abcdef01234567')) as unknown as Response, 404, 'NOT_FOUND');
  });

  it('an instance that shuts down mid-stream ends the stream, stores the partial reply and charges it once', async () => {
    const extra = await startPlatform({ count: 2, env: { LOCAL_MODEL_TOKENS: '200', LOCAL_MODEL_TOKEN_DELAY_MS: '5' } });
    try {
      const sessionId = await createSession(extra, student);
      const stream = await streamMessage(extra, student, sessionId, 'going down', 1);
      const { reservationId } = (await stream.waitForEvent('session')).data as { reservationId: string };
      await waitFor(() => stream.named('delta').length >= 3, 'some deltas');
      await (extra.instances[1] as ChatService).stop();
      expect(extra.accounting.chargesOf(reservationId)).to.have.length(1);
      expect(extra.accounting.chargesOf(reservationId)[0]?.path).to.equal('/internal/streaming-sessions/abort');
      const stored = (await (await fetch(`${extra.instances[0]?.url}/api/chat/sessions/${sessionId}`, { headers: extra.headers(student) })).json()) as {
        messages: Array<{ role: string; status: string }>;
      };
      expect(stored.messages.find((m) => m.role === 'assistant')?.status).to.equal('interrupted');
      // the lock went with it: the session takes a new stream on the other instance
      const next = await streamMessage(extra, student, sessionId, 'still there?', 0);
      await next.waitForEnd();
      expect(next.terminal()?.event).to.equal('done');
    } finally {
      await extra.stop();
    }
  });

  it("feedback is stored as a supervisor message and reaches the student's event stream on any instance, and observers", async () => {
    const sessionId = await createSession(platform, student);
    const events = await studentEvents(1);
    const observer = await observe(1, sessionId);
    await observer.waitForComment('live');
    const response = await fetch(`${instance(0).url}/api/sessions/${sessionId}/feedback`, {
      method: 'POST',
      headers: platform.json(supervisor),
      body: JSON.stringify({ message: 'Cite your sources' }),
    });
    expect(response.status).to.equal(201);
    const feedback = await events.waitForEvent('feedback');
    expect(feedback.data).to.include({ sessionId, content: 'Cite your sources' });
    expect(feedback.data.from).to.include({ userId: supervisor.userId, role: 'supervisor' });
    expect((await observer.waitForEvent('feedback')).data).to.deep.equal(feedback.data);
    const stored = (await (await fetch(`${instance(1).url}/api/chat/sessions/${sessionId}`, { headers: platform.headers(student) })).json()) as {
      messages: Array<{ role: string; content: string; authorId?: string }>;
    };
    expect(stored.messages).to.deep.include({ ...stored.messages[0], role: 'supervisor', content: 'Cite your sources', authorId: supervisor.userId });
    await expectProblem(
      (await fetch(`${instance(0).url}/api/sessions/${sessionId}/feedback`, {
        method: 'POST',
        headers: platform.json(stranger),
        body: JSON.stringify({ message: 'hi' }),
      })) as unknown as Response,
      403,
      'FORBIDDEN',
    );
    await expectProblem(
      (await fetch(`${instance(0).url}/api/sessions/${sessionId}/feedback`, {
        method: 'POST',
        headers: platform.json(supervisor),
        body: JSON.stringify({ message: '' }),
      })) as unknown as Response,
      400,
      'VALIDATION_FAILED',
    );
    events.abort();
    observer.abort();
  });
});
