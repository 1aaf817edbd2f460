// The admin PATCH while Redis cannot take writes: a role change or a disable takes a per-user lock and revokes the
// user's tokens in Redis (the gateway reads only Redis, DESIGN 5), so when Redis refuses writes (out of memory)
// or is gone, the change must not happen: 503, the user as before, and the same change applies once Redis is back.
import { revocationKeys } from '@platform/shared-types';
import { expectProblem, PrivateRedis } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { createUserFromCli } from '../../src/cli/create-user.ts';
import { startTestService, type TestService } from '../helpers.ts';

describe('auth: the admin PATCH while Redis cannot take writes (real stores, a private Redis)', () => {
  const redis = new PrivateRedis();
  let t: TestService;
  let control: Redis;
  let adminToken: string;

  before(async function () {
    this.timeout(30_000);
    await redis.start();
    control = new Redis(redis.url);
    control.on('error', () => undefined); // while the test has it stopped
    await control.config('SET', 'maxmemory-policy', 'noeviction');
    t = await startTestService({ REDIS_URL: redis.url });
    const env = Object.fromEntries(Object.entries(t.config).map(([name, value]) => [name, String(value)]));
    const identity = t.newIdentity('admin');
    await createUserFromCli(['--email', identity.email, '--username', identity.username, '--password', identity.password, '--role', 'admin'], env);
    adminToken = (await t.login(identity)).accessToken;
  });
  after(async () => {
    control?.disconnect();
    await redis.start();
    await t?.stop();
    await redis.destroy();
  });

  const roleOf = async (id: string) => {
    const got = await t.call('GET', `/api/admin/users/${id}`, { headers: t.asUser(adminToken) });
    expect(got.status).to.equal(200);
    return ((await got.json()) as { user: { role: string; status: string } }).user;
  };

  it('answers 503 and changes nothing while Redis refuses writes or is stopped; afterwards the change applies and revokes', async function () {
    this.timeout(30_000);
    const user = await t.signupVerified();
    const session = await t.login(user);
    const patch = (body: Record<string, string>) => t.call('PATCH', `/api/admin/users/${user.id}`, { headers: t.asUser(adminToken), body });

    await control.config('SET', 'maxmemory', '1'); // reads answer, every write is refused
    await expectProblem(await patch({ role: 'supervisor' }), 503, 'UPSTREAM_UNAVAILABLE');
    await expectProblem(await patch({ status: 'disabled' }), 503, 'UPSTREAM_UNAVAILABLE');
    await control.config('SET', 'maxmemory', '0');
    expect(await roleOf(user.id)).to.include({ role: 'enduser', status: 'active' });

    await redis.stop();
    await expectProblem(await patch({ role: 'supervisor' }), 503, 'UPSTREAM_UNAVAILABLE');
    await redis.start();
    expect(await roleOf(user.id)).to.include({ role: 'enduser', status: 'active' });
    expect(await t.gatewayRefuses(session.accessToken)).to.equal(false);

    const applied = await patch({ role: 'supervisor' });
    expect(applied.status).to.equal(200);
    expect(await roleOf(user.id)).to.include({ role: 'supervisor' });
    expect(await t.gatewayRefuses(session.accessToken)).to.equal(true);
    expect(await t.redis.get(revocationKeys.before(user.id))).to.not.equal(null);
  });
});
