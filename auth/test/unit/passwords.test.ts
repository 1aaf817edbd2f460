import bcrypt from 'bcryptjs';
import { expect } from 'chai';
import { BcryptPool } from '../../src/lib/bcrypt-pool.ts';
import { assertPasswordAllowed, BCRYPT_MAX_BYTES, bcryptInput, COMMON_PASSWORDS, createPasswordHasher, newPasswordSchema } from '../../src/lib/passwords.ts';

describe('passwords', () => {
  let pool: BcryptPool;
  before(() => {
    pool = new BcryptPool(1);
  });
  after(async () => {
    await pool.close();
  });

  it('shows why: plain bcrypt ignores everything past 72 bytes', () => {
    const prefix = 'a'.repeat(BCRYPT_MAX_BYTES);
    expect(bcrypt.compareSync(`${prefix}tail-two`, bcrypt.hashSync(`${prefix}tail-one`, 4))).to.equal(true);
  });

  it('feeds bcrypt a 44-byte digest, so bytes past 72 still count', async () => {
    expect(Buffer.byteLength(bcryptInput('x'.repeat(128)))).to.equal(44);
    expect(Buffer.byteLength(bcryptInput('😀'.repeat(128)))).to.equal(44);
    const hasher = await createPasswordHasher(pool, 4);
    const exactly72 = 'b'.repeat(72);
    const hash72 = await hasher.hash(exactly72);
    expect(await hasher.verify(exactly72, hash72)).to.equal(true);
    expect(await hasher.verify(`${exactly72}c`, hash72)).to.equal(false); // 73 bytes
    expect(await hasher.verify(exactly72.slice(1), hash72)).to.equal(false); // 71 bytes
    const multiByte = '€'.repeat(24); // 72 bytes in 24 characters
    const hashMulti = await hasher.hash(`${multiByte}-one`);
    expect(await hasher.verify(`${multiByte}-one`, hashMulti)).to.equal(true);
    expect(await hasher.verify(`${multiByte}-two`, hashMulti)).to.equal(false);
  });

  it('treats NFC and NFD spellings of one password alike', async () => {
    const hasher = await createPasswordHasher(pool, 4);
    const hash = await hasher.hash('café-au-lait-123'.normalize('NFC'));
    expect(await hasher.verify('café-au-lait-123'.normalize('NFD'), hash)).to.equal(true);
  });

  it('bounds length in characters: 10 to 128', () => {
    expect(newPasswordSchema.safeParse('123456789').success).to.equal(false);
    expect(newPasswordSchema.safeParse('abcdefghij').success).to.equal(true);
    expect(newPasswordSchema.safeParse('😀'.repeat(128)).success).to.equal(true);
    expect(newPasswordSchema.safeParse('😀'.repeat(129)).success).to.equal(false);
  });

  it('refuses the username, the email and common passwords (case-insensitive)', () => {
    const account = { username: 'someone.long', email: 'someone.long@example.test' };
    expect(COMMON_PASSWORDS.size).to.be.greaterThan(300);
    expect(() => assertPasswordAllowed('SOMEONE.LONG', account)).to.throw('Password not allowed');
    expect(() => assertPasswordAllowed('Someone.Long@Example.test', account)).to.throw('Password not allowed');
    expect(() => assertPasswordAllowed('QwertyUiop123', account)).to.throw('Password not allowed');
    expect(() => assertPasswordAllowed('a fine and long passphrase', account)).to.not.throw();
  });

  it('hashes off the main thread: the event loop keeps turning during a cost-12 hash', async () => {
    let ticks = 0;
    const timer = setInterval(() => {
      ticks += 1;
    }, 5);
    const started = Date.now();
    await pool.hash('x'.repeat(20), 12);
    clearInterval(timer);
    const elapsed = Date.now() - started;
    // a good share of the possible 5 ms ticks happened while the worker hashed (a blocked loop gives none)
    expect(ticks).to.be.greaterThan(Math.floor(elapsed / 5 / 4));
  });
});
