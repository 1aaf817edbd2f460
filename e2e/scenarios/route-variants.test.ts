// DESIGN 7 against the real platform: the gateway and every service route by one rule (case-sensitive, strict),
// so a variant spelling of a limited route is never a looser way into its handler.
import { request } from 'node:http';
import { expect } from 'chai';
import { api, createUser, type Session } from '../support/client.ts';
import { type Platform, startPlatform } from '../support/platform.ts';

/** The status of one request sent with its target exactly as written. */
function statusOf(base: string, method: string, target: string, headers: Record<string, string> = {}, body?: string): Promise<number> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method, path: target, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('route variants through the real gateway and services', () => {
  let platform: Platform;
  let victim: Session;
  let attacker: Session;

  before(async function () {
    this.timeout(180_000);
    platform = await startPlatform();
    victim = await createUser(platform, 'enduser', 'victim');
    attacker = await createUser(platform, 'enduser', 'attacker');
  });
  after(async () => {
    await platform?.stop();
  });

  it('8 wrong-password logins on /api/auth/LOGIN with a token are no logins: the account is not locked', async () => {
    const wrong = JSON.stringify({ email: victim.email, password: 'not the password at all' });
    for (const target of ['/api/auth/LOGIN', '/api/auth/Login']) {
      for (let i = 0; i < 8; i++) {
        expect(await statusOf(platform.gatewayUrl, 'POST', target, { authorization: `Bearer ${attacker.accessToken}` }, wrong), target).to.equal(404);
      }
    }
    for (let i = 0; i < 8; i++) expect(await statusOf(platform.gatewayUrl, 'POST', '/api/auth/login;jsessionid=1', {}, wrong)).to.equal(400);
    const login = await api(platform.gatewayUrl, 'POST', '/api/auth/login', { body: { email: victim.email, password: victim.password } });
    expect(login.status, JSON.stringify(login.body)).to.equal(200);
  });

  it('case and slash variants of the model routes never run the model', async () => {
    const created = await api<{ session: { id: string } }>(platform.gatewayUrl, 'POST', '/api/chat/sessions', {
      token: attacker.accessToken,
      body: { modelId: 'local-dev' },
    });
    expect(created.status, JSON.stringify(created.body)).to.equal(201);
    const sessionId = created.body.session.id;
    expect(sessionId).to.be.a('string');
    const auth = { authorization: `Bearer ${attacker.accessToken}` };
    const body = JSON.stringify({ message: 'hello' });
    for (const target of [
      `/api/chat/sessions/${sessionId}/STREAM`,
      `/api/chat/sessions/${sessionId}/Stream`,
      `/api/chat/sessions/${sessionId}/Messages`,
      `/api/chat/sessions/${sessionId}/stream/`,
      `/api/chat/sessions/${sessionId}/messages/`,
      '/api/v1/chat/PREDICT',
      '/api/v1/chat/predict/',
    ]) {
      expect(await statusOf(platform.gatewayUrl, 'POST', target, auth, body), target).to.equal(404);
    }
    for (const target of [`/api/chat/sessions/${sessionId}/stream%23`, `/api/chat/sessions/${sessionId}/stream;x=1`]) {
      expect(await statusOf(platform.gatewayUrl, 'POST', target, auth, body), target).to.equal(400);
    }
    const session = await api<{ messages: unknown[] }>(platform.gatewayUrl, 'GET', `/api/chat/sessions/${sessionId}`, { token: attacker.accessToken });
    expect(session.status).to.equal(200);
    expect(session.body.messages).to.have.length(0);
  });

  it('every service answers 404 to case and trailing-slash variants on its own port', async () => {
    const probes: Array<[keyof Platform['urls'], string, string]> = [
      ['auth', 'POST', '/api/auth/LOGIN'],
      ['auth', 'POST', '/api/auth/login/'],
      ['auth', 'GET', '/HEALTH'],
      ['accounting', 'GET', '/api/credits/BALANCE'],
      ['accounting', 'GET', '/api/credits/balance/'],
      ['chat', 'POST', '/api/chat/sessions/x/STREAM'],
      ['chat', 'POST', '/api/chat/sessions/x/stream/'],
      ['chat', 'POST', '/api/v1/chat/PREDICT'],
      ['monitoring', 'GET', '/api/SUPERVISED-students'],
      ['monitoring', 'GET', '/api/supervised-students/'],
      ['monitoring', 'GET', '/MONITORING/'],
    ];
    for (const [part, method, target] of probes) {
      expect(await statusOf(platform.urls[part], method, target, {}, method === 'POST' ? '{}' : undefined), `${part} ${method} ${target}`).to.equal(404);
    }
    // the canonical spellings are routed (their own answers, not 404)
    expect(await statusOf(platform.urls.auth, 'GET', '/health')).to.equal(200);
    expect(await statusOf(platform.urls.monitoring, 'GET', '/monitoring/')).to.equal(200);
  });
});
