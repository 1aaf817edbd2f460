// Reconciliation (issue 14): chat's stored replies, reservations, usage and the ledger agree after real traffic;
// every mismatch staged on purpose is reported with the row it is about (route and `make reconcile`).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import type { StoredReply } from '@platform/shared-types';
import { storeUrls, testActor } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { accountingPerSuite, fundedUser, type Harness, meteredStream, startAccounting } from '../helpers.ts';

const objectId = () => randomBytes(12).toString('hex');

interface Found {
  kind: string;
  userId: string;
  reservationId?: string;
  messageId?: string;
  problem: string;
}

describe('accounting reconciliation (real PostgreSQL, chat over HTTP)', () => {
  const harness = accountingPerSuite();
  const admin = testActor('admin');
  let h: Harness;
  before(() => {
    h = harness();
  });
  beforeEach(() => {
    h.chatStub.replies.length = 0;
  });

  const differences = async (): Promise<Found[]> => {
    const res = await h.api.as(admin, 'GET', '/api/credits/reconcile');
    expect(res.status, await res.clone().text()).to.equal(200);
    return (await h.api.json<{ differences: Found[] }>(res)).body.differences;
  };
  /** what chat stores for a settled stream: the reply with its reservation id, status, usage and the credits accounting answered */
  const storeReply = (user: { userId: string }, reservationId: string, reply: Partial<StoredReply> & Pick<StoredReply, 'status' | 'usage'>): StoredReply => {
    const stored: StoredReply = {
      messageId: objectId(),
      reservationId,
      userId: user.userId,
      sessionId: objectId(),
      modelId: 'claude-3-7-sonnet',
      createdAt: new Date().toISOString(),
      ...reply,
    };
    h.chatStub.replies.push(stored);
    return stored;
  };
  // not execFileSync: the chat stand-in lives in this process and must answer the CLI meanwhile
  const cli = async () => {
    const env = { ...process.env, PG_URL: storeUrls().PG_URL, PG_DB: h.config.PG_DB, CHAT_URL: h.config.CHAT_URL, INTERNAL_SECRET: h.config.INTERNAL_SECRET };
    try {
      return { exitCode: 0, output: (await promisify(execFile)(process.execPath, ['src/cli/reconcile.ts'], { env })).stdout };
    } catch (error) {
      return { exitCode: (error as { code: number }).code, output: `${(error as { stdout: string }).stdout}${(error as { stderr: string }).stderr}` };
    }
  };

  it('reports no difference after finalized, aborted and short streams with their replies, then reports a broken reservation (route and make reconcile)', async () => {
    const user = await fundedUser(h, 40);
    const ids: string[] = [];
    for (const [settle, outputTokens] of [
      ['finalize', 500],
      ['abort', 100],
      ['finalize', 5000], // more than is left: shortfall recorded
    ] as const) {
      const { reservationId, settled } = await meteredStream(h, user, { modelId: 'claude-3-7-sonnet', settle, outputTokens });
      ids.push(reservationId);
      const status = settle === 'finalize' ? 'complete' : 'interrupted';
      storeReply(user, reservationId, { status, usage: { inputTokens: 100, outputTokens }, credits: settled.chargedCredits });
    }
    expect(await differences()).to.deep.equal([]);
    // chat was asked with a service token, page by page (the stand-in pages by 2)
    expect(h.chatStub.calls.length).to.be.greaterThan(1);
    expect(h.chatStub.calls.every((call) => call.caller === 'accounting')).to.equal(true);
    const clean = await cli();
    expect(clean.exitCode, clean.output).to.equal(0);
    expect((await h.api.as(user, 'GET', '/api/credits/reconcile')).status).to.equal(403);

    const broken = ids[1] as string;
    await h.db('reservations').where({ id: broken }).increment('charged', 1);
    const found = await differences();
    expect(found.map((d) => d.reservationId)).to.include(broken);
    expect(found.find((d) => d.reservationId === broken && d.kind === 'reservation')?.problem).to.match(/cost|usage row/);
    // the reply's credits no longer match the charge either
    expect(found.find((d) => d.reservationId === broken && d.kind === 'reply')?.problem).to.match(/accounting charged/);

    const { exitCode, output } = await cli();
    expect(exitCode).to.equal(1);
    expect(output).to.include(broken);
    expect(output).to.match(/[1-9]\d* difference\(s\)/);
  });

  it("reports each mismatch between chat's replies and accounting's charges, and nothing about the rows that agree", async () => {
    const user = await fundedUser(h, 10_000);
    const stream = (settle: 'finalize' | 'abort' = 'finalize') => meteredStream(h, user, { modelId: 'claude-3-7-sonnet', settle, outputTokens: 200 });
    const usage = { inputTokens: 100, outputTokens: 200 };

    const agreeing = await stream();
    storeReply(user, agreeing.reservationId, { status: 'complete', usage, credits: agreeing.settled.chargedCredits });
    // chat died mid-stream: its checkpoint was charged as an abort, and no reply was stored (allowed)
    await stream('abort');
    const noReply = await stream();
    const orphan = storeReply(user, '6b7f6c0e-8d5e-4a59-9d1e-3f0f6a1b2c3d', { status: 'complete', usage, credits: 4 });
    const otherUsage = await stream();
    storeReply(user, otherUsage.reservationId, {
      status: 'complete',
      usage: { inputTokens: 100, outputTokens: 150 },
      credits: otherUsage.settled.chargedCredits,
    });
    const otherCredits = await stream();
    storeReply(user, otherCredits.reservationId, { status: 'complete', usage, credits: otherCredits.settled.chargedCredits + 1 });
    const otherStatus = await stream('abort');
    storeReply(user, otherStatus.reservationId, { status: 'complete', usage, credits: otherStatus.settled.chargedCredits });
    const stillPending = await stream();
    storeReply(user, stillPending.reservationId, { status: 'complete', usage, chargePending: true });
    const twice = await stream();
    for (let i = 0; i < 2; i++) storeReply(user, twice.reservationId, { status: 'complete', usage, credits: twice.settled.chargedCredits });

    // the first test's reservations lost their replies with beforeEach: only this user's rows count here
    const found = (await differences()).filter((d) => d.userId === user.userId);
    const about = (reservationId: string) => found.filter((d) => d.kind === 'reply' && d.reservationId === reservationId).map((d) => d.problem);
    expect(about(noReply.reservationId)).to.deep.equal([`charged ${noReply.settled.chargedCredits} as a finished reply, but chat stored no reply`]);
    expect(about(orphan.reservationId)).to.deep.equal(['stored reply has no reservation']);
    expect(found.find((d) => d.reservationId === orphan.reservationId)?.messageId).to.equal(orphan.messageId);
    expect(about(otherUsage.reservationId)).to.deep.equal(['reply usage 100/150 tokens, charged usage 100/200']);
    expect(about(otherCredits.reservationId)).to.deep.equal([
      `reply shows ${otherCredits.settled.chargedCredits + 1} credits, accounting charged ${otherCredits.settled.chargedCredits}`,
    ]);
    expect(about(otherStatus.reservationId)).to.deep.equal(['reply is complete but its reservation was aborted']);
    expect(about(stillPending.reservationId)).to.deep.equal([
      `chat still shows the charge as pending; accounting charged ${stillPending.settled.chargedCredits}`,
    ]);
    expect(about(twice.reservationId)).to.deep.equal(['2 stored replies for one reservation']);
    // exactly those seven, nothing about the agreeing reply or the reply-less abort, and the ledger is whole
    expect(found).to.have.length(7);
    expect(found.every((d) => d.kind === 'reply')).to.equal(true);
  });

  it('answers 503 when chat cannot be asked, rather than a reconciliation that skipped the replies', async () => {
    const down = await startAccounting({ CHAT_URL: 'http://127.0.0.1:9' });
    try {
      const res = await down.api.as(admin, 'GET', '/api/credits/reconcile');
      expect(res.status).to.equal(503);
      expect(((await res.json()) as { code: string }).code).to.equal('UPSTREAM_UNAVAILABLE');
    } finally {
      await down.stop();
    }
  });
});
