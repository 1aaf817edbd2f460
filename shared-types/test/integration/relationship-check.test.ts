import { Writable } from 'node:stream';
import { expect } from 'chai';
import { z } from 'zod';
import { ApiError } from '../../src/errors.ts';
import { ApiRouter, type RunningServer } from '../../src/express/index.ts';
import { createLogger } from '../../src/logger.ts';
import { monitoringSupervisorCheck } from '../../src/relationship-check.ts';
import { ServiceClient } from '../../src/service-client.ts';
import { createTestAuth, testActor } from '../../src/testing/index.ts';
import { listenServiceApp } from '../support/service-app.ts';

/** A real monitoring-named service app whose relationship check answers what the test sets. */
describe('relationship check client and ServiceClient response schemas', () => {
  const auth = createTestAuth();
  let answer: unknown = { supervises: true };
  const seen: Array<{ query: unknown; actor?: string }> = [];
  const logLines: string[] = [];
  let server: RunningServer;
  let client: ServiceClient;

  before(async () => {
    const router = new ApiRouter().route(
      {
        method: 'get',
        path: '/internal/relationships/check',
        summary: 'check',
        access: 'service',
        query: z.object({ supervisorId: z.string(), studentId: z.string() }),
      },
      ({ query, actor }) => {
        seen.push({ query, actor: actor?.userId });
        return answer as object;
      },
    );
    server = await listenServiceApp('monitoring', auth, [router]);
    const sink = new Writable({
      write(chunk, _encoding, done) {
        logLines.push(String(chunk));
        done();
      },
    });
    client = new ServiceClient({
      caller: 'chat',
      internalKeyring: auth.internalKeyring,
      baseUrls: { monitoring: server.url },
      logger: createLogger('test', { level: 'warn', destination: sink }),
    });
  });
  after(async () => {
    await client.close();
    await server.close();
  });

  it("answers monitoring's yes and no, asked on the user's behalf", async () => {
    const check = monitoringSupervisorCheck(client);
    const supervisor = testActor('supervisor');
    answer = { supervises: true, relationshipId: 'r1', since: '2026-01-01T00:00:00.000Z' };
    expect(await check(supervisor.userId, 'student-1', auth.token(supervisor))).to.equal(true);
    expect(seen.at(-1)).to.deep.equal({ query: { supervisorId: supervisor.userId, studentId: 'student-1' }, actor: supervisor.userId });
    answer = { supervises: false };
    expect(await check(supervisor.userId, 'student-2')).to.equal(false);
  });

  it('never trusts an answer outside the schema: UPSTREAM_UNAVAILABLE 502, logged without its values', async () => {
    const check = monitoringSupervisorCheck(client);
    for (const bad of [{ supervises: 'true' }, { supervises: 1 }, {}, { yes: true }, { supervises: true, since: 42 }]) {
      answer = bad;
      logLines.length = 0;
      const error = await check('sup', 'stu').catch((e: unknown) => e);
      expect(error, JSON.stringify(bad)).to.be.instanceOf(ApiError);
      expect((error as ApiError).code).to.equal('UPSTREAM_UNAVAILABLE');
      expect((error as ApiError).status).to.equal(502);
      const logged = logLines.join('');
      expect(logged).to.include('answered outside its contract');
      expect(logged).to.include('/internal/relationships/check');
    }
  });

  it('call() without a schema returns the body as it came; with one, the parsed value', async () => {
    answer = { supervises: 'maybe' };
    const raw = await client.call('monitoring', '/internal/relationships/check', { query: { supervisorId: 'a', studentId: 'b' } });
    expect(raw.body).to.deep.equal({ supervises: 'maybe' });
    answer = { supervises: true, extra: 'dropped' };
    const parsed = await client.call('monitoring', '/internal/relationships/check', {
      query: { supervisorId: 'a', studentId: 'b' },
      schema: z.object({ supervises: z.boolean() }),
    });
    expect(parsed.body).to.deep.equal({ supervises: true });
  });
});
