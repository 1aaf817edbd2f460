import { randomUUID } from 'node:crypto';
import type { Actor } from '@platform/shared-types';
import { expectProblem, testActor } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { waitFor } from '../support/fake-services.ts';
import { startTestMonitoring, type TestMonitoring } from '../support/monitoring.ts';

/** Reads an SSE response into parsed events and comments until stopped. */
function readEvents(response: Response) {
  const events: EventSourceMessage[] = [];
  const comments: string[] = [];
  const parser = createParser({ onEvent: (event) => events.push(event), onComment: (comment) => comments.push(comment) });
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  const done = (async () => {
    for (;;) {
      const { value, done: finished } = await reader.read();
      if (finished) return;
      parser.feed(decoder.decode(value, { stream: true }));
    }
  })();
  return { events, comments, done, cancel: () => reader.cancel() };
}

describe('supervised students and the observe relay (real stores, fake auth/accounting/chat over HTTP)', () => {
  let m: TestMonitoring;
  const admin = testActor('admin');
  const supervisor = testActor('supervisor');
  const stranger = testActor('supervisor');
  const student = testActor('enduser');
  const student2 = testActor('enduser');
  const unsupervised = testActor('enduser');

  before(async () => {
    m = await startTestMonitoring();
    for (const actor of [admin, supervisor, stranger, student, student2, unsupervised]) m.fakeAuth.add(actor);
    for (const st of [student, student2]) {
      const response = await fetch(`${m.url}/api/monitoring/relationships`, {
        method: 'POST',
        headers: { ...m.auth.identityHeaders(admin), 'content-type': 'application/json' },
        body: JSON.stringify({ supervisorId: supervisor.userId, studentId: st.userId }),
      });
      expect(response.status).to.equal(201);
    }
    m.accounting.balances.set(student.userId, { available: 120, reserved: 30 });
    m.accounting.active.set(student.userId, [
      { reservationId: randomUUID(), sessionId: 'sess-live-1', modelId: 'local-echo', reservedCredits: 30, startedAt: new Date().toISOString() },
    ]);
  });
  after(async () => {
    await m?.stop();
  });

  const as = (actor: Actor) => ({ ...m.auth.identityHeaders(actor), authorization: `Bearer ${m.auth.token(actor)}` });
  const get = (actor: Actor, path: string, init: RequestInit = {}) => fetch(`${m.url}${path}`, { ...init, headers: as(actor) });

  describe('GET /api/supervised-students', () => {
    it('lists a supervisor’s students with names, balances, running streams and since', async () => {
      const response = await get(supervisor, '/api/supervised-students');
      expect(response.status).to.equal(200);
      const body = (await response.json()) as {
        supervisorId: string;
        total: number;
        sources: Record<string, string>;
        students: Array<{ id: string; username: string; email: string; since: string; balance: unknown; activeStreams: Array<{ sessionId: string }> }>;
      };
      expect(body.supervisorId).to.equal(supervisor.userId);
      expect(body.total).to.equal(2);
      expect(body.sources).to.deep.equal({ auth: 'ok', accounting: 'ok' });
      const first = body.students.find((s) => s.id === student.userId);
      expect(first).to.include({ username: student.username, email: student.email });
      expect(first?.balance).to.deep.equal({ available: 120, reserved: 30 });
      expect(first?.activeStreams.map((s) => s.sessionId)).to.deep.equal(['sess-live-1']);
      const second = body.students.find((s) => s.id === student2.userId);
      expect(second?.balance).to.deep.equal({ available: 0, reserved: 0 });
      expect(second?.activeStreams).to.deep.equal([]);
    });

    it('lets an admin pick the supervisor; FORBIDDEN for a supervisor asking about another, or an enduser', async () => {
      const body = (await (await get(admin, `/api/supervised-students?supervisorId=${supervisor.userId}`)).json()) as { total: number };
      expect(body.total).to.equal(2);
      await expectProblem(await get(stranger, `/api/supervised-students?supervisorId=${supervisor.userId}`), 403, 'FORBIDDEN');
      await expectProblem(await get(student, '/api/supervised-students'), 403, 'FORBIDDEN');
      await expectProblem(await fetch(`${m.url}/api/supervised-students`), 401, 'UNAUTHENTICATED');
    });

    it('answers one student; FORBIDDEN for a student not supervised, NOT_FOUND for an admin asking about nobody', async () => {
      const one = (await (await get(supervisor, `/api/supervised-students/${student.userId}`)).json()) as { student: { id: string } };
      expect(one.student.id).to.equal(student.userId);
      await expectProblem(await get(supervisor, `/api/supervised-students/${unsupervised.userId}`), 403, 'FORBIDDEN');
      await expectProblem(await get(stranger, `/api/supervised-students/${student.userId}`), 403, 'FORBIDDEN');
      await expectProblem(await get(admin, `/api/supervised-students/nobody-${randomUUID().slice(0, 8)}?supervisorId=${supervisor.userId}`), 404, 'NOT_FOUND');
    });

    it('still answers with the students, balances unknown, when accounting is unreachable', async () => {
      const other = await startTestMonitoring({ auth: m.auth, env: { ACCOUNTING_URL: 'http://127.0.0.1:9' } });
      try {
        other.fakeAuth.add(supervisor);
        other.fakeAuth.add(student);
        const created = await fetch(`${other.url}/api/monitoring/relationships`, {
          method: 'POST',
          headers: { ...other.auth.identityHeaders(admin), 'content-type': 'application/json' },
          body: JSON.stringify({ supervisorId: supervisor.userId, studentId: student.userId }),
        });
        expect(created.status).to.equal(201);
        const response = await fetch(`${other.url}/api/supervised-students`, { headers: other.auth.identityHeaders(supervisor) });
        expect(response.status).to.equal(200);
        const body = (await response.json()) as {
          sources: Record<string, string>;
          students: Array<{ username: string; balance: unknown; activeStreams: unknown }>;
        };
        expect(body.sources).to.deep.equal({ auth: 'ok', accounting: 'unavailable' });
        expect(body.students[0]).to.include({ username: student.username, balance: null, activeStreams: null });
      } finally {
        await other.stop();
      }
    });
  });

  describe('GET /api/observe/:studentId/:sessionId/stream', () => {
    it('relays a live stream event by event with heartbeats, and closes the upstream when the supervisor leaves', async () => {
      const sessionId = `sess-${randomUUID().slice(0, 8)}`;
      m.chat.open(sessionId, student.userId);
      m.chat.emit(sessionId, 'session', { sessionId, messageId: 'm1', reservationId: randomUUID() });
      const controller = new AbortController();
      const response = await get(supervisor, `/api/observe/${student.userId}/${sessionId}/stream`, { signal: controller.signal });
      expect(response.status).to.equal(200);
      expect(response.headers.get('content-type')).to.match(/^text\/event-stream/);
      const stream = readEvents(response);
      stream.done.catch(() => undefined);
      await waitFor(() => stream.events.length === 1, 'the replayed session event');
      m.chat.emit(sessionId, 'delta', { text: 'Hello' });
      m.chat.emit(sessionId, 'delta', { text: ' line1\nline2' });
      m.chat.emit(sessionId, 'feedback', { message: 'keep going' });
      await waitFor(() => stream.events.length === 4, 'the live events');
      expect(stream.events.map((e) => e.event)).to.deep.equal(['session', 'delta', 'delta', 'feedback']);
      expect(JSON.parse(stream.events[2]?.data ?? '{}')).to.deep.equal({ text: ' line1\nline2' });
      await waitFor(() => stream.comments.includes('heartbeat'), 'a heartbeat');
      expect(m.chat.openObservers).to.equal(1);
      expect(m.service.monitoring.relay.openCount).to.equal(1);

      const closed = new Promise((resolve) => m.chat.events.once('observer-closed', resolve));
      controller.abort();
      await closed;
      await waitFor(() => m.service.monitoring.relay.openCount === 0 && m.chat.openObservers === 0, 'the relay and the upstream to close');
    });

    it('ends with the terminal event when chat ends the stream', async () => {
      const sessionId = `sess-${randomUUID().slice(0, 8)}`;
      m.chat.open(sessionId, student.userId);
      const response = await get(supervisor, `/api/observe/${student.userId}/${sessionId}/stream`);
      const stream = readEvents(response);
      await waitFor(() => m.chat.openObservers === 1, 'the upstream to open');
      m.chat.emit(sessionId, 'delta', { text: 'hi' });
      m.chat.emit(sessionId, 'interrupted', {
        messageId: 'm',
        by: supervisor.username,
        byUserId: supervisor.userId,
        reason: 'stop',
        usage: { inputTokens: 1, outputTokens: 1 },
        credits: 1,
      });
      await stream.done;
      expect(stream.events.map((e) => e.event)).to.deep.equal(['delta', 'interrupted']);
    });

    it('lets an admin observe anyone', async () => {
      const sessionId = `sess-${randomUUID().slice(0, 8)}`;
      m.chat.open(sessionId, unsupervised.userId);
      m.chat.emit(sessionId, 'done', { messageId: 'm', usage: { inputTokens: 1, outputTokens: 1 }, credits: 1 });
      const response = await get(admin, `/api/observe/${unsupervised.userId}/${sessionId}/stream`);
      const stream = readEvents(response);
      await stream.done;
      expect(stream.events.map((e) => e.event)).to.deep.equal(['done']);
    });

    it('refuses before the stream opens: FORBIDDEN for a non-supervisor, NOT_FOUND for a session not the student’s', async () => {
      const sessionId = `sess-${randomUUID().slice(0, 8)}`;
      m.chat.open(sessionId, student.userId);
      await expectProblem(await get(stranger, `/api/observe/${student.userId}/${sessionId}/stream`), 403, 'FORBIDDEN');
      await expectProblem(await get(student, `/api/observe/${student.userId}/${sessionId}/stream`), 403, 'FORBIDDEN');
      await expectProblem(await get(supervisor, `/api/observe/${unsupervised.userId}/${sessionId}/stream`), 403, 'FORBIDDEN');
      // the session exists but belongs to someone else: chat's 404 becomes NOT_FOUND
      await expectProblem(await get(supervisor, `/api/observe/${student2.userId}/${sessionId}/stream`), 404, 'NOT_FOUND');
      await expectProblem(await get(admin, `/api/observe/${student.userId}/no-such-session/stream`), 404, 'NOT_FOUND');
      expect(m.chat.openObservers).to.equal(0);
    });

    it('ends the relay when the relationship is deleted mid-stream', async () => {
      const pupil = testActor('enduser');
      m.fakeAuth.add(pupil);
      const created = await fetch(`${m.url}/api/monitoring/relationships`, {
        method: 'POST',
        headers: { ...m.auth.identityHeaders(admin), 'content-type': 'application/json' },
        body: JSON.stringify({ supervisorId: supervisor.userId, studentId: pupil.userId }),
      });
      const { relationship } = (await created.json()) as { relationship: { id: string } };
      const sessionId = `sess-${randomUUID().slice(0, 8)}`;
      m.chat.open(sessionId, pupil.userId);
      const stream = readEvents(await get(supervisor, `/api/observe/${pupil.userId}/${sessionId}/stream`));
      await waitFor(() => m.chat.openObservers === 1, 'the upstream to open');
      const closed = new Promise((resolve) => m.chat.events.once('observer-closed', resolve));
      expect((await get(admin, `/api/monitoring/relationships/${relationship.id}`, { method: 'DELETE' })).status).to.equal(204);
      await stream.done;
      await closed;
      expect(stream.events.at(-1)?.event).to.equal('error');
      expect(JSON.parse(stream.events.at(-1)?.data ?? '{}')).to.include({ code: 'FORBIDDEN' });
    });

    it('answers UPSTREAM_UNAVAILABLE when chat is unreachable', async () => {
      const other = await startTestMonitoring({ auth: m.auth, env: { CHAT_URL: 'http://127.0.0.1:9' } });
      try {
        const response = await fetch(`${other.url}/api/observe/${student.userId}/s1/stream`, { headers: other.auth.identityHeaders(admin) });
        expect(response.status).to.be.oneOf([502, 503]);
        expect(((await response.json()) as { code: string }).code).to.equal('UPSTREAM_UNAVAILABLE');
      } finally {
        await other.stop();
      }
    });
  });
});
