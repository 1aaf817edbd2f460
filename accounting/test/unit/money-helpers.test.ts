import { ApiError } from '@platform/shared-types';
import { createTestAuth } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { configSchema } from '../../src/config.ts';
import { mapPgError, withRetry } from '../../src/db.ts';
import { requestHash } from '../../src/features/credits/idempotency.ts';

const pgError = (code: string, message = 'select 1 - boom', detail?: string) => Object.assign(new Error(message), { code, detail });

describe('accounting money helpers', () => {
  it('hashes request bodies independently of key order', () => {
    expect(requestHash({ userId: 'a', credits: 1 })).to.equal(requestHash({ credits: 1, userId: 'a' }));
    expect(requestHash({ userId: 'a', credits: 1 })).to.not.equal(requestHash({ userId: 'a', credits: 2 }));
    expect(requestHash({ a: { b: 1, c: 2 } })).to.equal(requestHash({ a: { c: 2, b: 1 } }));
  });

  it('maps our SQLSTATEs to problem codes', () => {
    const insufficient = mapPgError(pgError('P0402', 'select ... - insufficient credits', '17')) as ApiError;
    expect(insufficient).to.be.instanceOf(ApiError);
    expect(insufficient.code).to.equal('INSUFFICIENT_CREDITS');
    expect(insufficient.extensions).to.deep.equal({ availableCredits: 17 });
    expect((mapPgError(pgError('P0404', 'select ... - model')) as ApiError).message).to.equal('Unknown model');
    expect((mapPgError(pgError('P0403')) as ApiError).code).to.equal('FORBIDDEN');
    expect((mapPgError(pgError('P0409')) as ApiError).code).to.equal('CONFLICT');
    expect((mapPgError(pgError('23503')) as ApiError).code).to.equal('NOT_FOUND');
    const other = pgError('42P01');
    expect(mapPgError(other)).to.equal(other);
  });

  it('retries serialization failures and deadlocks, and nothing else', async () => {
    let calls = 0;
    const value = await withRetry(async () => {
      calls++;
      if (calls < 3) throw pgError(calls === 1 ? '40001' : '40P01');
      return 'done';
    });
    expect(value).to.equal('done');
    expect(calls).to.equal(3);
    let once = 0;
    let failure: unknown;
    try {
      await withRetry(async () => {
        once++;
        throw pgError('P0402', 'x - insufficient', '0');
      });
    } catch (error) {
      failure = error;
    }
    expect(once).to.equal(1);
    expect((failure as ApiError).code).to.equal('INSUFFICIENT_CREDITS');
  });

  it('has defaults for everything but secrets and store URLs, and refuses bad values', () => {
    const base = { ...createTestAuth().secrets, PG_URL: 'postgres://localhost:5432', REDIS_URL: 'redis://localhost:6379' };
    const config = configSchema.parse(base);
    expect(config).to.include({
      PORT: 3001,
      PG_DB: 'accounting',
      MONITORING_URL: 'http://127.0.0.1:3003',
      USER_EVENTS_STREAM: 'events:users',
      USER_EVENTS_GROUP: 'accounting',
      RESERVATION_TTL_SECONDS: 600,
    });
    expect(configSchema.safeParse({ ...base, RESERVATION_TTL_SECONDS: '0' }).success).to.equal(false);
    expect(configSchema.safeParse({ ...base, MONITORING_URL: 'not a url' }).success).to.equal(false);
    expect(configSchema.safeParse({ PG_URL: base.PG_URL, REDIS_URL: base.REDIS_URL }).success).to.equal(false);
  });
});
