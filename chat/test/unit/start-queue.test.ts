import { ApiError } from '@platform/shared-types';
import { expect } from 'chai';
import { StartQueue } from '../../src/features/stream/start-queue.ts';
import { settled } from '../support/settled.ts';

describe('StartQueue: a bounded number of stream starts at once, the rest in order', () => {
  it('lets `concurrency` in at once and the next one in when one ends, in the order they came', async () => {
    const queue = new StartQueue({ concurrency: 2, maxWaiting: 10 });
    const a = await queue.enter();
    const b = await queue.enter();
    const order: string[] = [];
    const c = queue.enter().then((end) => (order.push('c'), end));
    const d = queue.enter().then((end) => (order.push('d'), end));
    expect([queue.running, queue.waiting]).to.deep.equal([2, 2]);
    expect(await settled(c)).to.equal(false);
    a();
    a(); // a second call of the same end changes nothing
    const endC = await c;
    expect(await settled(d)).to.equal(false);
    expect([queue.running, queue.waiting]).to.deep.equal([2, 1]);
    b();
    const endD = await d;
    expect(order).to.deep.equal(['c', 'd']);
    endC();
    endD();
    expect([queue.running, queue.waiting]).to.deep.equal([0, 0]);
  });

  it('hands an ending place to the one that waited (none that comes later takes it in between)', async () => {
    const queue = new StartQueue({ concurrency: 1, maxWaiting: 10 });
    const first = await queue.enter();
    const waited = queue.enter();
    first();
    const late = queue.enter(); // comes after the place was handed over, before the waiter resumed
    expect(queue.running).to.equal(1);
    const endWaited = await waited;
    expect(await settled(late)).to.equal(false);
    endWaited();
    (await late)();
    expect(queue.running).to.equal(0);
  });

  it('a wait whose signal aborts leaves the line (rejected, no place taken), and the next in line moves up', async () => {
    const queue = new StartQueue({ concurrency: 1, maxWaiting: 10 });
    const first = await queue.enter();
    const leaving = new AbortController();
    const left = queue.enter(leaving.signal);
    const stays = queue.enter();
    leaving.abort();
    const error = await left.catch((e: unknown) => e);
    expect(error).to.be.instanceOf(ApiError);
    expect(queue.waiting).to.equal(1);
    first();
    (await stays)();
    expect([queue.running, queue.waiting]).to.deep.equal([0, 0]);
    // an already aborted signal never waits
    const busy = await queue.enter();
    expect(await queue.enter(AbortSignal.abort()).catch((e: unknown) => e)).to.be.instanceOf(ApiError);
    busy();
  });

  it('refuses at once (503 with Retry-After) when maxWaiting streams wait', async () => {
    const queue = new StartQueue({ concurrency: 1, maxWaiting: 1 });
    const first = await queue.enter();
    const waiting = queue.enter();
    const error = (await queue.enter().catch((e: unknown) => e)) as ApiError;
    expect(error).to.be.instanceOf(ApiError);
    expect([error.code, error.status, error.headers?.['retry-after']]).to.deep.equal(['UPSTREAM_UNAVAILABLE', 503, '1']);
    expect(queue.waiting).to.equal(1);
    first();
    (await waiting)();
  });

  it('concurrency 0: no bound', async () => {
    const queue = new StartQueue({ concurrency: 0, maxWaiting: 0 });
    const ends = await Promise.all(Array.from({ length: 100 }, () => queue.enter()));
    expect([queue.running, queue.waiting]).to.deep.equal([100, 0]);
    for (const end of ends) end();
    expect(queue.running).to.equal(0);
  });
});
