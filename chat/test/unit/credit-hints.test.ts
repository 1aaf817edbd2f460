import type { ReservationResponse } from '@platform/shared-types';
import { expect } from 'chai';
import { CreditHints, HeldUpstream } from '../../src/features/stream/speculative-start.ts';
import type { Provider, ProviderEvent } from '../../src/providers/provider.ts';

const answer = (userId: string, availableCredits: number, apiKeyRemainingCredits?: number | null): ReservationResponse => ({
  reservationId: '00000000-0000-4000-8000-000000000000',
  userId,
  status: 'open',
  reservedCredits: 5,
  chargedCredits: 0,
  releasedCredits: 0,
  availableCredits,
  expiresAt: new Date().toISOString(),
  ...(apiKeyRemainingCredits === undefined ? {} : { apiKeyRemainingCredits }),
});

describe('CreditHints: when a provider may start alongside its reservation', () => {
  it('only for a user whose fresh last answer, less the starts still waiting, covers the worst case', () => {
    const hints = new CreditHints({ maxAgeMs: 60_000, maxEntries: 10 });
    expect(hints.claim('u', undefined, 1), 'nothing heard yet').to.equal(undefined);
    hints.learn(undefined, answer('u', 100));
    expect(hints.claim('u', undefined, 101)).to.equal(undefined);
    const first = hints.claim('u', undefined, 60);
    expect(first).to.not.equal(undefined);
    expect(hints.claim('u', undefined, 60), 'the first start may take 60 of the 100').to.equal(undefined);
    const second = hints.claim('u', undefined, 40);
    expect(second).to.not.equal(undefined);
    first?.release();
    first?.release(); // once only
    expect(hints.claim('u', undefined, 61)).to.equal(undefined);
    expect(hints.claim('u', undefined, 60)).to.not.equal(undefined);
  });

  it('an answer learnt while a start waits keeps what that start claimed', () => {
    const hints = new CreditHints({ maxAgeMs: 60_000, maxEntries: 10 });
    hints.learn(undefined, answer('u', 100));
    const waiting = hints.claim('u', undefined, 80);
    hints.learn(undefined, answer('u', 100));
    expect(hints.claim('u', undefined, 30)).to.equal(undefined);
    waiting?.release();
    expect(hints.claim('u', undefined, 30)).to.not.equal(undefined);
  });

  it('through an API key also the key: reported remaining covers the worst case, or null (no limit); unreported: never', () => {
    const hints = new CreditHints({ maxAgeMs: 60_000, maxEntries: 10 });
    hints.learn('k-unreported', answer('u', 1_000));
    expect(hints.claim('u', 'k-unreported', 1)).to.equal(undefined);
    hints.learn('k-limited', answer('u', 1_000, 10));
    expect(hints.claim('u', 'k-limited', 11)).to.equal(undefined);
    expect(hints.claim('u', 'k-limited', 10)).to.not.equal(undefined);
    expect(hints.claim('u', 'k-limited', 1), 'the key is claimed up to its remaining').to.equal(undefined);
    hints.learn('k-unlimited', answer('u', 1_000, null));
    expect(hints.claim('u', 'k-unlimited', 900)).to.not.equal(undefined);
    expect(hints.claim('u', undefined, 1)).to.not.equal(undefined);
  });

  it('forgets a user (and key) on a refusal, ages answers out, keeps a bounded number and is off at maxAgeMs 0', () => {
    const hints = new CreditHints({ maxAgeMs: 60_000, maxEntries: 2 });
    hints.learn('k', answer('u', 100, null));
    hints.forget('u', 'k');
    expect(hints.claim('u', undefined, 1)).to.equal(undefined);
    hints.learn('k', answer('u', 100, null));
    expect(hints.claim('u', 'k', 1)).to.not.equal(undefined);
    hints.learn(undefined, answer('v', 100));
    hints.learn(undefined, answer('w', 100));
    expect(hints.claim('u', undefined, 1), 'the least recently answered user is dropped').to.equal(undefined);
    expect(hints.claim('w', undefined, 1)).to.not.equal(undefined);
    let now = 1_000;
    const aging = new CreditHints({ maxAgeMs: 20, maxEntries: 2, now: () => now });
    aging.learn(undefined, answer('u', 100));
    now += 20;
    const fresh = aging.claim('u', undefined, 1);
    expect(fresh, 'still fresh at its age limit').to.not.equal(undefined);
    fresh?.release();
    now += 1;
    expect(aging.claim('u', undefined, 1)).to.equal(undefined);
    const off = new CreditHints({ maxAgeMs: 0, maxEntries: 2 });
    off.learn(undefined, answer('u', 100));
    expect(off.claim('u', undefined, 1)).to.equal(undefined);
  });
});

describe('HeldUpstream: a provider call started before its reservation', () => {
  /** a provider that records how far it got and whether its cleanup ran */
  function recorder() {
    const seen = { started: 0, pulled: 0, cleanedUp: false, signal: undefined as AbortSignal | undefined };
    const provider: Provider = {
      async *stream(request): AsyncIterable<ProviderEvent> {
        seen.started++;
        seen.signal = request.signal;
        try {
          for (let i = 0; i < 3; i++) {
            seen.pulled++;
            yield { type: 'delta', text: `t${i}` };
          }
          yield { type: 'end', stopReason: 'end_turn' };
        } finally {
          seen.cleanedUp = true;
        }
      },
    };
    return { seen, provider };
  }
  const request = { model: {} as never, turns: [], maxOutputTokens: 3, sessionId: 's' };

  it('starts at once, stops at its first event until read, then yields every event in order', async () => {
    const { seen, provider } = recorder();
    const held = new HeldUpstream(provider, request);
    expect(seen.started).to.equal(1);
    await new Promise((resolve) => setImmediate(resolve));
    expect(seen.pulled, 'held at the first event').to.equal(1);
    const events: ProviderEvent[] = [];
    for await (const event of held.events(new AbortController().signal)) events.push(event);
    expect(events.map((e) => (e.type === 'delta' ? e.text : e.type))).to.deep.equal(['t0', 't1', 't2', 'end']);
  });

  it('abort before it is read closes the upstream (its signal) and runs its cleanup; a stopped live stream aborts it too', async () => {
    const refused = recorder();
    const held = new HeldUpstream(refused.provider, request);
    held.abort();
    expect(refused.seen.signal?.aborted).to.equal(true);
    for (let i = 0; i < 10 && !refused.seen.cleanedUp; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(refused.seen.cleanedUp).to.equal(true);
    expect(refused.seen.pulled).to.equal(1);
    const stopped = recorder();
    const live = new AbortController();
    const reading = new HeldUpstream(stopped.provider, request);
    for await (const _ of reading.events(live.signal)) live.abort();
    expect(stopped.seen.signal?.aborted).to.equal(true);
  });
});
