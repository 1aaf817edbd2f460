// A stream longer than the reservation TTL keeps its reservation alive through POST /internal/streaming-sessions/renew
// (issue 14): the stand-in sweeps every reservation nobody renewed within its TTL, as accounting's sweeper does.
import { testActor } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { createSession, fetch, type Platform, type SseEvent, startPlatform, streamMessage } from '../support/harness.ts';

const TTL_SECONDS = 1;

describe('reservation renewals of a long stream (real stores, accounting stand-in over HTTP)', () => {
  let platform: Platform;

  before(async () => {
    // 100 tokens x 35 ms: a stream of about 3.5 s, over three TTLs; chat renews at a quarter of the TTL it is answered
    platform = await startPlatform({ env: { LOCAL_MODEL_TOKENS: '100', LOCAL_MODEL_TOKEN_DELAY_MS: '35' } });
    platform.accounting.ttlSeconds = TTL_SECONDS;
  });
  after(async () => {
    await platform.stop();
  });

  it('renews while it runs, is never swept, and is charged its full usage exactly once', async () => {
    const user = testActor('enduser');
    const sessionId = await createSession(platform, user);
    const startedAt = Date.now();
    const stream = await streamMessage(platform, user, sessionId, 'a long story please');
    await stream.waitForEnd(30_000);
    const lasted = Date.now() - startedAt;
    expect(stream.terminal()?.event).to.equal('done');
    expect(lasted, 'the stream outlived three TTLs').to.be.greaterThan(3 * TTL_SECONDS * 1_000);

    const { reservationId } = (stream.events[0] as SseEvent).data as { reservationId: string };
    const reservation = platform.accounting.reservations.get(reservationId);
    expect(reservation?.expiredAt, 'a renewed reservation is never swept').to.equal(undefined);
    const renewals = platform.accounting.calls.filter((c) => c.path === '/internal/streaming-sessions/renew' && c.body.reservationId === reservationId);
    expect(renewals.every((c) => c.status === 200)).to.equal(true);
    // at least one renewal per TTL the stream lived
    expect(reservation?.renewals).to.be.at.least(Math.floor(lasted / (TTL_SECONDS * 1_000)));
    const charges = platform.accounting.chargesOf(reservationId);
    expect(charges.map((c) => [c.path, c.body.outputTokens])).to.deep.equal([['/internal/streaming-sessions/finalize', 100]]);
    expect(reservation).to.include({ status: 'finalized', shortfall: 0 });
    const done = stream.terminal()?.data as { credits: number };
    expect(done.credits).to.equal(reservation?.charged).and.to.be.greaterThan(0);
    const { messages } = (await (await fetch(`${platform.instances[0]?.url}/api/chat/sessions/${sessionId}`, { headers: platform.headers(user) })).json()) as {
      messages: Array<{ role: string; credits?: number }>;
    };
    expect(messages.find((m) => m.role === 'assistant')?.credits).to.equal(done.credits);
  });
});
