import { connectMongo } from '@platform/shared-types/stores/mongo';
import { storeUrls, uniqueDbName } from '@platform/shared-types/testing';
import { expect } from 'chai';
import mongoose from 'mongoose';

describe('MongoDB-compatible server through mongoose', () => {
  let connection: mongoose.Connection;
  before(async () => {
    connection = await connectMongo(storeUrls().MONGO_URL, uniqueDbName('auth_compat'));
  });
  after(async () => {
    await connection.dropDatabase();
    await connection.close();
  });

  it('rejects a duplicate under a unique index with code 11000', async () => {
    const Thing = connection.model('UniqueThing', new mongoose.Schema({ key: { type: String, unique: true } }));
    await Thing.init();
    await Thing.create({ key: 'a' });
    const error = await Thing.create({ key: 'a' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((error as { code?: number } | undefined)?.code).to.equal(11000);
  });
});
