// The five main flows of the platform, through the public gateway only (issue 8).
import { expect } from 'chai';
import { api, createUser, items, login, type Session, type SseEvent, sse, uniqueUser } from '../support/client.ts';
import { assertLedgerInvariant } from '../support/ledger.ts';
import { type Platform, startPlatform } from '../support/platform.ts';

describe('main flows through the gateway', () => {
  let platform: Platform;
  let admin: Session;
  let gw: string;

  before(async function () {
    this.timeout(180_000);
    platform = await startPlatform();
    gw = platform.gatewayUrl;
    admin = await createUser(platform, 'admin');
  });
  after(async () => {
    await platform?.stop();
  });

  it('(1) registration with email verification', async () => {
    const user = uniqueUser('reg');
    const signup = await api<{ user: { id: string; email: string } }>(gw, 'POST', '/api/auth/signup', { body: user });
    expect(signup.status, JSON.stringify(signup.body)).to.equal(201);
    expect(signup.body.user.email).to.equal(user.email);
    const early = await api(gw, 'POST', '/api/auth/login', { body: { email: user.email, password: user.password } });
    expect(early.status).to.equal(403);
    expect(early.body.code).to.equal('EMAIL_NOT_VERIFIED');
    const mail = platform.mailFor(user.email, 'verify-email');
    expect(mail, 'verification mail written to MAIL_DIR').to.not.equal(undefined);
    const verify = await api(gw, 'POST', '/api/auth/verify-email', { body: { token: mail?.meta.token } });
    expect(verify.status).to.be.oneOf([200, 204]);
    const again = await api(gw, 'POST', '/api/auth/verify-email', { body: { token: mail?.meta.token } });
    expect(again.status).to.be.within(400, 499);
    const session = await login(platform, user);
    const me = await api<{ user?: { email: string }; email?: string }>(gw, 'GET', '/api/auth/me', { token: session.accessToken });
    expect(me.status).to.equal(200);
    expect(me.body.user?.email ?? me.body.email).to.equal(user.email);
  });

  it('(2) login, refresh, logout', async () => {
    const user = await createUser(platform, 'enduser', 'rot');
    const refreshed = await api<{ accessToken: string; refreshToken: string }>(gw, 'POST', '/api/auth/refresh', { body: { refreshToken: user.refreshToken } });
    expect(refreshed.status).to.equal(200);
    expect(refreshed.body.refreshToken).to.not.equal(user.refreshToken);
    expect((await api(gw, 'GET', '/api/auth/me', { token: refreshed.body.accessToken })).status).to.equal(200);
    const logout = await api(gw, 'POST', '/api/auth/logout', { token: refreshed.body.accessToken, body: { refreshToken: refreshed.body.refreshToken } });
    expect(logout.status).to.equal(204);
    const after = await api(gw, 'GET', '/api/auth/me', { token: refreshed.body.accessToken });
    expect(after.status).to.equal(401);
    expect(after.body.code).to.equal('TOKEN_REVOKED');
    const reuse = await api(gw, 'POST', '/api/auth/refresh', { body: { refreshToken: refreshed.body.refreshToken } });
    expect(reuse.status).to.equal(401);
  });

  it('(3) an admin lists users and allocates credits', async () => {
    const student = await createUser(platform, 'enduser', 'alloc');
    const list = await api(gw, 'GET', `/api/admin/users?search=${encodeURIComponent(student.username)}`, { token: admin.accessToken });
    expect(list.status).to.equal(200);
    expect(items<{ id: string }>(list.body).map((u) => u.id)).to.include(student.userId);
    const allocate = await api<{ newBalance: unknown }>(gw, 'POST', '/api/credits/allocate', {
      token: admin.accessToken,
      body: { userId: student.userId, credits: 500, notes: 'e2e' },
      headers: { 'idempotency-key': `alloc-${student.userId}` },
    });
    expect(allocate.status, JSON.stringify(allocate.body)).to.equal(201);
    const balance = await api<{ available: number }>(gw, 'GET', '/api/credits/balance', { token: student.accessToken });
    expect(balance.body.available).to.equal(500);
    const forbidden = await api(gw, 'POST', '/api/credits/allocate', { token: student.accessToken, body: { userId: student.userId, credits: 5 } });
    expect(forbidden.status).to.equal(403);
    await assertLedgerInvariant(platform, student.userId);
  });

  it("(4) a student's streamed chat is charged exactly what `done` says", async () => {
    const student = await createUser(platform, 'enduser', 'chat');
    await api(gw, 'POST', '/api/credits/allocate', { token: admin.accessToken, body: { userId: student.userId, credits: 1000 } });
    const session = await api<{ session: { id: string } }>(gw, 'POST', '/api/chat/sessions', { token: student.accessToken, body: { modelId: 'local-dev' } });
    expect(session.status, JSON.stringify(session.body)).to.equal(201);
    const events: SseEvent[] = [];
    for await (const event of sse(gw, `/api/chat/sessions/${session.body.session.id}/stream`, { token: student.accessToken, body: { message: 'Hello there' } }))
      events.push(event);
    expect(events[0]?.event).to.equal('session');
    expect(events.filter((e) => e.event === 'delta').length).to.be.greaterThan(0);
    const done = events.at(-1);
    expect(done?.event).to.equal('done');
    const charged = Number(done?.data.credits);
    expect(charged).to.be.greaterThan(0);
    const balance = await api<{ available: number; reserved: number }>(gw, 'GET', '/api/credits/balance', { token: student.accessToken });
    expect(balance.body.available).to.equal(1000 - charged);
    expect(balance.body.reserved).to.equal(0);
    const ledger = items<{ type: string }>((await api(gw, 'GET', '/api/credits/transactions', { token: student.accessToken })).body).map((t) => t.type);
    expect(ledger).to.include.members(['reservation', 'charge']);
    const active = await api(gw, 'GET', `/api/streaming-sessions/active/${student.userId}`, { token: admin.accessToken });
    expect(items(active.body)).to.have.length(0);
    await assertLedgerInvariant(platform, student.userId);
  });

  it('(5) a supervisor observes, interrupts and gives feedback; the student receives both', async function () {
    this.timeout(60_000);
    const supervisor = await createUser(platform, 'supervisor', 'sup');
    const student = await createUser(platform, 'enduser', 'stu');
    const rel = await api(gw, 'POST', '/api/monitoring/relationships', {
      token: admin.accessToken,
      body: { supervisorId: supervisor.userId, studentId: student.userId },
    });
    expect(rel.status, JSON.stringify(rel.body)).to.equal(201);
    await api(gw, 'POST', '/api/credits/allocate', { token: admin.accessToken, body: { userId: student.userId, credits: 2000 } });
    const students = await api(gw, 'GET', '/api/supervised-students', { token: supervisor.accessToken });
    expect(students.status).to.equal(200);
    expect(items<{ id?: string; userId?: string }>(students.body).map((s) => s.id ?? s.userId)).to.include(student.userId);

    const studentEvents: SseEvent[] = [];
    const eventsAbort = new AbortController();
    const eventsDone = (async () => {
      for await (const event of sse(gw, '/api/chat/events', { token: student.accessToken, signal: eventsAbort.signal })) studentEvents.push(event);
    })().catch(() => {});

    const session = await api<{ session: { id: string } }>(gw, 'POST', '/api/chat/sessions', { token: student.accessToken, body: { modelId: 'local-dev' } });
    const streamEvents: SseEvent[] = [];
    let resolveStarted: () => void = () => {};
    const started = new Promise<void>((resolve) => {
      resolveStarted = resolve;
    });
    const streamDone = (async () => {
      for await (const event of sse(gw, `/api/chat/sessions/${session.body.session.id}/stream`, {
        token: student.accessToken,
        body: { message: 'Tell me a long story' },
      })) {
        streamEvents.push(event);
        if (event.event === 'delta') resolveStarted();
      }
    })();
    await started;

    const active = await api(gw, 'GET', `/api/streaming-sessions/active/${student.userId}`, { token: supervisor.accessToken });
    expect(items(active.body)).to.have.length(1);

    const observed: SseEvent[] = [];
    const observeAbort = new AbortController();
    const observeDone = (async () => {
      for await (const event of sse(gw, `/api/observe/${student.userId}/${session.body.session.id}/stream`, {
        token: supervisor.accessToken,
        signal: observeAbort.signal,
      })) {
        observed.push(event);
        if (['done', 'interrupted', 'error'].includes(event.event)) break;
      }
    })();
    await waitFor(() => observed.some((e) => e.event === 'delta'), 'observer sees deltas');

    const interrupt = await api(gw, 'POST', `/api/sessions/${session.body.session.id}/interrupt`, {
      token: supervisor.accessToken,
      body: { reason: 'Stay on topic' },
    });
    expect(interrupt.status).to.be.oneOf([200, 202, 204]);
    await streamDone;
    const terminal = streamEvents.at(-1);
    expect(terminal?.event).to.equal('interrupted');
    expect(terminal?.data.reason).to.equal('Stay on topic');
    await observeDone;
    expect(observed.at(-1)?.event).to.equal('interrupted');

    const feedback = await api(gw, 'POST', `/api/sessions/${session.body.session.id}/feedback`, {
      token: supervisor.accessToken,
      body: { message: 'Good question, try again' },
    });
    expect(feedback.status).to.be.oneOf([200, 201, 204]);
    await waitFor(() => studentEvents.some((e) => JSON.stringify(e.data).includes('Good question')), 'student receives feedback');
    expect(studentEvents.some((e) => JSON.stringify(e).includes('interrupt'))).to.equal(true);
    eventsAbort.abort();
    observeAbort.abort();
    await eventsDone;

    const balance = await api<{ available: number; reserved: number }>(gw, 'GET', '/api/credits/balance', { token: student.accessToken });
    expect(balance.body.available).to.equal(2000 - Number(terminal?.data.credits));
    expect(balance.body.reserved).to.equal(0);
    await assertLedgerInvariant(platform, student.userId);
  });
});

export async function waitFor(condition: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
