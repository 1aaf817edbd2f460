// Issue 14 (4, 5): user lifecycle events survive a Redis outage (auth's outbox and relay), and accounting knows a
// user an admin has just created (it asks auth just in time). Real processes on real stores; a private Redis that
// this suite stops and starts.
import { USER_EVENT_FIELD } from '@platform/shared-types';
import { connectPostgres, connectRedis, pgUrlFor } from '@platform/shared-types/stores';
import { expect } from 'chai';
import type { Knex } from 'knex';
import mongoose from 'mongoose';
import { api, createUser, type Session, uniqueUser } from '../support/client.ts';
import { type Platform, startPlatform } from '../support/platform.ts';
import { type PrivateStore, privateRedis } from '../support/private-stores.ts';

async function until<T>(probe: () => Promise<T | undefined | false>, what: string, timeoutMs = 40_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('user events and just-in-time accounts (issue 14)', function () {
  this.timeout(120_000);
  let platform: Platform;
  let redis: PrivateStore;
  let accountingDb: Knex;
  let authDb: mongoose.Connection;
  let gw: string;
  let admin: Session;

  before(async function () {
    this.timeout(180_000);
    redis = await privateRedis();
    platform = await startPlatform({ REDIS_URL: redis.url, USER_EVENTS_RELAY_MS: '200', USER_EVENTS_BLOCK_MS: '200' });
    gw = platform.gatewayUrl;
    accountingDb = connectPostgres(pgUrlFor(platform.env.PG_URL as string, platform.env.ACCOUNTING_PG_DB as string), { pool: { min: 0, max: 1 } });
    authDb = await mongoose.createConnection(platform.env.MONGO_URL as string, { dbName: platform.env.AUTH_MONGO_DB }).asPromise();
    admin = await createUser(platform, 'admin');
  });
  after(async () => {
    await accountingDb?.destroy();
    await authDb?.close();
    await platform?.stop();
    await redis?.destroy();
  });

  /** The stream entries of one user's events of one type. */
  async function entriesOf(userId: string, type: string): Promise<string[]> {
    const client = await connectRedis(redis.url);
    try {
      const entries = (await client.xrange(platform.env.USER_EVENTS_STREAM as string, '-', '+')) as Array<[string, string[]]>;
      return entries
        .filter(([, fields]) => {
          const event = JSON.parse(fields[fields.indexOf(USER_EVENT_FIELD) + 1] as string) as { type: string; user: { id: string } };
          return event.type === type && event.user.id === userId;
        })
        .map(([id]) => id);
    } finally {
      client.disconnect();
    }
  }

  /** Whether a consumer group has read and acknowledged everything up to `entryId`. */
  async function groupDone(group: string, entryId: string): Promise<boolean> {
    const client = await connectRedis(redis.url);
    try {
      const groups = (await client.xinfo('GROUPS', platform.env.USER_EVENTS_STREAM as string)) as Array<Array<string | number>>;
      const info = groups.map((fields) => Object.fromEntries(Array.from({ length: fields.length / 2 }, (_, i) => [fields[2 * i], fields[2 * i + 1]])));
      const found = info.find((g) => g.name === group);
      if (!found) return false;
      const [ms, seq] = String(found['last-delivered-id']).split('-').map(Number) as [number, number];
      const [entryMs, entrySeq] = entryId.split('-').map(Number) as [number, number];
      const delivered = ms > entryMs || (ms === entryMs && seq >= entrySeq);
      return delivered && Number(found.pending) === 0;
    } finally {
      client.disconnect();
    }
  }

  it('Redis down while a user signs up, then back: user.registered reaches accounting and monitoring once', async () => {
    await redis.stop();
    let signedUp: { status: number; body: { user: { id: string } } };
    try {
      const user = uniqueUser('outage');
      // straight to auth: the gateway's own Redis needs (rate limits, revocation) are another matter
      signedUp = await api<{ user: { id: string } }>(platform.urls.auth, 'POST', '/api/auth/signup', { body: user });
      expect(signedUp.status, JSON.stringify(signedUp.body)).to.equal(201);
      // the event waits in auth's store
      expect(await authDb.collection('user_event_outbox').countDocuments({})).to.be.at.least(1);
    } finally {
      await redis.start();
    }
    const userId = signedUp.body.user.id;
    // accounting learns of the user from the event (the user made no request that could create it just in time)
    const account = await until(async () => accountingDb('accounts').where({ user_id: userId }).first(), 'accounting applies user.registered');
    expect(account.identity_at, 'created from the event').to.be.instanceOf(Date);
    const [entry, ...more] = await until(async () => {
      const found = await entriesOf(userId, 'user.registered');
      return found.length > 0 ? found : undefined;
    }, 'the relay appends the event');
    await until(async () => (await groupDone('monitoring', entry as string)) && (await groupDone('accounting', entry as string)), 'both groups consume it');
    // nothing is left to relay, so nothing more can be appended: exactly one entry
    await until(async () => (await authDb.collection('user_event_outbox').countDocuments({})) === 0, 'the outbox drains');
    expect(more).to.have.length(0);
    expect(await entriesOf(userId, 'user.registered')).to.have.length(1);
  });

  it('allocation right after an admin creates a user: 201, never 404, even before the event reaches accounting', async () => {
    // while Redis is down the user.registered event waits in auth's outbox: accounting cannot have heard of the user
    await redis.stop();
    try {
      const user = uniqueUser('early');
      const created = await api<{ user: { id: string } }>(gw, 'POST', '/api/admin/users', { token: admin.accessToken, body: { ...user, role: 'enduser' } });
      expect(created.status, JSON.stringify(created.body)).to.equal(201);
      expect(await accountingDb('accounts').where({ user_id: created.body.user.id }).first()).to.equal(undefined);
      const allocated = await api(gw, 'POST', '/api/credits/allocate', { token: admin.accessToken, body: { userId: created.body.user.id, credits: 10 } });
      expect(allocated.status, JSON.stringify(allocated.body)).to.equal(201);
    } finally {
      await redis.start();
    }
    for (let i = 0; i < 5; i++) {
      const user = uniqueUser('fresh');
      const created = await api<{ user: { id: string } }>(gw, 'POST', '/api/admin/users', { token: admin.accessToken, body: { ...user, role: 'enduser' } });
      expect(created.status, JSON.stringify(created.body)).to.equal(201);
      const allocated = await api(gw, 'POST', '/api/credits/allocate', { token: admin.accessToken, body: { userId: created.body.user.id, credits: 10 } });
      expect(allocated.status, JSON.stringify(allocated.body)).to.equal(201);
    }
  });
});
