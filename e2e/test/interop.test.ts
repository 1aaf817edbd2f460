// Token interop: Python (PyJWT) and Go (golang-jwt) services sharing the secret verify our tokens, and a
// token PyJWT mints with the shared secret verifies with ours. The through-the-gateway half lives in the
// platform scenario suite.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { createKeyring, kidOf, signAccessToken, signRefreshToken, verifyAccessToken } from '@platform/shared-types';
import { testSecrets } from '@platform/shared-types/testing';
import { expect } from 'chai';

const root = new URL('../..', import.meta.url).pathname;
const python = join(root, '.tools', 'py-interop', 'bin', 'python');
const pyScript = join(root, 'e2e', 'interop', 'python', 'jwt_interop.py');
const goVerifier = join(root, '.tools', 'jwtinterop');

function run(cmd: string, args: string[]): { ok: boolean; out: string } {
  try {
    return { ok: true, out: execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim() };
  } catch (error) {
    return { ok: false, out: String((error as { stderr?: string }).stderr ?? error) };
  }
}

describe('token interop (PyJWT, golang-jwt)', () => {
  const secrets = testSecrets();
  const access = createKeyring(secrets.JWT_ACCESS_SECRET);
  const identity = { sub: '65f0c0ffee0000000000beef', username: 'interop', email: 'interop@example.test', role: 'supervisor' as const };

  before(function () {
    this.timeout(300_000);
    execFileSync('bash', [join(root, 'e2e', 'interop', 'setup.sh')], { stdio: 'inherit' });
  });

  it('computes the same kid in Python', () => {
    expect(run(python, [pyScript, 'kid', secrets.JWT_ACCESS_SECRET, '-']).out).to.equal(kidOf(secrets.JWT_ACCESS_SECRET));
  });

  it('our access tokens verify with PyJWT and golang-jwt, with the same claims', () => {
    const token = signAccessToken(access, identity);
    const py = run(python, [pyScript, 'verify', secrets.JWT_ACCESS_SECRET, token]);
    expect(py.ok, py.out).to.equal(true);
    expect(JSON.parse(py.out)).to.include({ sub: identity.sub, role: 'supervisor', type: 'access' });
    const go = run(goVerifier, [secrets.JWT_ACCESS_SECRET, token]);
    expect(go.ok, go.out).to.equal(true);
    expect(JSON.parse(go.out)).to.include({ sub: identity.sub, username: 'interop', type: 'access' });
  });

  it('both refuse a refresh token, another secret, and a tampered token', () => {
    const refresh = signRefreshToken(access, identity, { fam: 'f' });
    const other = signAccessToken(createKeyring(testSecrets().JWT_ACCESS_SECRET), identity);
    const good = signAccessToken(access, identity);
    const tampered = `${good.slice(0, -3)}${good.endsWith('AAA') ? 'BBB' : 'AAA'}`;
    for (const token of [refresh, other, tampered]) {
      expect(run(python, [pyScript, 'verify', secrets.JWT_ACCESS_SECRET, token]).ok).to.equal(false);
      expect(run(goVerifier, [secrets.JWT_ACCESS_SECRET, token]).ok).to.equal(false);
    }
  });

  it('a token minted by PyJWT with the shared secret verifies with ours', () => {
    const minted = run(python, [pyScript, 'mint', secrets.JWT_ACCESS_SECRET, JSON.stringify({ ...identity, jti: 'py-1' })]);
    expect(minted.ok, minted.out).to.equal(true);
    expect(verifyAccessToken(access, minted.out)).to.include({ sub: identity.sub, jti: 'py-1', role: 'supervisor' });
  });
});
