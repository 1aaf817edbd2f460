import { randomUUID } from 'node:crypto';
import type { Actor } from '@platform/shared-types';
import { listen } from '@platform/shared-types/express';
import { testActor } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { assertInvariant } from '../../src/features/credits/invariant.ts';
import { type Harness, startAccounting } from '../helpers.ts';

describe('accounting authorization and bad input (real PostgreSQL, monitoring over real HTTP)', () => {
  let h: Harness;
  const admin = testActor('admin');
  const supervisor = testActor('supervisor');
  const otherSupervisor = testActor('supervisor');
  const student = testActor('enduser');
  const stranger = testActor('enduser');

  before(async () => {
    h = await startAccounting();
    h.monitoring.supervise(supervisor, student);
    for (const actor of [admin, supervisor, otherSupervisor, student, stranger]) await h.api.as(actor, 'GET', '/api/credits/total-balance');
    const res = await h.api.as(admin, 'POST', '/api/credits/allocate', { userId: student.userId, credits: 1000 });
    expect(res.status).to.equal(201);
  });
  after(async () => {
    for (const actor of [admin, supervisor, otherSupervisor, student, stranger]) await assertInvariant(h.db, actor.userId);
    await h.stop();
  });

  type Who = 'admin' | 'supervisor' | 'otherSupervisor' | 'student' | 'stranger';
  const actors: Record<Who, Actor> = { admin, supervisor, otherSupervisor, student, stranger };
  const s = () => student.userId;
  // route -> roles allowed (everyone else gets 403; no identity gets 401)
  const matrix: Array<{ name: string; method: string; path: () => string; body?: () => unknown; allowed: Who[] }> = [
    { name: 'balance', method: 'GET', path: () => `/api/credits/balance?userId=${s()}`, allowed: ['admin', 'supervisor', 'student'] },
    { name: 'total-balance', method: 'GET', path: () => `/api/credits/total-balance?userId=${s()}`, allowed: ['admin', 'supervisor', 'student'] },
    { name: 'allocate', method: 'POST', path: () => '/api/credits/allocate', body: () => ({ userId: s(), credits: 5 }), allowed: ['admin', 'supervisor'] },
    { name: 'deduct', method: 'POST', path: () => '/api/credits/deduct', body: () => ({ userId: s(), credits: 1 }), allowed: ['admin'] },
    {
      name: 'calculate',
      method: 'POST',
      path: () => '/api/credits/calculate',
      body: () => ({ modelId: 'local-dev', inputTokens: 1, outputTokens: 1 }),
      allowed: ['admin', 'supervisor', 'otherSupervisor', 'student', 'stranger'],
    },
    { name: 'transactions', method: 'GET', path: () => `/api/credits/transactions?userId=${s()}`, allowed: ['admin', 'supervisor', 'student'] },
    { name: 'usage stats', method: 'GET', path: () => `/api/usage/stats?userId=${s()}`, allowed: ['admin', 'supervisor', 'student'] },
    { name: 'prices', method: 'GET', path: () => '/api/models/prices', allowed: ['admin', 'supervisor', 'otherSupervisor', 'student', 'stranger'] },
    { name: 'update price', method: 'PUT', path: () => '/api/models/prices/local-dev', body: () => ({ inputPer1k: 1, outputPer1k: 2 }), allowed: ['admin'] },
    { name: 'active streams', method: 'GET', path: () => `/api/streaming-sessions/active/${s()}`, allowed: ['admin', 'supervisor'] },
  ];

  for (const route of matrix) {
    it(`${route.method} ${route.name}: allowed for ${route.allowed.join(', ')}; 403 for the rest; 401 without identity`, async () => {
      for (const [who, actor] of Object.entries(actors) as Array<[Who, Actor]>) {
        const res = await h.api.as(actor, route.method, route.path(), route.body?.());
        const text = await res.text();
        if (route.allowed.includes(who)) expect(res.status, `${who}: ${text}`).to.be.within(200, 201);
        else {
          expect(res.status, `${who}: ${text}`).to.equal(403);
          expect(JSON.parse(text).code).to.equal('FORBIDDEN');
        }
      }
      const anonymous = await fetch(`${h.service.url}${route.path()}`, {
        method: route.method,
        headers: route.body ? { 'content-type': 'application/json' } : {},
        body: route.body ? JSON.stringify(route.body()) : undefined,
      });
      expect(anonymous.status).to.equal(401);
    });
  }

  it('asks monitoring, with a service token, whether the supervisor supervises the student', () => {
    expect(h.monitoring.calls).to.deep.include({ supervisorId: supervisor.userId, studentId: student.userId, caller: 'accounting' });
    expect(h.monitoring.calls).to.deep.include({ supervisorId: otherSupervisor.userId, studentId: student.userId, caller: 'accounting' });
  });

  it('lets a supervisor allocate to an own student only, never to itself', async () => {
    const own = await h.api.as(supervisor, 'POST', '/api/credits/allocate', { userId: student.userId, credits: 3 });
    expect(own.status).to.equal(201);
    expect((await h.api.json<{ allocation: { allocatedBy: string } }>(own)).body.allocation.allocatedBy).to.equal(supervisor.userId);
    expect((await h.api.as(supervisor, 'POST', '/api/credits/allocate', { userId: stranger.userId, credits: 3 })).status).to.equal(403);
    expect((await h.api.as(supervisor, 'POST', '/api/credits/allocate', { userId: supervisor.userId, credits: 3 })).status).to.equal(403);
    expect((await h.api.as(student, 'POST', '/api/credits/allocate', { userId: student.userId, credits: 3 })).status).to.equal(403);
  });

  const internalRoutes: Array<{ method: string; path: string; body?: unknown }> = [
    {
      method: 'POST',
      path: '/internal/streaming-sessions/initialize',
      body: { reservationId: randomUUID(), sessionId: 's', modelId: 'local-dev', inputTokens: 1, maxOutputTokens: 1 },
    },
    { method: 'POST', path: '/internal/streaming-sessions/finalize', body: { reservationId: randomUUID(), inputTokens: 1, outputTokens: 1 } },
    { method: 'POST', path: '/internal/streaming-sessions/abort', body: { reservationId: randomUUID(), outputTokens: 1 } },
    { method: 'POST', path: '/internal/usage/record', body: { userId: 'x', modelId: 'local-dev', inputTokens: 1, outputTokens: 1, credits: 1 } },
    { method: 'GET', path: '/internal/credits/balances?userIds=a,b' },
    { method: 'GET', path: '/internal/streaming-sessions/active?userIds=a' },
  ];
  for (const route of internalRoutes) {
    it(`${route.method} ${route.path.split('?')[0]} is service-only: 401 without a valid service token, even for a signed-in admin`, async () => {
      const init = (headers: Record<string, string>) => ({
        method: route.method,
        headers: { ...headers, ...(route.body ? { 'content-type': 'application/json' } : {}) },
        body: route.body ? JSON.stringify(route.body) : undefined,
      });
      const url = `${h.service.url}${route.path}`;
      for (const headers of [
        {},
        h.auth.identityHeaders(admin),
        { authorization: `Bearer ${h.auth.token(admin)}` },
        h.auth.serviceHeaders('chat', 'monitoring'),
      ]) {
        const res = await fetch(url, init(headers));
        expect(res.status).to.equal(401);
        expect((await h.api.json(res)).body.code).to.equal('UNAUTHENTICATED');
      }
    });
  }

  it('answers internal balances and active streams for monitoring', async () => {
    const reservationId = randomUUID();
    const init = await h.api.internal(
      'POST',
      '/internal/streaming-sessions/initialize',
      { reservationId, sessionId: 'sess', modelId: 'local-dev', inputTokens: 100, maxOutputTokens: 100 },
      { token: h.auth.token(student) },
    );
    expect(init.status).to.equal(200);
    const balances = await h.api.json(
      await h.api.internal('GET', `/internal/credits/balances?userIds=${student.userId},nobody`, undefined, { from: 'monitoring' }),
    );
    // what was allocated to the student minus what was deducted, less the 2 credits this reservation holds
    const allocated = Number((await h.db('allocations').where({ user_id: student.userId }).sum({ total: 'credits' }).first())?.total ?? 0);
    const deducted = -Number((await h.db('ledger').where({ user_id: student.userId, type: 'deduction' }).sum({ total: 'amount' }).first())?.total ?? 0);
    expect(allocated, 'the before hook and the matrix allocated').to.be.greaterThan(1000);
    expect(balances.body.balances).to.deep.equal([
      { userId: student.userId, available: allocated - deducted - 2, reserved: 2 },
      { userId: 'nobody', available: 0, reserved: 0 },
    ]);
    const active = await h.api.json(
      await h.api.internal('GET', `/internal/streaming-sessions/active?userIds=${student.userId}`, undefined, { from: 'monitoring' }),
    );
    expect(active.body.sessions).to.have.length(1);
    expect((active.body.sessions as Array<Record<string, unknown>>)[0]).to.include({
      reservationId,
      sessionId: 'sess',
      modelId: 'local-dev',
      reservedCredits: 2,
    });
    await h.api.internal('POST', '/internal/streaming-sessions/abort', { reservationId, outputTokens: 0 });
    const initNoUser = await h.api.internal('POST', '/internal/streaming-sessions/initialize', {
      reservationId: randomUUID(),
      sessionId: 's',
      modelId: 'local-dev',
      inputTokens: 1,
      maxOutputTokens: 1,
    });
    expect(initNoUser.status, 'initialize needs the user token').to.equal(401);
  });

  describe('bad input', () => {
    const badCredits: Array<[string, unknown]> = [
      ['a float', 1.5],
      ['a string', '10'],
      ['a negative', -5],
      ['zero', 0],
      ['above 1,000,000,000', 1_000_000_001],
      ['null', null],
    ];
    for (const [label, credits] of badCredits) {
      it(`refuses ${label} as credits with VALIDATION_FAILED (allocate and deduct)`, async () => {
        for (const path of ['/api/credits/allocate', '/api/credits/deduct']) {
          const res = await h.api.as(admin, 'POST', path, { userId: student.userId, credits });
          expect(res.status).to.equal(400);
          expect((await h.api.json(res)).body.code).to.equal('VALIDATION_FAILED');
        }
      });
    }

    it('accepts the bounds 1 and 1,000,000,000', async () => {
      const fresh = testActor('enduser');
      await h.api.as(fresh, 'GET', '/api/credits/balance');
      expect((await h.api.as(admin, 'POST', '/api/credits/allocate', { userId: fresh.userId, credits: 1 })).status).to.equal(201);
      expect((await h.api.as(admin, 'POST', '/api/credits/allocate', { userId: fresh.userId, credits: 1_000_000_000 })).status).to.equal(201);
      await assertInvariant(h.db, fresh.userId);
    });

    const cases: Array<{
      name: string;
      who?: Actor;
      method: string;
      path: string;
      body?: unknown;
      headers?: Record<string, string>;
      status: number;
      code: string;
    }> = [
      {
        name: 'unknown fields',
        method: 'POST',
        path: '/api/credits/allocate',
        body: { userId: 'x', credits: 1, admin: true },
        status: 400,
        code: 'VALIDATION_FAILED',
      },
      { name: 'missing userId', method: 'POST', path: '/api/credits/allocate', body: { credits: 1 }, status: 400, code: 'VALIDATION_FAILED' },
      {
        name: 'expiryDays 0',
        method: 'POST',
        path: '/api/credits/allocate',
        body: { userId: 'x', credits: 1, expiryDays: 0 },
        status: 400,
        code: 'VALIDATION_FAILED',
      },
      {
        name: 'expiryDays 1.5',
        method: 'POST',
        path: '/api/credits/allocate',
        body: { userId: 'x', credits: 1, expiryDays: 1.5 },
        status: 400,
        code: 'VALIDATION_FAILED',
      },
      {
        name: 'an unknown user (allocate)',
        method: 'POST',
        path: '/api/credits/allocate',
        body: { userId: 'no-such-user', credits: 1 },
        status: 404,
        code: 'NOT_FOUND',
      },
      {
        name: 'an unknown user (deduct)',
        method: 'POST',
        path: '/api/credits/deduct',
        body: { userId: 'no-such-user', credits: 1 },
        status: 404,
        code: 'NOT_FOUND',
      },
      { name: 'an unknown user (balance)', method: 'GET', path: '/api/credits/balance?userId=no-such-user', status: 404, code: 'NOT_FOUND' },
      { name: 'an unknown user (transactions)', method: 'GET', path: '/api/credits/transactions?userId=no-such-user', status: 404, code: 'NOT_FOUND' },
      { name: 'an unknown user (usage)', method: 'GET', path: '/api/usage/stats?userId=no-such-user', status: 404, code: 'NOT_FOUND' },
      {
        name: 'an unknown model (calculate)',
        method: 'POST',
        path: '/api/credits/calculate',
        body: { modelId: 'gpt-9', inputTokens: 1, outputTokens: 1 },
        status: 404,
        code: 'NOT_FOUND',
      },
      {
        name: 'an unknown model (price)',
        method: 'PUT',
        path: '/api/models/prices/gpt-9',
        body: { inputPer1k: 1, outputPer1k: 1 },
        status: 404,
        code: 'NOT_FOUND',
      },
      {
        name: 'a zero price',
        method: 'PUT',
        path: '/api/models/prices/local-dev',
        body: { inputPer1k: 0, outputPer1k: 1 },
        status: 400,
        code: 'VALIDATION_FAILED',
      },
      {
        name: 'negative tokens',
        method: 'POST',
        path: '/api/credits/calculate',
        body: { modelId: 'local-dev', inputTokens: -1, outputTokens: 1 },
        status: 400,
        code: 'VALIDATION_FAILED',
      },
      {
        name: 'string tokens',
        method: 'POST',
        path: '/api/credits/calculate',
        body: { modelId: 'local-dev', inputTokens: '1', outputTokens: 1 },
        status: 400,
        code: 'VALIDATION_FAILED',
      },
      { name: 'page 0', method: 'GET', path: '/api/credits/transactions?page=0', status: 400, code: 'VALIDATION_FAILED' },
      { name: 'limit 1000', method: 'GET', path: '/api/credits/transactions?limit=1000', status: 400, code: 'VALIDATION_FAILED' },
      { name: 'an unknown ledger type', method: 'GET', path: '/api/credits/transactions?type=gift', status: 400, code: 'VALIDATION_FAILED' },
      { name: 'a reversed date range', method: 'GET', path: '/api/usage/stats?from=2026-02-01&to=2026-01-01', status: 400, code: 'VALIDATION_FAILED' },
      { name: 'a malformed date', method: 'GET', path: '/api/usage/stats?from=yesterday', status: 400, code: 'VALIDATION_FAILED' },
      {
        name: 'an oversized Idempotency-Key',
        method: 'POST',
        path: '/api/credits/allocate',
        body: { userId: 'x', credits: 1 },
        headers: { 'idempotency-key': 'k'.repeat(201) },
        status: 400,
        code: 'VALIDATION_FAILED',
      },
    ];
    for (const c of cases) {
      it(`answers ${c.name} with ${c.status} ${c.code}`, async () => {
        const res = await h.api.as(c.who ?? admin, c.method, c.path, c.body, c.headers);
        const text = await res.text();
        expect(res.status, text).to.equal(c.status);
        expect(JSON.parse(text).code).to.equal(c.code);
        expect(res.headers.get('content-type')).to.match(/^application\/problem\+json/);
      });
    }

    it('refuses bad internal bodies: unknown model or reservation, bad ids, zero max output', async () => {
      const token = h.auth.token(student);
      const init = (body: Record<string, unknown>) => h.api.internal('POST', '/internal/streaming-sessions/initialize', body, { token });
      const base = { reservationId: randomUUID(), sessionId: 's', modelId: 'local-dev', inputTokens: 1, maxOutputTokens: 1 };
      expect((await init({ ...base, modelId: 'gpt-9' })).status).to.equal(404);
      expect((await init({ ...base, reservationId: 'not-a-uuid' })).status).to.equal(400);
      expect((await init({ ...base, maxOutputTokens: 0 })).status).to.equal(400);
      expect((await init({ ...base, inputTokens: 1.5 })).status).to.equal(400);
      const fin = await h.api.internal('POST', '/internal/streaming-sessions/finalize', { reservationId: randomUUID(), inputTokens: 1, outputTokens: 1 });
      expect(fin.status).to.equal(404);
      const rec = await h.api.internal('POST', '/internal/usage/record', {
        userId: 'no-such-user',
        modelId: 'local-dev',
        inputTokens: 1,
        outputTokens: 1,
        credits: 1,
      });
      expect(rec.status).to.equal(404);
      const recModel = await h.api.internal('POST', '/internal/usage/record', {
        userId: student.userId,
        modelId: 'gpt-9',
        inputTokens: 1,
        outputTokens: 1,
        credits: 1,
      });
      expect(recModel.status).to.equal(404);
      expect(await h.db('reservations').where({ user_id: student.userId, model_id: 'gpt-9' })).to.have.length(0);
    });

    it('keeps the ledger append-only in the database itself', async () => {
      let failure: unknown;
      try {
        await h.db('ledger').where({ user_id: student.userId }).update({ amount: 1_000_000 });
      } catch (error) {
        failure = error;
      }
      expect(String(failure)).to.match(/append-only/);
    });
  });
});

describe('accounting when monitoring is unreachable', () => {
  let h: Harness;
  before(async () => {
    // a port that was free a moment ago: nothing listens there
    const probe = await listen(() => undefined, 0);
    await probe.close(0);
    h = await startAccounting({ MONITORING_URL: probe.url });
  });
  after(async () => {
    await h.stop();
  });

  it('answers a supervisor with UPSTREAM_UNAVAILABLE (never a silent allow) while admins and owners are unaffected', async () => {
    const supervisor = testActor('supervisor');
    const student = testActor('enduser');
    await h.api.as(student, 'GET', '/api/credits/balance');
    const res = await h.api.as(supervisor, 'GET', `/api/credits/balance?userId=${student.userId}`);
    expect(res.status).to.equal(503);
    expect((await h.api.json(res)).body.code).to.equal('UPSTREAM_UNAVAILABLE');
    expect((await h.api.as(testActor('admin'), 'GET', `/api/credits/balance?userId=${student.userId}`)).status).to.equal(200);
    expect((await h.api.as(student, 'GET', '/api/credits/balance')).status).to.equal(200);
  });
});
