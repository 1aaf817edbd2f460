// Long-lived answers end when their token dies (issue 11 item 10): the events stream (chat) and the observe
// relay (monitoring) send a terminal error event and close after logout-all, a password reset, a disable or the
// token's expiry. Through the public gateway, every part a real process.
import { createKeyring, signAccessToken } from '@platform/shared-types';
import { expect } from 'chai';
import { api, createUser, type Session, type SseEvent, sse } from '../support/client.ts';
import { type Platform, startPlatform } from '../support/platform.ts';

/** Reads an SSE stream in the background: its events, and whether the server ended it. */
function follow(base: string, path: string, token: string) {
  const events: SseEvent[] = [];
  const comments: string[] = [];
  const abort = new AbortController();
  let ended = false;
  const done = (async () => {
    for await (const event of sse(base, path, { token, signal: abort.signal, onComment: (c) => comments.push(c.trim()) })) events.push(event);
    ended = !abort.signal.aborted;
  })();
  return {
    events,
    comments,
    done,
    get ended() {
      return ended;
    },
    abort: () => abort.abort(),
  };
}

async function waitFor(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('long-lived streams end when their token is revoked or expires', () => {
  let platform: Platform;
  let gw: string;
  let admin: Session;
  const opened: Array<ReturnType<typeof follow>> = [];

  before(async function () {
    this.timeout(120_000);
    platform = await startPlatform();
    gw = platform.gatewayUrl;
    admin = await createUser(platform, 'admin', 'adm');
  });
  afterEach(async () => {
    for (const stream of opened.splice(0)) {
      stream.abort();
      await stream.done.catch(() => undefined);
    }
  });
  after(async () => {
    await platform?.stop();
  });

  const open = (path: string, token: string, ready: string) => {
    const stream = follow(gw, path, token);
    opened.push(stream);
    return waitFor(() => stream.comments.includes(ready), `the stream to open (${path})`).then(() => stream);
  };
  const events = (token: string) => open('/api/chat/events', token, 'ready');

  /** The stream's last event is the terminal error with `code`, and the server closed the stream after it. */
  async function expectEndedWith(stream: ReturnType<typeof follow>, code: string): Promise<void> {
    await waitFor(() => stream.ended, `the stream to end with ${code}`);
    const last = stream.events.at(-1);
    expect(last?.event, JSON.stringify(stream.events)).to.equal('error');
    expect(last?.data.code).to.equal(code);
  }

  /** A token for the user that lives `seconds` (the platform's own secret; short lifetimes in this test only). */
  function shortToken(user: Session, role: 'enduser' | 'supervisor', seconds: number): string {
    return signAccessToken(
      createKeyring(platform.secrets.JWT_ACCESS_SECRET),
      { sub: user.userId, username: user.username, email: user.email, role },
      { ttlSeconds: seconds },
    );
  }

  async function observedSession() {
    const supervisor = await createUser(platform, 'supervisor', 'sup');
    const student = await createUser(platform, 'enduser', 'stu');
    const rel = await api(gw, 'POST', '/api/monitoring/relationships', {
      token: admin.accessToken,
      body: { supervisorId: supervisor.userId, studentId: student.userId },
    });
    expect(rel.status, JSON.stringify(rel.body)).to.equal(201);
    const session = await api<{ session: { id: string } }>(gw, 'POST', '/api/chat/sessions', { token: student.accessToken, body: { modelId: 'local-dev' } });
    expect(session.status).to.equal(201);
    return { supervisor, student, path: `/api/observe/${student.userId}/${session.body.session.id}/stream` };
  }

  it('the events stream ends with TOKEN_REVOKED after logout-all; another user stream keeps flowing', async function () {
    this.timeout(60_000);
    const user = await createUser(platform, 'enduser', 'evt');
    const bystander = await createUser(platform, 'enduser', 'bys');
    const stream = await events(user.accessToken);
    const other = await events(bystander.accessToken);
    expect((await api(gw, 'POST', '/api/auth/logout-all', { token: user.accessToken })).status).to.equal(204);
    await expectEndedWith(stream, 'TOKEN_REVOKED');
    expect(other.ended).to.equal(false);
  });

  it('the events stream ends with TOKEN_REVOKED when an admin disables the user', async function () {
    this.timeout(60_000);
    const user = await createUser(platform, 'enduser', 'dis');
    const stream = await events(user.accessToken);
    const disabled = await api(gw, 'PATCH', `/api/admin/users/${user.userId}`, { token: admin.accessToken, body: { status: 'disabled' } });
    expect(disabled.status, JSON.stringify(disabled.body)).to.equal(200);
    await expectEndedWith(stream, 'TOKEN_REVOKED');
  });

  it('the events stream ends with TOKEN_REVOKED after a password reset', async function () {
    this.timeout(60_000);
    const user = await createUser(platform, 'enduser', 'rst');
    const stream = await events(user.accessToken);
    expect((await api(gw, 'POST', '/api/auth/forgot-password', { body: { email: user.email } })).status).to.equal(202);
    await waitFor(() => platform.mailFor(user.email, 'reset-password') !== undefined, 'the reset mail');
    const mail = platform.mailFor(user.email, 'reset-password');
    const reset = await api(gw, 'POST', '/api/auth/reset-password', { body: { token: mail?.meta.token, password: `New-${user.password}` } });
    expect(reset.status, JSON.stringify(reset.body)).to.be.oneOf([200, 204]);
    await expectEndedWith(stream, 'TOKEN_REVOKED');
  });

  it('the events stream ends with TOKEN_EXPIRED when its token expires', async function () {
    this.timeout(60_000);
    const user = await createUser(platform, 'enduser', 'exp');
    const stream = await events(shortToken(user, 'enduser', 3));
    await expectEndedWith(stream, 'TOKEN_EXPIRED');
  });

  it('the observe relay ends with TOKEN_REVOKED after the supervisor logs out everywhere', async function () {
    this.timeout(60_000);
    const { supervisor, path } = await observedSession();
    const relay = await open(path, supervisor.accessToken, 'observing');
    expect((await api(gw, 'POST', '/api/auth/logout-all', { token: supervisor.accessToken })).status).to.equal(204);
    await expectEndedWith(relay, 'TOKEN_REVOKED');
  });

  it('the observe relay ends with TOKEN_EXPIRED when the supervisor token expires', async function () {
    this.timeout(60_000);
    const { supervisor, path } = await observedSession();
    const relay = await open(path, shortToken(supervisor, 'supervisor', 3), 'observing');
    await expectEndedWith(relay, 'TOKEN_EXPIRED');
  });
});
