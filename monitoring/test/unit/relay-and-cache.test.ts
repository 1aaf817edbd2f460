import { expect } from 'chai';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { sseFrame } from '../../src/features/observe/observe-service.ts';
import { CheckCache } from '../../src/features/relationships/relationship-changes.ts';

describe('sseFrame', () => {
  it('frames events that an SSE parser reads back unchanged, multi-line data included', () => {
    const events: EventSourceMessage[] = [];
    const parser = createParser({ onEvent: (event) => events.push(event) });
    parser.feed(sseFrame({ event: 'delta', data: '{"text":"a"}' }));
    parser.feed(sseFrame({ event: 'note', data: 'line1\nline2\r\nline3', id: '7' }));
    expect(events).to.deep.equal([
      { event: 'delta', data: '{"text":"a"}', id: undefined },
      { event: 'note', data: 'line1\nline2\nline3', id: '7' },
    ]);
  });

  it('cannot be made to inject fields through the event name or id', () => {
    expect(sseFrame({ event: 'x\ndata: forged', data: '1', id: 'i\nevent: y' })).to.equal('id: ievent: y\nevent: xdata: forged\ndata: 1\n\n');
  });
});

describe('CheckCache', () => {
  const pair = { supervisorId: 's', studentId: 't' };

  it('serves a stored answer until invalidated', () => {
    const cache = new CheckCache(60_000);
    cache.store(pair, { supervises: true, relationshipId: 'r' }, cache.begin());
    expect(cache.get(pair)).to.deep.equal({ supervises: true, relationshipId: 'r' });
    cache.invalidate([pair]);
    expect(cache.get(pair)).to.equal(undefined);
  });

  it('drops an answer read before a concurrent write (generation check)', () => {
    const cache = new CheckCache(60_000);
    const generation = cache.begin(); // a read starts...
    cache.invalidate([pair]); // ...a delete lands meanwhile...
    cache.store(pair, { supervises: true }, generation); // ...the stale read must not be cached
    expect(cache.get(pair)).to.equal(undefined);
  });

  it('stores nothing when disabled (TTL 0)', () => {
    const cache = new CheckCache(0);
    cache.store(pair, { supervises: true }, cache.begin());
    expect(cache.get(pair)).to.equal(undefined);
  });
});
