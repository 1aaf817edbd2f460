import { expect } from 'chai';
import { api, createUser, login, type Session } from '../support/client.ts';
import { assertLedgerInvariant } from '../support/ledger.ts';
import { type Platform, startPlatform } from '../support/platform.ts';
import { type OpenStream, reservationRow, startStream } from '../support/streams.ts';

async function until<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const LOGINS_PER_MINUTE = 5;

describe('two of everything: two instances of every service, two gateways', function () {
  this.timeout(90_000);
  let platform: Platform;
  let admin: Session;
  let gateways: string[];

  before(async function () {
    this.timeout(120_000);
    platform = await startPlatform(
      {
        // streams long enough to be cut by the kill; a running stream checkpoints what it produced often
        LOCAL_MODEL_TOKENS: '120',
        LOCAL_MODEL_TOKEN_DELAY_MS: '25',
        RESERVATION_RENEW_MS: '200',
        RESERVATION_TTL_SECONDS: '4',
        SWEEP_INTERVAL_MS: '500',
        OUTBOX_POLL_MS: '200',
        OUTBOX_BACKOFF_MIN_MS: '100',
        OUTBOX_BACKOFF_MAX_MS: '500',
        STREAM_LOCK_TTL_MS: '2000',
        RATE_LIMIT_LOGIN_PER_MINUTE: String(LOGINS_PER_MINUTE),
        RATE_LIMIT_LOGIN_IP_PER_MINUTE: '1000', // every login of this run comes from 127.0.0.1
        // the kill test's read loops run as fast as both gateways answer (thousands of reads a minute for one user)
        RATE_LIMIT_USER_PER_MINUTE: '100000',
      },
      { instances: 2, gateways: 2 },
    );
    gateways = platform.gatewayUrls;
    expect(gateways).to.have.length(2);
    admin = await createUser(platform, 'admin');
  });
  after(async () => {
    await platform?.stop();
  });

  async function student(credits: number, prefix = 'two'): Promise<Session> {
    const user = await createUser(platform, 'enduser', prefix);
    const allocated = await api(gateways[1] as string, 'POST', '/api/credits/allocate', { token: admin.accessToken, body: { userId: user.userId, credits } });
    expect(allocated.status, JSON.stringify(allocated.body)).to.equal(201);
    return user;
  }

  it('every gateway reports both instances of every service in /health', async () => {
    for (const gw of gateways) {
      const health = (await (await fetch(`${gw}/health`)).json()) as { status: string; instances: Record<string, Array<{ url: string; state: string }>> };
      expect(health.status).to.equal('ok');
      for (const service of ['auth', 'accounting', 'chat', 'monitoring'] as const) {
        expect(health.instances[service]?.map((i) => [i.url, i.state])).to.deep.equal(platform.instanceUrls[service].map((url) => [url, 'ready']));
      }
    }
  });

  it('a login limit of N per minute lets exactly N through across both gateways', async () => {
    const user = await createUser(platform, 'enduser', 'limit'); // one login already counted
    const attempts = Array.from({ length: LOGINS_PER_MINUTE + 4 }, (_, i) =>
      api(gateways[i % 2] as string, 'POST', '/api/auth/login', { body: { email: user.email, password: user.password } }),
    );
    const statuses = (await Promise.all(attempts)).map((r) => r.status);
    expect(statuses.filter((s) => s === 200).length, statuses.join(',')).to.equal(LOGINS_PER_MINUTE - 1);
    expect(statuses.filter((s) => s === 429).length, statuses.join(',')).to.equal(5);
  });

  it('a logout through one gateway is refused at the other at once', async () => {
    const user = await createUser(platform, 'enduser', 'out');
    const [a, b] = gateways as [string, string];
    expect((await api(b, 'GET', '/api/auth/me', { token: user.accessToken })).status).to.equal(200);
    const logout = await api(a, 'POST', '/api/auth/logout', { token: user.accessToken, body: { refreshToken: user.refreshToken } });
    expect(logout.status).to.equal(204);
    const after = await api(b, 'GET', '/api/auth/me', { token: user.accessToken });
    expect(after.status).to.equal(401);
    expect(after.body.code).to.equal('TOKEN_REVOKED');
  });

  it('the main flows work through both gateways', async () => {
    for (const gw of gateways) {
      const user = await student(1000, 'flow');
      const again = await login(platform, user);
      const refreshed = await api(gw, 'POST', '/api/auth/refresh', { body: { refreshToken: again.refreshToken } });
      expect(refreshed.status).to.equal(200);
      const stream = await startStream(gw, user);
      await stream.done;
      const done = stream.events.at(-1);
      expect(done?.event).to.equal('done');
      const balance = await api<{ available: number; reserved: number }>(gw, 'GET', '/api/credits/balance', { token: user.accessToken });
      expect(balance.body).to.include({ available: 1000 - Number(done?.data.credits), reserved: 0 });
      const supervisor = await createUser(platform, 'supervisor', 'sup');
      const rel = await api(gw, 'POST', '/api/monitoring/relationships', {
        token: admin.accessToken,
        body: { supervisorId: supervisor.userId, studentId: user.userId },
      });
      expect(rel.status, JSON.stringify(rel.body)).to.equal(201);
      expect((await api(gw, 'GET', '/api/supervised-students', { token: supervisor.accessToken })).status).to.equal(200);
      await assertLedgerInvariant(platform, user.userId);
    }
  });

  it('one instance of every service SIGKILLed mid-run: no idempotent request fails, the cut stream is charged once for what it produced', async () => {
    const reader = await student(100, 'reader');
    const supervisor = await createUser(platform, 'supervisor', 'watch');
    const reads: Array<[string, string]> = [
      ['/api/auth/me', reader.accessToken],
      ['/api/credits/balance', reader.accessToken],
      ['/api/chat/sessions', reader.accessToken],
      ['/api/supervised-students', supervisor.accessToken],
    ];
    const failures: string[] = [];
    let sent = 0;
    let reading = true;
    const readLoops = gateways.map(async (gw) => {
      while (reading) {
        await Promise.all(
          reads.map(async ([path, token]) => {
            // a dropped connection is reported with its cause (which side closed, and how)
            const response = await api(gw, 'GET', path, { token }).catch((error: Error & { cause?: { code?: string } }) => ({
              status: 0,
              body: `${error.message}: ${String(error.cause)} (${error.cause?.code ?? 'no code'})`,
            }));
            sent += 1;
            if (response.status !== 200) failures.push(`${gw} GET ${path}: ${response.status} ${JSON.stringify(response.body)}`);
          }),
        );
      }
    });

    // four streams through one gateway at once (students made first): least outstanding spreads them over both
    // chat instances; with four, a tie with the reads' short requests cannot put them all on one
    const students = [];
    for (let i = 0; i < 4; i++) students.push(await student(5000, 'cut'));
    const streams: OpenStream[] = await Promise.all(students.map((user) => startStream(gateways[0] as string, user)));
    // a few checkpoints (RESERVATION_RENEW_MS 200, a token every 25 ms) before the kill
    const deltas = (stream: (typeof streams)[number]) => stream.events.filter((e) => e.event === 'delta').length;
    await until(async () => (streams.every((stream) => deltas(stream) >= 16) ? true : undefined), 'every stream is well under way');
    await Promise.all((['auth', 'accounting', 'chat', 'monitoring'] as const).map((name) => platform.killInstance(name, 0, 'SIGKILL')));
    const sentAtKill = sent;
    await Promise.all(streams.map((stream) => stream.done));
    await until(async () => (sent > sentAtKill + 40 ? true : undefined), 'reads after the kill');
    reading = false;
    await Promise.all(readLoops);
    expect(failures, failures.slice(0, 5).join('\n')).to.deep.equal([]);

    const cut = streams.filter((stream) => stream.events.at(-1)?.event !== 'done');
    const finished = streams.filter((stream) => stream.events.at(-1)?.event === 'done');
    expect(cut, 'a stream ran on the killed chat instance').to.have.length.greaterThan(0);
    expect(finished, 'a stream ran on the surviving one').to.have.length.greaterThan(0);
    for (const broken of cut) {
      expect(broken.events.filter((e) => e.event === 'delta').length).to.be.greaterThan(0);
      // the surviving chat instance replays the cut stream's checkpoint once its lease runs out
      const settled = await until(async () => {
        const row = await reservationRow(platform, broken.reservationId);
        return row.status !== 'active' && row.status !== 'reserved' && row.charged > 0 ? row : undefined;
      }, 'the cut stream is charged');
      const balance = await until(async () => {
        const response = await api<{ available: number; reserved: number }>(gateways[1] as string, 'GET', '/api/credits/balance', {
          token: broken.user.accessToken,
        });
        return response.status === 200 && response.body.reserved === 0 ? response.body : undefined;
      }, 'nothing reserved any more');
      expect(balance.available).to.equal(5000 - settled.charged);
      // once: the ledger entries of the reservation add up to the one charge (hold, release of the rest, charge)
      const ledger = await api<{ transactions: Array<{ type: string; amount: number; reservationId: string | null }> }>(
        gateways[1] as string,
        'GET',
        '/api/credits/transactions?limit=100',
        { token: broken.user.accessToken },
      );
      const entries = ledger.body.transactions.filter((entry) => entry.reservationId === broken.reservationId);
      expect(
        entries.reduce((sum, entry) => sum + entry.amount, 0),
        JSON.stringify(entries),
      ).to.equal(-settled.charged);
      expect(
        entries.filter((entry) => entry.type === 'charge'),
        JSON.stringify(entries),
      ).to.have.length(1);
    }
    for (const stream of streams) await assertLedgerInvariant(platform, stream.user.userId);
  });
});
