import { expectProblem, testActor } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { type ChatService, createSession, fetch, type Platform, startPlatform, streamMessage } from '../support/harness.ts';

const TOKEN_DELAY_MS = 150;

interface Timing {
  sessionId: string;
  streamId: string;
  startedAt: string;
  firstTokenAt: string | null;
  timeToFirstTokenMs: number | null;
}

describe('time to first token of running streams (GET /internal/sessions/timing, for the dashboard)', () => {
  let platform: Platform;
  const instance = (i: number) => platform.instances[i] as ChatService;
  const student = testActor('enduser');

  const timings = async (i: number, sessionIds: string[], caller: 'monitoring' | 'accounting' = 'monitoring') =>
    fetch(`${instance(i).url}/internal/sessions/timing?sessionIds=${sessionIds.join(',')}`, { headers: platform.auth.serviceHeaders(caller, 'chat') });
  const timingOf = async (i: number, sessionId: string): Promise<Timing | undefined> => {
    const answer = await timings(i, [sessionId]);
    expect(answer.status).to.equal(200);
    return ((await answer.json()) as { sessions: Timing[] }).sessions.find((t) => t.sessionId === sessionId);
  };

  before(async () => {
    // the local model waits TOKEN_DELAY_MS before every token, the first one included: a floor for the measure
    platform = await startPlatform({ count: 2, env: { LOCAL_MODEL_TOKENS: '6', LOCAL_MODEL_TOKEN_DELAY_MS: String(TOKEN_DELAY_MS) } });
  });
  after(async () => {
    await platform.stop();
  });

  it('answers the start and the time to first token of a stream, from either instance, and a new stream replaces them', async () => {
    const sessionId = await createSession(platform, student);
    const before = Date.now();
    const first = await streamMessage(platform, student, sessionId, 'time me', 1);
    expect(((await first.waitForEvent('session')).data as { sessionId: string }).sessionId).to.equal(sessionId);
    await first.waitForEvent('delta');
    // read on the instance that does not hold the stream (Redis is the one place both see)
    const during = await timingOf(0, sessionId);
    expect(during, 'a timing for the running stream').to.not.equal(undefined);
    const timing = during as Timing;
    expect(Date.parse(timing.startedAt)).to.be.at.least(before - 5);
    expect(timing.timeToFirstTokenMs, 'at least the model delay before the first token')
      .to.be.a('number')
      .and.at.least(TOKEN_DELAY_MS - 5);
    expect(Date.parse(timing.firstTokenAt as string) - Date.parse(timing.startedAt)).to.equal(timing.timeToFirstTokenMs);
    await first.waitForEnd();

    const second = await streamMessage(platform, student, sessionId, 'again', 0);
    await second.waitForEvent('session');
    const next = await timingOf(1, sessionId);
    expect(next?.streamId, 'the new stream').to.not.equal(timing.streamId);
    // its first token is at least TOKEN_DELAY_MS away: the old stream's measure is not carried over
    expect(next?.timeToFirstTokenMs === null || (next?.timeToFirstTokenMs as number) >= TOKEN_DELAY_MS - 5).to.equal(true);
    await second.waitForEnd();
    const ended = await timingOf(1, sessionId);
    expect(ended?.streamId).to.equal(next?.streamId);
    expect(ended?.timeToFirstTokenMs)
      .to.be.a('number')
      .and.at.least(TOKEN_DELAY_MS - 5);
  });

  it('leaves out sessions without a stream; service-only, monitoring only, at most 200 sessions', async () => {
    const idle = await createSession(platform, student);
    const answer = await timings(0, [idle, 'no-such-session']);
    expect(answer.status).to.equal(200);
    expect(await answer.json()).to.deep.equal({ sessions: [] });
    await expectProblem(await fetch(`${instance(0).url}/internal/sessions/timing?sessionIds=${idle}`), 401, 'UNAUTHENTICATED');
    await expectProblem(
      await fetch(`${instance(0).url}/internal/sessions/timing?sessionIds=${idle}`, { headers: platform.headers(testActor('admin')) }),
      401,
      'UNAUTHENTICATED',
    );
    await expectProblem((await timings(0, [idle], 'accounting')) as unknown as Response, 403, 'FORBIDDEN');
    const many = Array.from({ length: 201 }, (_, i) => `s${i}`);
    await expectProblem((await timings(0, many)) as unknown as Response, 400, 'VALIDATION_FAILED');
  });
});
