// Issue 16: every part serves Prometheus metrics on its private ops listener, and the domain metrics move with
// the main flows; /metrics is never on a public or service port.
import { expect } from 'chai';
import { api, createUser, type SseEvent, sse, uniqueUser } from '../support/client.ts';
import { type Platform, startPlatform } from '../support/platform.ts';

const PARTS = ['gateway', 'auth', 'accounting', 'chat', 'monitoring'] as const;
type Scrape = Record<(typeof PARTS)[number], string>;

/** the sum of every series of `name` whose labels include all of `labels` */
function value(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const set = match[2] ?? '';
    if (Object.entries(labels).every(([key, v]) => set.includes(`${key}="${v}"`))) sum += Number(match[3]);
  }
  return sum;
}

async function scrape(platform: Platform): Promise<Scrape> {
  const out = {} as Scrape;
  for (const part of PARTS) {
    const response = await fetch(`${platform.opsUrls[part]}/metrics`);
    expect(response.status, `${part} ops /metrics`).to.equal(200);
    out[part] = await response.text();
  }
  return out;
}

describe('metrics: each part on its private ops listener', function () {
  this.timeout(180_000);
  let platform: Platform;

  before(async () => {
    platform = await startPlatform({ LOGIN_MAX_FAILURES: '3' });
  });
  after(async () => {
    await platform?.stop();
  });

  it('serves /metrics only on the ops listeners: 404 on the public gateway port and on every service port', async () => {
    for (const part of PARTS) expect(platform.opsUrls[part], `${part} ops URL`).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
    for (const part of PARTS) {
      const response = await fetch(`${platform.urls[part]}/metrics`);
      expect(response.status, `${part} main port /metrics`).to.equal(404);
      expect(await response.text()).to.not.include('# HELP');
    }
  });

  it('the domain metrics move with the main flows', async () => {
    const gw = platform.gatewayUrl;
    const before = await scrape(platform);
    const admin = await createUser(platform, 'admin', 'madm');
    const student = await createUser(platform, 'enduser', 'mstu');
    // auth: a failed login, a lockout, a refresh token reuse
    const victim = await createUser(platform, 'enduser', 'mvic');
    for (let i = 0; i < 3; i++) await api(gw, 'POST', '/api/auth/login', { body: { email: victim.email, password: `wrong-${i}-${uniqueUser().password}` } });
    const locked = await api(gw, 'POST', '/api/auth/login', { body: { email: victim.email, password: victim.password } });
    expect(locked.status).to.equal(423);
    const first = await api<{ refreshToken: string }>(gw, 'POST', '/api/auth/refresh', { body: { refreshToken: student.refreshToken } });
    expect(first.status).to.equal(200);
    // past the rotation grace window the retired token is reuse; poll until auth calls it that
    const deadline = Date.now() + 30_000;
    let reuse = await api(gw, 'POST', '/api/auth/refresh', { body: { refreshToken: student.refreshToken } });
    while (reuse.body.code !== 'TOKEN_REUSED' && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      reuse = await api(gw, 'POST', '/api/auth/refresh', { body: { refreshToken: student.refreshToken } });
    }
    expect(reuse.body.code).to.equal('TOKEN_REUSED');
    // the family is gone: sign in again, then a chat stream (accounting reserve and settle, chat tokens)
    const again = await api<{ accessToken: string }>(gw, 'POST', '/api/auth/login', { body: { email: student.email, password: student.password } });
    expect(again.status).to.equal(200);
    const token = again.body.accessToken;
    await api(gw, 'POST', '/api/credits/allocate', { token: admin.accessToken, body: { userId: student.userId, credits: 1000 } });
    const session = await api<{ session: { id: string } }>(gw, 'POST', '/api/chat/sessions', { token, body: { modelId: 'local-dev' } });
    const events: SseEvent[] = [];
    for await (const event of sse(gw, `/api/chat/sessions/${session.body.session.id}/stream`, { token, body: { message: 'Count me' } })) events.push(event);
    expect(events.at(-1)?.event).to.equal('done');
    // monitoring: a relationship; gateway: a revoked token refused
    const supervisor = await createUser(platform, 'supervisor', 'msup');
    await api(gw, 'POST', '/api/monitoring/relationships', { token: admin.accessToken, body: { supervisorId: supervisor.userId, studentId: student.userId } });
    await api(gw, 'POST', '/api/auth/logout-all', { token: supervisor.accessToken });
    const refused = await api(gw, 'GET', '/api/supervised-students', { token: supervisor.accessToken });
    expect(refused.status).to.equal(401);

    const after = await scrape(platform);
    const moved = (part: keyof Scrape, name: string, labels: Record<string, string> = {}) =>
      expect(value(after[part], name, labels), `${part} ${name} ${JSON.stringify(labels)}`).to.be.greaterThan(value(before[part], name, labels));

    moved('gateway', 'gateway_requests_total', { route: 'chat' });
    moved('gateway', 'gateway_rate_limit_decisions_total');
    moved('gateway', 'gateway_revocation_refusals_total', { reason: 'revoked' });
    moved('auth', 'auth_logins_total', { outcome: 'success' });
    moved('auth', 'auth_logins_total', { outcome: 'invalid_credentials' });
    moved('auth', 'auth_logins_total', { outcome: 'account_locked' });
    moved('auth', 'auth_lockouts_total', { scope: 'address' });
    moved('auth', 'auth_refresh_reuse_detections_total');
    moved('auth', 'http_requests_total', { route: '/api/auth/login', method: 'POST', status: '200' });
    moved('accounting', 'accounting_reservations_opened_total');
    moved('accounting', 'accounting_reservations_settled_total', { status: 'finalized' });
    moved('accounting', 'accounting_credits_charged_total');
    moved('accounting', 'accounting_ledger_call_duration_seconds_count');
    moved('accounting', 'accounting_batch_size_count');
    moved('accounting', 'http_request_duration_seconds_count', { route: '/internal/streaming-sessions/initialize' });
    moved('chat', 'chat_streams_total', { model: 'local-dev', outcome: 'complete' });
    moved('chat', 'chat_time_to_first_token_seconds_count', { model: 'local-dev' });
    moved('chat', 'chat_tokens_total', { direction: 'input', model: 'local-dev' });
    moved('chat', 'chat_tokens_total', { direction: 'output', model: 'local-dev' });
    moved('chat', 'http_requests_total', { route: '/api/chat/sessions/:id/stream', method: 'POST', status: '200' });
    moved('monitoring', 'http_requests_total', { route: '/api/monitoring/relationships', method: 'POST' });
    // gauges and error counters are exposed (at rest: nothing open, nothing queued)
    expect(value(after.chat, 'chat_streams_open')).to.equal(0);
    expect(after.chat).to.match(/^chat_charge_outbox_depth 0$/m);
    expect(after.chat).to.match(/^chat_charge_outbox_oldest_age_seconds 0$/m);
    expect(after.monitoring).to.include('monitoring_observers_open');
    expect(after.auth).to.include('auth_bcrypt_queue_depth');
    // raw paths never become labels: no session id in any series
    expect(after.chat).to.not.include(session.body.session.id);
    expect(after.gateway + after.auth + after.accounting).to.not.include(student.userId);
  });
  // runs after the flows above, so the labelled families have series to check
  it('names and labels every metric family by Prometheus conventions (units in names, bounded labels, no user ids)', async () => {
    const scraped = await scrape(platform);
    // counts of items have no unit to name: calls per ledger batch
    const DIMENSIONLESS_HISTOGRAMS = new Set(['accounting_batch_size']);
    const FORBIDDEN_LABELS = /^(user|user_?id|username|email|jti|session|session_?id|key_?id|token|path|url)$/i;
    for (const part of PARTS) {
      const text = scraped[part];
      const types = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1] as string, m[2] as string]));
      expect(types.size, part).to.be.greaterThan(10);
      // prom-client's process and runtime metrics keep its own names (the gateway prefixes them with gateway_)
      const ours = [...types].filter(([name]) => !/^(gateway_)?(process|nodejs)_/.test(name));
      expect(ours.length, `${part} own families`).to.be.greaterThan(2);
      for (const [name, type] of ours) {
        expect(name, `${part}: snake_case, prefixed by the part or http_`).to.match(new RegExp(`^(${part}|http)_[a-z0-9_]+[a-z0-9]$`));
        if (type === 'counter') expect(name, `${part} counter`).to.match(/_total$/);
        else expect(name, `${part} ${type}: only counters end in _total`).to.not.match(/_total$/);
        if (type === 'histogram' && !DIMENSIONLESS_HISTOGRAMS.has(name)) expect(name, `${part} histogram unit`).to.match(/_(seconds|bytes)$/);
      }
      const seriesPerFamily = new Map<string, Set<string>>();
      for (const line of text.split('\n')) {
        const match = /^([a-z_:][a-z0-9_:]*?)(?:_bucket|_sum|_count)?(?:\{([^}]*)\})? \S+$/.exec(line);
        if (!match) continue;
        const labels = [...(match[2] ?? '').matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)].filter((l) => l[1] !== 'le');
        for (const label of labels) expect(label[1], `${part} ${match[1]}: no identity as a label`).to.not.match(FORBIDDEN_LABELS);
        const key = labels.map((l) => `${l[1]}=${l[2]}`).join(',');
        const family = match[1] as string;
        seriesPerFamily.set(family, (seriesPerFamily.get(family) ?? new Set()).add(key));
        // a raw path (an id in it) or a client's spelling would show as an unbounded value
        for (const label of labels) expect(label[2], `${part} ${family} ${label[1]}`).to.not.match(/[0-9a-f]{8}-[0-9a-f]{4}-|[0-9a-f]{24}/);
      }
      for (const [family, series] of seriesPerFamily) expect(series.size, `${part} ${family} series`).to.be.at.most(100);
    }
  });
});
