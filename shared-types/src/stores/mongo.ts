// The helpers of a part on MongoDB (and Redis): loads mongoose, never knex or pg.
import type { Redis } from 'ioredis';
import mongoose from 'mongoose';
import { pingRedis } from './redis.ts';

export { connectRedis, reportRedisErrors } from './redis.ts';

/** Connects mongoose to one database. Works on MongoDB 7 and FerretDB (no compressors; directConnection from the URL). */
export async function connectMongo(url: string, dbName: string): Promise<mongoose.Connection> {
  const connection = mongoose.createConnection(url, { dbName, serverSelectionTimeoutMS: 5_000, autoIndex: true });
  await connection.asPromise();
  return connection;
}

/** Readiness probes: true when the store answers. */
export const ping = {
  mongo: (connection: mongoose.Connection): Promise<boolean> =>
    connection.db
      ?.admin()
      .ping()
      .then(
        () => true,
        () => false,
      ) ?? Promise.resolve(false),
  redis: (redis: Redis): Promise<boolean> => pingRedis(redis),
};
