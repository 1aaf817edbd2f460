import { expect } from 'chai';
import { requestFraming } from '../../src/engine/framing.ts';

describe('unit: request framing (raw header lines)', () => {
  it('reads no body, a length, or chunked', () => {
    expect(requestFraming(['Host', 'x'])).to.deep.equal({ ok: true, framing: { kind: 'none' } });
    expect(requestFraming(['Host', 'x', 'Content-Length', '0'])).to.deep.equal({ ok: true, framing: { kind: 'none' } });
    expect(requestFraming(['content-length', '12'])).to.deep.equal({ ok: true, framing: { kind: 'length', length: 12 } });
    expect(requestFraming(['TRANSFER-ENCODING', 'chunked'])).to.deep.equal({ ok: true, framing: { kind: 'chunked' } });
  });

  it('refuses every ambiguous or unusual framing', () => {
    const refused = [
      ['Content-Length', '5', 'Transfer-Encoding', 'chunked'],
      ['Transfer-Encoding', 'chunked', 'Content-Length', '5'],
      ['Content-Length', '5', 'Content-Length', '5'],
      ['Content-Length', '5, 5'],
      ['Content-Length', '+5'],
      ['Content-Length', '-1'],
      ['Content-Length', ''],
      ['Content-Length', '9999999999999999'],
      ['Transfer-Encoding', 'Chunked'],
      ['Transfer-Encoding', 'xchunked'],
      ['Transfer-Encoding', 'gzip, chunked'],
      ['Transfer-Encoding', 'chunked', 'Transfer-Encoding', 'chunked'],
      ['Transfer-Encoding', 'identity', 'transfer-encoding', 'chunked'],
    ];
    for (const raw of refused) expect(requestFraming(raw).ok, raw.join(': ')).to.equal(false);
  });
});
