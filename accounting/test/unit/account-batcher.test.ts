import { expect } from 'chai';
import { AccountBatcher, type Outcome } from '../../src/account-queue.ts';

/** A batch runner the test releases by hand, recording the batches it was given. */
function manualRunner() {
  const batches: string[][] = [];
  const releases: Array<() => void> = [];
  const run = (calls: string[]): Promise<Outcome<string>[]> => {
    batches.push(calls);
    return new Promise((resolve) => {
      releases.push(() => resolve(calls.map((call) => (call.startsWith('bad') ? { ok: false, error: new Error(call) } : { ok: true, value: `done ${call}` }))));
    });
  };
  return { batches, releases, run };
}

const settled = <T>(promises: Promise<T>[]) => Promise.allSettled(promises);

describe('accounting AccountBatcher', () => {
  it('runs the first call alone and sends calls that arrive meanwhile together as the next batch, in order', async () => {
    const runner = manualRunner();
    const batcher = new AccountBatcher(runner.run, { maxInFlight: 1 });
    const first = batcher.submit('a', 'one');
    const rest = ['two', 'three', 'four'].map((call) => batcher.submit('a', call));
    expect(runner.batches).to.deep.equal([['one']]);
    runner.releases[0]?.();
    expect(await first).to.equal('done one');
    expect(runner.batches).to.deep.equal([['one'], ['two', 'three', 'four']]);
    runner.releases[1]?.();
    expect(await Promise.all(rest)).to.deep.equal(['done two', 'done three', 'done four']);
    expect(batcher.size).to.equal(0);
  });

  it('keeps accounts apart, answers each call with its own outcome and caps the batch size', async () => {
    const runner = manualRunner();
    const batcher = new AccountBatcher(runner.run, { maxBatch: 2, maxInFlight: 1 });
    const a1 = batcher.submit('a', 'a1');
    const b1 = batcher.submit('b', 'b1');
    expect(runner.batches).to.deep.equal([['a1'], ['b1']]); // another account does not wait
    const more = ['a2', 'bad-a3', 'a4'].map((call) => batcher.submit('a', call));
    const moreOutcomes = settled(more); // handled from the start
    expect(batcher.size).to.equal(2);
    runner.releases[0]?.();
    runner.releases[1]?.();
    expect(await a1).to.equal('done a1');
    expect(await b1).to.equal('done b1');
    expect(runner.batches.slice(2)).to.deep.equal([['a2', 'bad-a3']]);
    runner.releases[2]?.();
    await new Promise((resolve) => setImmediate(resolve));
    expect(runner.batches.slice(3)).to.deep.equal([['a4']]);
    runner.releases[3]?.();
    const outcomes = await moreOutcomes;
    expect(outcomes.map((o) => o.status)).to.deep.equal(['fulfilled', 'rejected', 'fulfilled']);
    expect((outcomes[1] as PromiseRejectedResult).reason.message).to.equal('bad-a3');
    expect(batcher.size).to.equal(0);
  });

  it('keeps two batches of one account in flight by default, the second already waiting while the first runs', async () => {
    const runner = manualRunner();
    const batcher = new AccountBatcher(runner.run);
    const calls = ['one', 'two', 'three', 'four'].map((call) => batcher.submit('a', call));
    expect(runner.batches).to.deep.equal([['one'], ['two']]);
    runner.releases[1]?.();
    expect(await calls[1]).to.equal('done two');
    expect(runner.batches).to.deep.equal([['one'], ['two'], ['three', 'four']]);
    runner.releases[0]?.();
    runner.releases[2]?.();
    expect(await Promise.all(calls)).to.deep.equal(['done one', 'done two', 'done three', 'done four']);
    expect(batcher.size).to.equal(0);
  });

  it('rejects every call of a batch whose runner fails, and goes on with the next batch', async () => {
    let calls = 0;
    const batcher = new AccountBatcher<string, string>(
      async (batch) => {
        calls++;
        if (calls === 1) throw new Error('connection lost');
        return batch.map((call) => ({ ok: true, value: call }));
      },
      { maxInFlight: 1 },
    );
    const results = await settled([batcher.submit('a', 'x'), batcher.submit('a', 'y')]);
    expect(results[0]).to.include({ status: 'rejected' });
    expect(results[1]).to.deep.equal({ status: 'fulfilled', value: 'y' });
    expect(await batcher.submit('a', 'z')).to.equal('z');
  });
});
