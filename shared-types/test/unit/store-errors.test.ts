import { expect } from 'chai';
import { isStoreRejectedValue, isStoreUnavailable } from '../../src/express/middleware.ts';

describe('store unavailability', () => {
  it('recognises driver errors of MongoDB, PostgreSQL and Redis, also as causes', () => {
    const named = (name: string) => Object.assign(new Error('x'), { name });
    expect(isStoreUnavailable(named('MongoServerSelectionError'))).to.equal(true);
    expect(isStoreUnavailable(Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }))).to.equal(true);
    expect(isStoreUnavailable(new Error('Operation `users.findOne()` buffering timed out after 10000ms'))).to.equal(true);
    expect(isStoreUnavailable(new Error('wrapped', { cause: named('KnexTimeoutError') }))).to.equal(true);
    const reply = (message: string) => Object.assign(new Error(message), { name: 'ReplyError' });
    expect(isStoreUnavailable(reply("OOM command not allowed when used memory > 'maxmemory'."))).to.equal(true);
    expect(isStoreUnavailable(reply("READONLY You can't write against a read only replica."))).to.equal(true);
  });

  it('leaves other errors alone', () => {
    expect(isStoreUnavailable(new TypeError('undefined is not a function'))).to.equal(false);
    expect(isStoreUnavailable(Object.assign(new Error('dup'), { code: 11000 }))).to.equal(false);
    // a command Redis refuses as wrong is a bug of ours, not an outage
    const reply = Object.assign(new Error('WRONGTYPE Operation against a key holding the wrong kind of value'), { name: 'ReplyError' });
    expect(isStoreUnavailable(reply)).to.equal(false);
  });
});

describe('values a store refuses', () => {
  it('are the client input: too long, NUL, untranslatable', () => {
    for (const code of ['22001', '22021', '22P05']) expect(isStoreRejectedValue(Object.assign(new Error('pg'), { code }))).to.equal(true);
    expect(isStoreRejectedValue(Object.assign(new Error('pg'), { code: '23505' }))).to.equal(false);
  });
});
