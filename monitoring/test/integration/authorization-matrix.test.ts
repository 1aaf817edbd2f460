import { randomUUID } from 'node:crypto';
import type { Actor } from '@platform/shared-types';
import { testActor } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { startTestMonitoring, type TestMonitoring } from '../support/monitoring.ts';

/**
 * Every public monitoring route against every kind of caller. Statuses only: the bodies are checked in the
 * feature suites. `supervisor` supervises `student`; `stranger` is a supervisor who does not.
 */
describe('authorization matrix (real stores)', () => {
  let m: TestMonitoring;
  const admin = testActor('admin');
  const supervisor = testActor('supervisor');
  const stranger = testActor('supervisor');
  const student = testActor('enduser');
  const sessionId = `sess-${randomUUID().slice(0, 8)}`;

  before(async () => {
    m = await startTestMonitoring();
    for (const actor of [admin, supervisor, stranger, student]) m.fakeAuth.add(actor);
    const created = await fetch(`${m.url}/api/monitoring/relationships`, {
      method: 'POST',
      headers: { ...m.auth.identityHeaders(admin), 'content-type': 'application/json' },
      body: JSON.stringify({ supervisorId: supervisor.userId, studentId: student.userId }),
    });
    expect(created.status).to.equal(201);
    m.chat.open(sessionId, student.userId);
    m.chat.emit(sessionId, 'done', { messageId: 'm', usage: { inputTokens: 1, outputTokens: 1 }, credits: 1 }); // ended: each observe answers and closes
  });
  after(async () => {
    await m?.stop();
  });

  type Caller = 'anonymous' | 'admin' | 'supervisor' | 'stranger' | 'student';
  const actors: Record<Exclude<Caller, 'anonymous'>, Actor> = { admin, supervisor, stranger, student };
  const routes: Array<{ name: string; method: string; path: () => string; body?: () => unknown; expected: Record<Caller, number> }> = [
    {
      name: 'POST /api/monitoring/relationships (pair exists)',
      method: 'POST',
      path: () => '/api/monitoring/relationships',
      body: () => ({ supervisorId: supervisor.userId, studentId: student.userId }),
      expected: { anonymous: 401, admin: 409, supervisor: 403, stranger: 403, student: 403 },
    },
    {
      name: 'GET /api/monitoring/relationships',
      method: 'GET',
      path: () => '/api/monitoring/relationships',
      expected: { anonymous: 401, admin: 200, supervisor: 200, stranger: 200, student: 403 },
    },
    {
      name: 'GET /api/monitoring/relationships?supervisorId=<supervisor>',
      method: 'GET',
      path: () => `/api/monitoring/relationships?supervisorId=${supervisor.userId}`,
      expected: { anonymous: 401, admin: 200, supervisor: 200, stranger: 403, student: 403 },
    },
    {
      name: 'DELETE /api/monitoring/relationships/<unknown>',
      method: 'DELETE',
      path: () => `/api/monitoring/relationships/${randomUUID()}`,
      expected: { anonymous: 401, admin: 404, supervisor: 403, stranger: 403, student: 403 },
    },
    {
      name: 'GET /api/supervised-students',
      method: 'GET',
      path: () => '/api/supervised-students',
      expected: { anonymous: 401, admin: 200, supervisor: 200, stranger: 200, student: 403 },
    },
    {
      name: 'GET /api/supervised-students/<student>?supervisorId=<supervisor>',
      method: 'GET',
      path: () => `/api/supervised-students/${student.userId}?supervisorId=${supervisor.userId}`,
      expected: { anonymous: 401, admin: 200, supervisor: 200, stranger: 403, student: 403 },
    },
    {
      name: 'GET /api/observe/<student>/<session>/stream',
      method: 'GET',
      path: () => `/api/observe/${student.userId}/${sessionId}/stream`,
      expected: { anonymous: 401, admin: 200, supervisor: 200, stranger: 403, student: 403 },
    },
  ];

  for (const route of routes) {
    it(route.name, async () => {
      const seen: Record<string, number> = {};
      for (const caller of Object.keys(route.expected) as Caller[]) {
        // what the gateway sends: signed identity headers and the caller's bearer token (streams run under it)
        const headers: Record<string, string> =
          caller === 'anonymous' ? {} : { ...m.auth.identityHeaders(actors[caller]), authorization: `Bearer ${m.auth.token(actors[caller])}` };
        if (route.body) headers['content-type'] = 'application/json';
        const response = await fetch(`${m.url}${route.path()}`, { method: route.method, headers, body: route.body ? JSON.stringify(route.body()) : undefined });
        await response.arrayBuffer();
        seen[caller] = response.status;
      }
      expect(seen).to.deep.equal(route.expected);
    });
  }
});
