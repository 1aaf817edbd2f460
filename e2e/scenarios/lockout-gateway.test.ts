// Login lockout through the real gateway, with clients at different real source addresses (127.0.0.2 and
// 127.0.0.3 on the loopback interface): the attacker forges every address header it can think of, and its
// failures still lock only its own address out of the account.
import { request } from 'node:http';
import { expect } from 'chai';
import { createUser, type Session } from '../support/client.ts';
import { type Platform, startPlatform } from '../support/platform.ts';

interface Answer {
  status: number;
  body: { code?: string };
}

/** POST /api/auth/login from a chosen local source address, with extra (forged) headers. */
function loginFrom(gatewayUrl: string, localAddress: string, body: object, headers: Record<string, string> = {}): Promise<Answer> {
  const url = new URL('/api/auth/login', gatewayUrl);
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        localAddress,
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)), ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, body: text ? (JSON.parse(text) as Answer['body']) : {} });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

describe('login lockout through the gateway: per client address, not forgeable by headers', () => {
  let platform: Platform;
  let owner: Session;
  const ATTACKER = '127.0.0.2';
  const OWNER = '127.0.0.3';

  before(async function () {
    this.timeout(180_000);
    // the gateway's own login rate limit would answer 429 before auth's lock shows; raise it for this scenario
    platform = await startPlatform({ RATE_LIMIT_LOGIN_PER_MINUTE: '100', RATE_LIMIT_LOGIN_IP_PER_MINUTE: '100' });
    owner = await createUser(platform, 'admin', 'lockowner');
  });
  after(async () => {
    await platform?.stop();
  });

  it("an attacker forging the owner's address still locks only itself; the owner signs in from its own address", async () => {
    const forged = { 'x-forwarded-for': OWNER, 'x-real-ip': OWNER, forwarded: `for=${OWNER}`, 'true-client-ip': OWNER };
    for (let i = 0; i < 5; i++) {
      const failed = await loginFrom(platform.gatewayUrl, ATTACKER, { email: owner.email, password: `wrong guess ${i}` }, forged);
      expect(failed.status, JSON.stringify(failed.body)).to.equal(401);
    }
    const attacker = await loginFrom(platform.gatewayUrl, ATTACKER, { email: owner.email, password: owner.password }, forged);
    expect(attacker.status).to.equal(423);
    expect(attacker.body.code).to.equal('ACCOUNT_LOCKED');
    const ownerLogin = await loginFrom(platform.gatewayUrl, OWNER, { email: owner.email, password: owner.password });
    expect(ownerLogin.status, JSON.stringify(ownerLogin.body)).to.equal(200);
  });
});
