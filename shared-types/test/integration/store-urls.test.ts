// Which stores a run talks to (issue 19): a URL the user configured wins and is never mistaken for the
// checkout's own dev store; env.sh's copy of a dev URL is not a configured one; the dev file holds only DEV_*.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { connectMongo, connectPostgres, connectRedis } from '../../src/stores/index.ts';
import { configuredStoreUrl, readDevStoreUrls, resolveStoreUrls, storeUrls, uniqueDbName } from '../../src/testing/index.ts';

describe('store URLs', () => {
  const dev = {
    PG_URL: 'postgres://postgres:p@127.0.0.1:55432',
    REDIS_URL: 'redis://:r@127.0.0.1:56379',
    MONGO_URL: 'mongodb://127.0.0.1:57017/?directConnection=true',
  };

  it('takes a URL the user set over the dev store', () => {
    const env = { PG_URL: 'postgres://me@db.example:5432', DEV_PG_URL: dev.PG_URL };
    expect(configuredStoreUrl(env, 'PG_URL')).to.equal('postgres://me@db.example:5432');
    expect(resolveStoreUrls(env, dev).urls).to.deep.equal({ ...dev, PG_URL: 'postgres://me@db.example:5432' });
  });

  it("does not count env.sh's copy of a dev URL as configured, and follows the dev store to its current port", () => {
    const env = { PG_URL: dev.PG_URL, DEV_PG_URL: dev.PG_URL, REDIS_URL: dev.REDIS_URL, DEV_REDIS_URL: dev.REDIS_URL };
    expect(configuredStoreUrl(env, 'PG_URL')).to.equal(undefined);
    const moved = { ...dev, PG_URL: 'postgres://postgres:p@127.0.0.1:55433' };
    expect(resolveStoreUrls(env, moved).urls.PG_URL).to.equal(moved.PG_URL);
  });

  it('names a store that has neither a configured nor a dev URL', () => {
    const { missing } = resolveStoreUrls({ REDIS_URL: dev.REDIS_URL }, { MONGO_URL: dev.MONGO_URL });
    expect(missing).to.deep.equal(['PG_URL']);
  });

  it('reads only the DEV_* lines of services.env (an older file with PG_URL= lines gives nothing)', () => {
    const root = mkdtempSync(join(tmpdir(), 'store-urls-'));
    try {
      mkdirSync(join(root, '.data'));
      writeFileSync(join(root, '.data', 'services.env'), `PG_URL=${dev.PG_URL}\nREDIS_URL=${dev.REDIS_URL}\n`);
      expect(readDevStoreUrls(root)).to.deep.equal({});
      writeFileSync(join(root, '.data', 'services.env'), `# comment\nDEV_MONGO_URL=${dev.MONGO_URL}\nDEV_OTHER_URL=x\n`);
      expect(readDevStoreUrls(root)).to.deep.equal({ MONGO_URL: dev.MONGO_URL });
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('reaches PostgreSQL, Redis and MongoDB at the URLs it resolves', async () => {
    const urls = storeUrls();
    const db = connectPostgres(urls.PG_URL, { pool: { min: 0, max: 1 } });
    try {
      expect((await db.raw('select 1 as one')).rows[0].one).to.equal(1);
    } finally {
      await db.destroy();
    }
    const redis = await connectRedis(urls.REDIS_URL);
    try {
      expect(await redis.ping()).to.equal('PONG');
    } finally {
      redis.disconnect();
    }
    const mongo = await connectMongo(urls.MONGO_URL, uniqueDbName('store_urls'));
    try {
      expect((await mongo.db?.admin().ping())?.ok).to.equal(1);
    } finally {
      await mongo.close();
    }
  });
});
