// Token interop through the running platform: tokens that auth issues verify in PyJWT and golang-jwt, and a
// token PyJWT mints with the shared secret passes the gateway as the user it names.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { expect } from 'chai';
import { ROOT } from '../../scripts/platform.ts';
import { api, createUser, type Session } from '../support/client.ts';
import { type Platform, startPlatform } from '../support/platform.ts';

const python = join(ROOT, '.tools', 'py-interop', 'bin', 'python');
const pyScript = join(ROOT, 'e2e', 'interop', 'python', 'jwt_interop.py');
const goVerifier = join(ROOT, '.tools', 'jwtinterop');

describe('token interop through the gateway', () => {
  let platform: Platform;
  let user: Session;

  before(async function () {
    this.timeout(300_000);
    execFileSync('bash', [join(ROOT, 'e2e', 'interop', 'setup.sh')], { stdio: 'inherit' });
    platform = await startPlatform();
    user = await createUser(platform, 'supervisor', 'interop');
  });
  after(async () => {
    await platform?.stop();
  });

  it('access tokens issued by auth verify with PyJWT and golang-jwt', () => {
    const secret = platform.secrets.JWT_ACCESS_SECRET;
    const py = JSON.parse(execFileSync(python, [pyScript, 'verify', secret, user.accessToken], { encoding: 'utf8' })) as Record<string, unknown>;
    expect(py).to.include({ sub: user.userId, username: user.username, role: 'supervisor', type: 'access' });
    const go = JSON.parse(execFileSync(goVerifier, [secret, user.accessToken], { encoding: 'utf8' })) as Record<string, unknown>;
    expect(go).to.include({ sub: user.userId, email: user.email, type: 'access' });
  });

  it('a token minted by PyJWT with the shared secret passes the gateway', async () => {
    const claims = { sub: user.userId, username: user.username, email: user.email, role: 'supervisor', jti: `py-${Date.now()}` };
    const minted = execFileSync(python, [pyScript, 'mint', platform.secrets.JWT_ACCESS_SECRET, JSON.stringify(claims)], { encoding: 'utf8' }).trim();
    const me = await api<{ user: { id: string; role: string } }>(platform.gatewayUrl, 'GET', '/api/auth/me', { token: minted });
    expect(me.status, JSON.stringify(me.body)).to.equal(200);
    expect(me.body.user).to.include({ id: user.userId, role: 'supervisor' });
    const forged = execFileSync(python, [pyScript, 'mint', 'x'.repeat(64), JSON.stringify(claims)], { encoding: 'utf8' }).trim();
    expect((await api(platform.gatewayUrl, 'GET', '/api/auth/me', { token: forged })).status).to.equal(401);
  });
});
