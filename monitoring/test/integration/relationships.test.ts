import { randomUUID } from 'node:crypto';
import { type Actor, USER_EVENT_FIELD, type UserEvent } from '@platform/shared-types';
import { connectRedis } from '@platform/shared-types/stores/redis';
import { expectProblem, testActor } from '@platform/shared-types/testing';
import { expect } from 'chai';
import type { Redis } from 'ioredis';
import { waitFor } from '../support/fake-services.ts';
import { startTestMonitoring, type TestMonitoring } from '../support/monitoring.ts';

describe('relationships (real PostgreSQL, Redis, fake auth over HTTP)', () => {
  let m: TestMonitoring;
  let redis: Redis;
  const admin = testActor('admin');
  const supervisor = testActor('supervisor');
  const otherSupervisor = testActor('supervisor');
  const student = testActor('enduser');
  const student2 = testActor('enduser');
  const enduser = testActor('enduser');

  before(async () => {
    m = await startTestMonitoring();
    for (const actor of [admin, supervisor, otherSupervisor, student, student2, enduser]) m.fakeAuth.add(actor);
    redis = await connectRedis(m.config.REDIS_URL);
  });
  after(async () => {
    await redis?.quit();
    await m?.stop();
  });

  const as = (actor: Actor) => ({ ...m.auth.identityHeaders(actor), authorization: `Bearer ${m.auth.token(actor)}` });
  const create = (actor: Actor, body: unknown) =>
    fetch(`${m.url}/api/monitoring/relationships`, {
      method: 'POST',
      headers: { ...as(actor), 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const list = (actor: Actor, query = '') => fetch(`${m.url}/api/monitoring/relationships${query}`, { headers: as(actor) });
  const remove = (actor: Actor, id: string) => fetch(`${m.url}/api/monitoring/relationships/${id}`, { method: 'DELETE', headers: as(actor) });
  const check = (supervisorId: string, studentId: string) =>
    fetch(`${m.url}/internal/relationships/check?supervisorId=${supervisorId}&studentId=${studentId}`, {
      headers: m.auth.serviceHeaders('chat', 'monitoring'),
    });
  const checkBody = async (supervisorId: string, studentId: string) => {
    const response = await check(supervisorId, studentId);
    expect(response.status).to.equal(200);
    return (await response.json()) as { supervises: boolean; relationshipId?: string; since?: string };
  };

  async function createPair(supervisorId: string, studentId: string): Promise<string> {
    const response = await create(admin, { supervisorId, studentId });
    expect(response.status, await response.clone().text()).to.equal(201);
    return ((await response.json()) as { relationship: { id: string } }).relationship.id;
  }

  describe('creating', () => {
    it('lets an admin create a pair and answers it with since', async () => {
      const response = await create(admin, { supervisorId: supervisor.userId, studentId: student.userId });
      expect(response.status).to.equal(201);
      const body = (await response.json()) as { relationship: Record<string, unknown>; reactivated: boolean };
      expect(body.reactivated).to.equal(false);
      expect(body.relationship).to.include({ supervisorId: supervisor.userId, studentId: student.userId, active: true, createdBy: admin.userId });
      expect(body.relationship.since).to.be.a('string');
    });

    it('refuses the same pair twice (CONFLICT)', async () => {
      await expectProblem(await create(admin, { supervisorId: supervisor.userId, studentId: student.userId }), 409, 'CONFLICT');
    });

    it('refuses a supervisor who is an enduser, and self-supervision (VALIDATION_FAILED)', async () => {
      const body = await expectProblem(await create(admin, { supervisorId: enduser.userId, studentId: student2.userId }), 400, 'VALIDATION_FAILED');
      expect(JSON.stringify(body.errors)).to.contain('body.supervisorId');
      await expectProblem(await create(admin, { supervisorId: supervisor.userId, studentId: supervisor.userId }), 400, 'VALIDATION_FAILED');
    });

    it('refuses a disabled student', async () => {
      const disabled = testActor('enduser');
      m.fakeAuth.add(disabled, { status: 'disabled' });
      await expectProblem(await create(admin, { supervisorId: supervisor.userId, studentId: disabled.userId }), 400, 'VALIDATION_FAILED');
    });

    it('answers NOT_FOUND for users auth does not know', async () => {
      await expectProblem(await create(admin, { supervisorId: supervisor.userId, studentId: 'aaaaaaaaaaaaaaaaaaaaaaaa' }), 404, 'NOT_FOUND');
      await expectProblem(await create(admin, { supervisorId: 'bbbbbbbbbbbbbbbbbbbbbbbb', studentId: student.userId }), 404, 'NOT_FOUND');
    });

    it('lets an admin supervise', async () => {
      const adminStudent = testActor('enduser');
      m.fakeAuth.add(adminStudent);
      await createPair(admin.userId, adminStudent.userId);
    });

    it('rejects unknown fields and missing ids', async () => {
      await expectProblem(await create(admin, { supervisorId: supervisor.userId, studentId: student2.userId, active: false }), 400, 'VALIDATION_FAILED');
      await expectProblem(await create(admin, { supervisorId: supervisor.userId }), 400, 'VALIDATION_FAILED');
    });

    it('is admin-only (FORBIDDEN for supervisor and enduser, UNAUTHENTICATED without identity)', async () => {
      await expectProblem(await create(supervisor, { supervisorId: supervisor.userId, studentId: student2.userId }), 403, 'FORBIDDEN');
      await expectProblem(await create(enduser, { supervisorId: supervisor.userId, studentId: enduser.userId }), 403, 'FORBIDDEN');
      const anonymous = await fetch(`${m.url}/api/monitoring/relationships`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ supervisorId: supervisor.userId, studentId: student2.userId }),
      });
      await expectProblem(anonymous, 401, 'UNAUTHENTICATED');
    });

    it('answers UPSTREAM_UNAVAILABLE when auth cannot be asked', async () => {
      const other = await startTestMonitoring({ auth: m.auth, env: { AUTH_URL: 'http://127.0.0.1:9' } });
      try {
        const response = await fetch(`${other.url}/api/monitoring/relationships`, {
          method: 'POST',
          headers: { ...other.auth.identityHeaders(admin), 'content-type': 'application/json' },
          body: JSON.stringify({ supervisorId: supervisor.userId, studentId: student.userId }),
        });
        expect(response.status).to.be.oneOf([502, 503]);
        expect(((await response.json()) as { code: string }).code).to.equal('UPSTREAM_UNAVAILABLE');
      } finally {
        await other.stop();
      }
    });
  });

  describe('listing', () => {
    it('filters by supervisor and by student, pages, and names the users', async () => {
      await createPair(otherSupervisor.userId, student.userId);
      const bySupervisor = (await (await list(admin, `?supervisorId=${supervisor.userId}`)).json()) as {
        relationships: Array<{ studentId: string; student: { username: string } }>;
        total: number;
      };
      expect(bySupervisor.total).to.equal(1);
      expect(bySupervisor.relationships[0]?.student.username).to.equal(student.username);
      const byStudent = (await (await list(admin, `?studentId=${student.userId}&limit=1`)).json()) as {
        relationships: unknown[];
        total: number;
        limit: number;
      };
      expect(byStudent.total).to.equal(2);
      expect(byStudent.relationships).to.have.length(1);
      const page2 = (await (await list(admin, `?studentId=${student.userId}&limit=1&page=2`)).json()) as { relationships: unknown[] };
      expect(page2.relationships).to.have.length(1);
      await expectProblem(await list(admin, '?limit=1000'), 400, 'VALIDATION_FAILED');
    });

    it('shows a supervisor only its own pairs; FORBIDDEN for another supervisor or an enduser', async () => {
      const own = (await (await list(supervisor)).json()) as { relationships: Array<{ supervisorId: string }> };
      expect(own.relationships.map((r) => r.supervisorId)).to.deep.equal([supervisor.userId]);
      await expectProblem(await list(supervisor, `?supervisorId=${otherSupervisor.userId}`), 403, 'FORBIDDEN');
      await expectProblem(await list(enduser), 403, 'FORBIDDEN');
    });
  });

  describe('the check endpoint', () => {
    it('answers supervises with the relationship id and since', async () => {
      const body = await checkBody(supervisor.userId, student.userId);
      expect(body.supervises).to.equal(true);
      expect(body.relationshipId).to.be.a('string');
      expect(body.since).to.be.a('string');
      expect(await checkBody(supervisor.userId, student2.userId)).to.deep.equal({ supervises: false });
      expect(await checkBody(student.userId, supervisor.userId)).to.deep.equal({ supervises: false });
    });

    it('is never stale after a create or a delete, even with the cache warm', async () => {
      for (let round = 0; round < 3; round++) {
        expect((await checkBody(supervisor.userId, student2.userId)).supervises).to.equal(false); // caches "no"
        const id = await createPair(supervisor.userId, student2.userId);
        expect((await checkBody(supervisor.userId, student2.userId)).supervises).to.equal(true); // caches "yes"
        expect((await remove(admin, id)).status).to.equal(204);
        expect((await checkBody(supervisor.userId, student2.userId)).supervises).to.equal(false);
      }
    });

    it('is service-only and validates its query', async () => {
      const noToken = await fetch(`${m.url}/internal/relationships/check?supervisorId=a&studentId=b`, { headers: m.auth.identityHeaders(admin) });
      await expectProblem(noToken, 401, 'UNAUTHENTICATED');
      await expectProblem(
        await fetch(`${m.url}/internal/relationships/check?supervisorId=a`, { headers: m.auth.serviceHeaders('chat', 'monitoring') }),
        400,
        'VALIDATION_FAILED',
      );
    });
  });

  describe('deleting', () => {
    it('is admin-only and answers NOT_FOUND for unknown or malformed ids', async () => {
      const id = await createPair(supervisor.userId, student2.userId);
      await expectProblem(await remove(supervisor, id), 403, 'FORBIDDEN');
      await expectProblem(await remove(admin, randomUUID()), 404, 'NOT_FOUND');
      await expectProblem(await remove(admin, 'not-a-uuid'), 404, 'NOT_FOUND');
      expect((await remove(admin, id)).status).to.equal(204);
      await expectProblem(await remove(admin, id), 404, 'NOT_FOUND');
    });
  });

  describe('user events (events:users through consumer group monitoring)', () => {
    const publish = (event: UserEvent) => redis.xadd(m.stream, '*', USER_EVENT_FIELD, JSON.stringify(event));
    const eventFor = (actor: Actor, type: UserEvent['type'], user: Partial<UserEvent['user']> = {}): UserEvent => ({
      eventId: randomUUID(),
      type,
      occurredAt: new Date().toISOString(),
      user: { id: actor.userId, username: actor.username, email: actor.email, role: actor.role, status: 'active', ...user },
    });
    const supervises = async (s: Actor, st: Actor) => (await checkBody(s.userId, st.userId)).supervises;

    it('a supervisor demoted to enduser stops supervising; a repeated event changes nothing', async () => {
      const demoted = testActor('supervisor');
      const pupil = testActor('enduser');
      m.fakeAuth.add(demoted);
      m.fakeAuth.add(pupil);
      await createPair(demoted.userId, pupil.userId);
      expect(await supervises(demoted, pupil)).to.equal(true);
      const event = { ...eventFor(demoted, 'user.role_changed', { role: 'enduser' }), previousRole: 'supervisor' as const };
      m.fakeAuth.add(demoted, { role: 'enduser' });
      await publish(event);
      await waitFor(async () => !(await supervises(demoted, pupil)), 'the pair to end');
      const rows = (await (await list(admin, `?supervisorId=${demoted.userId}`)).json()) as {
        relationships: Array<{ active: boolean; deactivatedReason: string }>;
      };
      expect(rows.relationships[0]).to.include({ active: false, deactivatedReason: 'supervisor_role_changed' });

      // re-created after the event, then the same event delivered again: applied once, the new pair stands
      const response = await create(admin, { supervisorId: demoted.userId, studentId: pupil.userId });
      await expectProblem(response, 400, 'VALIDATION_FAILED'); // auth still says enduser
      m.fakeAuth.add(demoted, { role: 'supervisor' });
      const again = await create(admin, { supervisorId: demoted.userId, studentId: pupil.userId });
      expect(again.status).to.equal(201);
      expect(((await again.json()) as { reactivated: boolean }).reactivated).to.equal(true);
      await publish(event);
      const marker = testActor('enduser');
      await publish(eventFor(marker, 'user.updated'));
      await waitFor(async () => (await m.service.stores.db('processed_user_events').where({ user_id: marker.userId })).length === 1, 'the marker event');
      expect(await supervises(demoted, pupil)).to.equal(true);
    });

    it('a disabled student loses its supervisors; a disabled supervisor its students', async () => {
      const s1 = testActor('supervisor');
      const s2 = testActor('supervisor');
      const pupil = testActor('enduser');
      const pupil2 = testActor('enduser');
      for (const actor of [s1, s2, pupil, pupil2]) m.fakeAuth.add(actor);
      await createPair(s1.userId, pupil.userId);
      await createPair(s2.userId, pupil.userId);
      await createPair(s2.userId, pupil2.userId);
      await publish(eventFor(pupil, 'user.disabled', { status: 'disabled' }));
      await waitFor(async () => !(await supervises(s1, pupil)) && !(await supervises(s2, pupil)), 'the student pairs to end');
      expect(await supervises(s2, pupil2)).to.equal(true);
      await publish(eventFor(s2, 'user.disabled', { status: 'disabled' }));
      await waitFor(async () => !(await supervises(s2, pupil2)), 'the supervisor pairs to end');
    });

    it('a late event does not end a pair created after it happened', async () => {
      const s = testActor('supervisor');
      const pupil = testActor('enduser');
      m.fakeAuth.add(s);
      m.fakeAuth.add(pupil);
      const old = { ...eventFor(s, 'user.registered', { role: 'enduser' }), occurredAt: new Date(Date.now() - 60_000).toISOString() };
      await createPair(s.userId, pupil.userId);
      await publish(old);
      await waitFor(async () => (await m.service.stores.db('processed_user_events').where({ event_id: old.eventId })).length === 1, 'the old event');
      expect(await supervises(s, pupil)).to.equal(true);
    });

    it('recreates its group when the stream was deleted, and keeps consuming', async () => {
      await redis.del(m.stream);
      const s = testActor('supervisor');
      const pupil = testActor('enduser');
      m.fakeAuth.add(s);
      m.fakeAuth.add(pupil);
      await createPair(s.userId, pupil.userId);
      await waitFor(
        async () => {
          await publish(eventFor(s, 'user.role_changed', { role: 'enduser' })); // until the group exists again
          return !(await supervises(s, pupil));
        },
        'the pair to end after the stream came back',
        10_000,
      );
    });

    it('forgets applied event ids only after they are old', async () => {
      const db = m.service.stores.db;
      const [old, recent] = [`old-${randomUUID()}`, `recent-${randomUUID()}`];
      await db('processed_user_events').insert([
        { event_id: old, type: 'user.updated', user_id: 'u', processed_at: db.raw("now() - interval '40 days'") },
        { event_id: recent, type: 'user.updated', user_id: 'u', processed_at: db.raw("now() - interval '20 days'") },
      ]);
      expect(await m.service.monitoring.relationships.pruneProcessedEvents(30)).to.equal(1);
      const left = await db('processed_user_events').whereIn('event_id', [old, recent]).pluck('event_id');
      expect(left).to.deep.equal([recent]);
    });

    it('skips malformed entries and keeps consuming', async () => {
      await redis.xadd(m.stream, '*', USER_EVENT_FIELD, '{not json');
      await redis.xadd(m.stream, '*', 'other', 'x');
      const s = testActor('supervisor');
      const pupil = testActor('enduser');
      m.fakeAuth.add(s);
      m.fakeAuth.add(pupil);
      await createPair(s.userId, pupil.userId);
      await publish(eventFor(s, 'user.role_changed', { role: 'enduser' }));
      await waitFor(async () => !(await supervises(s, pupil)), 'the pair to end after malformed entries');
      await waitFor(async () => {
        const pending = (await redis.xpending(m.stream, 'monitoring')) as [number, ...unknown[]];
        return pending[0] === 0;
      }, 'every entry acknowledged');
    });
  });
});
