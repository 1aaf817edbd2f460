// Reconciliation (issue 14): zero differences after real traffic; a deliberately broken row is reported.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { storeUrls, testActor } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { type Harness, startAccounting } from '../helpers.ts';

describe('accounting reconciliation (real PostgreSQL)', () => {
  let h: Harness;
  const admin = testActor('admin');

  before(async () => {
    h = await startAccounting();
  });
  after(async () => {
    await h.stop();
  });

  const differences = async () => {
    const res = await h.api.as(admin, 'GET', '/api/credits/reconcile');
    expect(res.status).to.equal(200);
    return (await h.api.json<{ differences: Array<{ reservationId?: string; problem: string }> }>(res)).body.differences;
  };

  it('reports no difference after finalized, aborted and short streams, then reports a broken reservation (route and make reconcile)', async () => {
    const user = testActor('enduser');
    expect((await h.api.as(user, 'GET', '/api/credits/balance')).status).to.equal(200);
    expect((await h.api.as(admin, 'POST', '/api/credits/allocate', { userId: user.userId, credits: 40 })).status).to.equal(201);
    const ids: string[] = [];
    for (const [path, outputTokens] of [
      ['finalize', 500],
      ['abort', 100],
      ['finalize', 5000], // more than is left: shortfall recorded
    ] as const) {
      const reservationId = randomUUID();
      ids.push(reservationId);
      const body = { reservationId, sessionId: 's', modelId: 'claude-3-7-sonnet', inputTokens: 100, maxOutputTokens: 500 };
      expect((await h.api.internal('POST', '/internal/streaming-sessions/initialize', body, { token: h.auth.token(user) })).status).to.equal(200);
      expect((await h.api.internal('POST', `/internal/streaming-sessions/${path}`, { reservationId, inputTokens: 100, outputTokens })).status).to.equal(200);
    }
    expect(await differences()).to.deep.equal([]);
    expect((await h.api.as(user, 'GET', '/api/credits/reconcile')).status).to.equal(403);

    const broken = ids[1] as string;
    await h.db('reservations').where({ id: broken }).increment('charged', 1);
    const found = await differences();
    expect(found.map((d) => d.reservationId)).to.include(broken);
    expect(found.find((d) => d.reservationId === broken)?.problem).to.match(/cost|usage row/);

    let output = '';
    let exitCode = 0;
    try {
      execFileSync(process.execPath, ['src/cli/reconcile.ts'], { env: { ...process.env, PG_URL: storeUrls().PG_URL, PG_DB: h.config.PG_DB }, stdio: 'pipe' });
    } catch (error) {
      exitCode = (error as { status: number }).status;
      output = String((error as { stdout: Buffer }).stdout);
    }
    expect(exitCode).to.equal(1);
    expect(output).to.include(broken);
    expect(output).to.match(/[1-9]\d* difference\(s\)/);
  });
});
