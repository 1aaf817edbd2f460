// API keys (DESIGN 5b, issue 13) against the whole platform through the real gateway: create, list, delete; a key
// acts with its user's rights on the ordinary routes; deletion, disabling and role changes count from the next
// request; expired keys and refresh tokens are refused; a key's credit limit is enforced by accounting while the
// user still has credits; forged API-key identity headers are stripped; no key ever reaches a log line.
import { request } from 'node:http';
import { apiKeyRedisKeys, hashApiKey } from '@platform/shared-types';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { api, createUser, items, type Session, type SseEvent, sse } from '../support/client.ts';
import { type Platform, startPlatform } from '../support/platform.ts';

interface CreatedKey {
  id: string;
  name: string;
  key: string;
  prefix: string;
  createdAt: string;
  expiresAt?: string;
  creditLimit?: number;
}

describe('API keys through the gateway', () => {
  let platform: Platform;
  let gw: string;
  let admin: Session;
  let redis: Redis;
  const issued: string[] = [];

  async function createKey(owner: Session, body: Record<string, unknown>): Promise<CreatedKey> {
    const created = await api<CreatedKey>(gw, 'POST', '/api/auth/api-keys', { token: owner.accessToken, body });
    expect(created.status, JSON.stringify(created.body)).to.equal(201);
    issued.push(created.body.key);
    return created.body;
  }

  async function stream(token: string, message: string, maxOutputTokens: number): Promise<{ status: number; events: SseEvent[]; body?: string }> {
    const session = await api<{ session: { id: string } }>(gw, 'POST', '/api/chat/sessions', { token, body: { modelId: 'local-dev' } });
    expect(session.status, JSON.stringify(session.body)).to.equal(201);
    const events: SseEvent[] = [];
    try {
      for await (const event of sse(gw, `/api/chat/sessions/${session.body.session.id}/stream`, { token, body: { message, maxOutputTokens } }))
        events.push(event);
    } catch (error) {
      const refused = error as { status?: number; body?: string };
      if (refused.status) return { status: refused.status, events, body: refused.body };
      throw error;
    }
    return { status: 200, events };
  }

  before(async function () {
    this.timeout(180_000);
    platform = await startPlatform({ RATE_LIMIT_API_KEY_PER_MINUTE: '40' });
    gw = platform.gatewayUrl;
    admin = await createUser(platform, 'admin');
    redis = new Redis(platform.env.REDIS_URL as string);
  });
  after(async () => {
    redis?.disconnect();
    await platform?.stop();
  });

  it('creates a key shown once, lists it without the key (with last use), deletes it; the deleted key is refused on the next request', async () => {
    const alice = await createUser(platform, 'enduser', 'akalice');
    const created = await createKey(alice, { name: 'ci script', expiresInDays: 30, creditLimit: 500 });
    expect(created.key).to.match(/^sk-[A-Za-z0-9_-]{43,}$/);
    expect(created.key.startsWith(created.prefix)).to.equal(true);
    expect(created.prefix.length).to.be.below(created.key.length / 3);
    expect(created).to.include({ name: 'ci script', creditLimit: 500 });
    expect(Date.parse(created.expiresAt as string) - Date.now()).to.be.within(29 * 86_400_000, 30 * 86_400_000 + 60_000);
    // auth stores only the hash; the gateway's entry has a TTL to the expiry
    const ttl = await redis.ttl(apiKeyRedisKeys.entry(hashApiKey(created.key)));
    expect(ttl).to.be.within(29 * 86_400, 30 * 86_400);

    const me = await api<{ user: { id: string } }>(gw, 'GET', '/api/auth/me', { token: created.key });
    expect(me.status, JSON.stringify(me.body)).to.equal(200);
    expect(me.body.user.id).to.equal(alice.userId);

    const listed = await api<{ apiKeys: Array<Record<string, unknown>> }>(gw, 'GET', '/api/auth/api-keys', { token: alice.accessToken });
    expect(listed.status).to.equal(200);
    expect(JSON.stringify(listed.body)).not.to.include(created.key);
    const row = listed.body.apiKeys.find((k) => k.id === created.id);
    expect(row).to.include({ name: 'ci script', prefix: created.prefix, creditLimit: 500 });
    expect(row).not.to.have.property('key');
    expect(Date.parse(String(row?.lastUsedAt))).to.be.within(Date.now() - 120_000, Date.now() + 5_000);

    const removed = await api(gw, 'DELETE', `/api/auth/api-keys/${created.id}`, { token: alice.accessToken });
    expect(removed.status).to.equal(204);
    const after = await api<{ code: string }>(gw, 'GET', '/api/auth/me', { token: created.key });
    expect(after.status).to.equal(401);
    expect(after.body.code).to.equal('UNAUTHENTICATED');
    expect(JSON.stringify(after.body)).not.to.include(created.key);
    const again = await api(gw, 'DELETE', `/api/auth/api-keys/${created.id}`, { token: alice.accessToken });
    expect(again.status).to.equal(404);
    const none = await api<{ apiKeys: unknown[] }>(gw, 'GET', '/api/auth/api-keys', { token: alice.accessToken });
    expect(none.body.apiKeys).to.have.length(0);
  });

  it("acts with its user's rights only; another user's keys are out of reach; an admin manages any user's keys", async () => {
    const bob = await createUser(platform, 'enduser', 'akbob');
    const carol = await createUser(platform, 'enduser', 'akcarol');
    const key = await createKey(bob, { name: 'bob' });
    expect((await api(gw, 'GET', '/api/credits/balance', { token: key.key })).status).to.equal(200);
    expect((await api(gw, 'GET', '/api/admin/users', { token: key.key })).status).to.equal(403);
    expect((await api(gw, 'GET', `/api/credits/balance?userId=${carol.userId}`, { token: key.key })).status).to.equal(403);
    // carol cannot delete or list bob's key; only an admin can act for another user
    expect((await api(gw, 'DELETE', `/api/auth/api-keys/${key.id}`, { token: carol.accessToken })).status).to.equal(404);
    expect((await api(gw, 'GET', `/api/auth/api-keys?userId=${bob.userId}`, { token: carol.accessToken })).status).to.equal(403);
    // a key cannot mint itself siblings (a limited key would otherwise escape its limit)
    expect((await api(gw, 'POST', '/api/auth/api-keys', { token: key.key, body: { name: 'child' } })).status).to.equal(403);
    const forCarol = await api<CreatedKey>(gw, 'POST', `/api/auth/api-keys?userId=${carol.userId}`, { token: admin.accessToken, body: { name: 'by admin' } });
    expect(forCarol.status).to.equal(201);
    issued.push(forCarol.body.key);
    const carolMe = await api<{ user: { id: string } }>(gw, 'GET', '/api/auth/me', { token: forCarol.body.key });
    expect(carolMe.body.user.id).to.equal(carol.userId);
    const adminList = await api<{ apiKeys: Array<{ id: string }> }>(gw, 'GET', `/api/auth/api-keys?userId=${bob.userId}`, { token: admin.accessToken });
    expect(adminList.body.apiKeys.map((k) => k.id)).to.deep.equal([key.id]);
    expect((await api(gw, 'DELETE', `/api/auth/api-keys/${key.id}?userId=${bob.userId}`, { token: admin.accessToken })).status).to.equal(204);
    expect((await api(gw, 'GET', '/api/credits/balance', { token: key.key })).status).to.equal(401);
  });

  it("a role change counts from the next request; a disabled user's key is refused, and works again once re-enabled", async () => {
    const dave = await createUser(platform, 'enduser', 'akdave');
    const key = await createKey(dave, { name: 'dave' });
    expect((await api(gw, 'GET', '/api/admin/users', { token: key.key })).status).to.equal(403);
    const promote = await api(gw, 'PATCH', `/api/admin/users/${dave.userId}`, { token: admin.accessToken, body: { role: 'admin' } });
    expect(promote.status, JSON.stringify(promote.body)).to.equal(200);
    expect((await api(gw, 'GET', '/api/admin/users', { token: key.key })).status).to.equal(200);
    const demote = await api(gw, 'PATCH', `/api/admin/users/${dave.userId}`, { token: admin.accessToken, body: { role: 'enduser' } });
    expect(demote.status).to.equal(200);
    expect((await api(gw, 'GET', '/api/admin/users', { token: key.key })).status).to.equal(403);

    const disable = await api(gw, 'PATCH', `/api/admin/users/${dave.userId}`, { token: admin.accessToken, body: { status: 'disabled' } });
    expect(disable.status).to.equal(200);
    const refused = await api<{ code: string }>(gw, 'GET', '/api/auth/me', { token: key.key });
    expect(refused.status).to.equal(401);
    expect(refused.body.code).to.equal('UNAUTHENTICATED');
    expect(await redis.exists(apiKeyRedisKeys.entry(hashApiKey(key.key)))).to.equal(0);
    const enable = await api(gw, 'PATCH', `/api/admin/users/${dave.userId}`, { token: admin.accessToken, body: { status: 'active' } });
    expect(enable.status).to.equal(200);
    expect((await api(gw, 'GET', '/api/auth/me', { token: key.key })).status).to.equal(200);
  });

  it('refuses an expired key (even before its Redis entry lapses), unknown keys, and a refresh token as a bearer', async () => {
    const erin = await createUser(platform, 'enduser', 'akerin');
    const key = await createKey(erin, { name: 'short', expiresInDays: 1 });
    expect((await api(gw, 'GET', '/api/auth/me', { token: key.key })).status).to.equal(200);
    // the clock cannot be moved: the entry is made to say what it says a day later (its TTL has not fired yet)
    const entryKey = apiKeyRedisKeys.entry(hashApiKey(key.key));
    const entry = JSON.parse((await redis.get(entryKey)) as string) as Record<string, unknown>;
    await redis.set(entryKey, JSON.stringify({ ...entry, expiresAt: new Date(Date.now() - 1000).toISOString() }), 'KEEPTTL');
    const expired = await api<{ code: string }>(gw, 'GET', '/api/auth/me', { token: key.key });
    expect(expired.status).to.equal(401);
    expect(expired.body.code).to.equal('UNAUTHENTICATED');

    const unknown = await api(gw, 'GET', '/api/auth/me', { token: `sk-${'A'.repeat(43)}` });
    expect(unknown.status).to.equal(401);
    const refresh = await api(gw, 'GET', '/api/auth/me', { token: erin.refreshToken });
    expect(refresh.status).to.equal(401);
    expect((await api(gw, 'GET', '/api/auth/me', { token: erin.accessToken })).status).to.equal(200);
  });

  it("refuses with 402 a reservation over the key's credit limit while the user still has credits; spend shows per key and in transactions", async function () {
    this.timeout(60_000);
    const frank = await createUser(platform, 'enduser', 'akfrank');
    const allocate = await api(gw, 'POST', '/api/credits/allocate', { token: admin.accessToken, body: { userId: frank.userId, credits: 100_000 } });
    expect(allocate.status).to.equal(201);
    // the worst case of one stream, as accounting reserves it (a fresh session: same input, same hold)
    const probe = await stream(frank.accessToken, 'Hello there', 200);
    expect(probe.status).to.equal(200);
    const probeReservation = String(probe.events[0]?.data.reservationId);
    const ledger = items<{ type: string; amount: number; reservationId: string | null; apiKeyId: string | null }>(
      (await api(gw, 'GET', '/api/credits/transactions?limit=100', { token: frank.accessToken })).body,
    );
    const hold = -Number(ledger.find((t) => t.type === 'reservation' && t.reservationId === probeReservation)?.amount);
    expect(hold).to.be.greaterThan(1);

    // a limit of exactly one hold: the first stream fits, the second (after a nonzero charge) does not
    const key = await createKey(frank, { name: 'limited', creditLimit: hold });
    const first = await stream(key.key, 'Hello there', 200);
    expect(first.status, first.body).to.equal(200);
    const charged = Number(first.events.at(-1)?.data.credits);
    expect(first.events.at(-1)?.event).to.equal('done');
    expect(charged).to.be.greaterThan(0);
    const second = await stream(key.key, 'Hello there', 200);
    expect(second.status, second.body).to.equal(402);
    expect(JSON.parse(second.body as string).code).to.equal('INSUFFICIENT_CREDITS');
    expect(second.body).not.to.include(key.key);
    // the user's own token still streams: it is the key that is out of credits, not the user
    const balance = await api<{ available: number }>(gw, 'GET', '/api/credits/balance', { token: frank.accessToken });
    expect(balance.body.available).to.be.greaterThan(hold);
    expect((await stream(frank.accessToken, 'Hello there', 200)).status).to.equal(200);

    const spend = await api<{
      apiKeys: Array<{ apiKeyId: string; creditLimit: number; chargedCredits: number; heldCredits: number; remainingCredits: number }>;
    }>(gw, 'GET', '/api/credits/api-keys', { token: frank.accessToken });
    expect(spend.status).to.equal(200);
    expect(spend.body.apiKeys).to.deep.equal([
      { apiKeyId: key.id, creditLimit: hold, chargedCredits: charged, heldCredits: 0, remainingCredits: hold - charged },
    ]);
    const throughKey = items<{ type: string; amount: number; apiKeyId: string | null }>(
      (await api(gw, 'GET', '/api/credits/transactions?limit=100', { token: frank.accessToken })).body,
    ).filter((t) => t.apiKeyId === key.id);
    expect(throughKey.map((t) => t.type)).to.include.members(['reservation', 'charge']);

    // a key with a zero limit reserves nothing at all
    const zero = await createKey(frank, { name: 'zero', creditLimit: 0 });
    expect((await stream(zero.key, 'Hello there', 200)).status).to.equal(402);
  });

  it('strips client-sent X-Api-Key-Id headers (any case, several copies) and counts rate limits per key', async () => {
    const gina = await createUser(platform, 'enduser', 'akgina');
    const key = await createKey(gina, { name: 'gina' });
    // auth refuses key management from a key: were a forged X-Api-Key-Id to reach it, this would fail
    for (const name of ['X-Api-Key-Id', 'x-api-key-id', 'X-API-KEY-ID']) {
      const status = await new Promise<number>((resolve, reject) => {
        const url = new URL(gw);
        const body = JSON.stringify({ name: `forged ${name}` });
        const req = request(
          {
            host: url.hostname,
            port: url.port,
            path: '/api/auth/api-keys',
            method: 'POST',
            headers: {
              authorization: `Bearer ${gina.accessToken}`,
              'content-type': 'application/json',
              'content-length': Buffer.byteLength(body),
              [name]: [key.id, key.id],
            },
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
        req.end(body);
      });
      expect(status, name).to.equal(201);
    }
    const listed = await api<{ apiKeys: Array<{ name: string }> }>(gw, 'GET', '/api/auth/api-keys', { token: gina.accessToken });
    expect(listed.body.apiKeys).to.have.length(4);
    // per key: RATE_LIMIT_API_KEY_PER_MINUTE=40 for this platform; the user's own token is not counted under it
    let limited = 0;
    for (let i = 0; i < 45; i++) if ((await api(gw, 'GET', '/api/credits/balance', { token: key.key })).status === 429) limited++;
    expect(limited).to.be.within(1, 5);
    expect((await api(gw, 'GET', '/api/credits/balance', { token: gina.accessToken })).status).to.equal(200);
  });

  it('never writes a key to any log line of any part', () => {
    expect(issued.length).to.be.greaterThan(5);
    for (const part of ['gateway', 'auth', 'accounting', 'chat', 'monitoring'] as const) {
      const lines = platform.logs(part);
      expect(lines.length, part).to.be.greaterThan(0);
      for (const key of issued) {
        const leaked = lines.find((line) => line.includes(key) || line.includes(key.slice(10)));
        expect(leaked, `${part} logged a key`).to.equal(undefined);
      }
    }
  });
});
