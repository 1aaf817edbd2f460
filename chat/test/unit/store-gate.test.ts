import { expect } from 'chai';
import { StoreGate } from '../../src/features/stream/store-gate.ts';
import { settled } from '../support/settled.ts';

describe('StoreGate: store work waits while streams start', () => {
  it('lets work through at once when no stream is starting', async () => {
    const gate = new StoreGate({ maxDeferMs: 60_000 });
    expect(await gate.after(async () => 'written')).to.equal('written');
    expect(gate.waiting).to.equal(0);
  });

  it('holds work while a stream starts and lets all of it through, in order, when the last one is past its first delta', async () => {
    const gate = new StoreGate({ maxDeferMs: 60_000 });
    const first = gate.begin();
    const second = gate.begin();
    const order: string[] = [];
    const a = gate.after(async () => order.push('a'));
    const b = gate.after(async () => order.push('b'));
    expect(gate.waiting).to.equal(2);
    first();
    first(); // a second call of the same stream's end changes nothing
    expect(await settled(a)).to.equal(false);
    expect(gate.starting).to.equal(1);
    second();
    await Promise.all([a, b]);
    expect(order).to.deep.equal(['a', 'b']);
    expect(gate.waiting).to.equal(0);
    expect(gate.starting).to.equal(0);
  });

  it('lets work through after maxDeferMs even while streams keep starting (bounded)', async () => {
    const gate = new StoreGate({ maxDeferMs: 30 });
    const end = gate.begin();
    const started = Date.now();
    await gate.after(async () => undefined);
    expect(Date.now() - started).to.be.at.least(25);
    expect(gate.starting).to.equal(1);
    end();
  });

  it('lets a wait go at once when its signal aborts (a stream that ended no longer needs its checkpoint)', async () => {
    const gate = new StoreGate({ maxDeferMs: 60_000 });
    const end = gate.begin();
    const stopping = new AbortController();
    const ready = gate.ready(stopping.signal);
    const other = gate.ready();
    expect(gate.waiting).to.equal(2);
    stopping.abort();
    await ready;
    expect(gate.waiting).to.equal(1);
    expect(await settled(other)).to.equal(false);
    end();
    await other;
  });

  it('is off with maxDeferMs 0', async () => {
    const gate = new StoreGate({ maxDeferMs: 0 });
    const end = gate.begin();
    expect(await settled(gate.after(async () => undefined))).to.equal(true);
    end();
  });
});
