import { expect } from 'chai';
import { type StreamOutcome, settle } from '../../src/features/stream/stream-service.ts';

describe('settle: what a stream outcome stores and charges', () => {
  const base: StreamOutcome = { reservationId: 'r1', completed: false, producedText: true, promptTokens: 40, outputTokens: 7 };

  it('done: finalized with the provider-reported usage', () => {
    const reported = { inputTokens: 42, outputTokens: 9 };
    expect(settle({ ...base, completed: true, reported })).to.deep.equal({
      status: 'complete',
      usage: reported,
      charge: { kind: 'finalize', body: { reservationId: 'r1', ...reported } },
    });
  });

  it('done without provider usage: finalized with the counted prompt and output', () => {
    expect(settle({ ...base, completed: true }).charge).to.deep.equal({ kind: 'finalize', body: { reservationId: 'r1', inputTokens: 40, outputTokens: 7 } });
  });

  it('interrupted by a supervisor: aborted with what was produced', () => {
    expect(settle({ ...base, cause: 'interrupt' })).to.deep.equal({
      status: 'interrupted',
      usage: { inputTokens: 40, outputTokens: 7 },
      charge: { kind: 'abort', body: { reservationId: 'r1', inputTokens: 40, outputTokens: 7 } },
    });
  });

  it('client gone: aborted with what was produced, the prompt charged even before any output', () => {
    expect(settle({ ...base, cause: 'client', producedText: false, outputTokens: 0 })).to.deep.equal({
      status: 'interrupted',
      usage: { inputTokens: 40, outputTokens: 0 },
      charge: { kind: 'abort', body: { reservationId: 'r1', inputTokens: 40, outputTokens: 0 } },
    });
  });

  it('provider error after some output: an error, aborted with what was produced', () => {
    expect(settle(base)).to.deep.include({ status: 'error', usage: { inputTokens: 40, outputTokens: 7 } });
  });

  it('provider error before any output: an error, nothing billed', () => {
    expect(settle({ ...base, producedText: false, outputTokens: 0 }).charge).to.deep.equal({
      kind: 'abort',
      body: { reservationId: 'r1', inputTokens: 0, outputTokens: 0 },
    });
  });

  it('store error: the reply is an error; a completed reply is still finalized with its usage, a cut one aborted', () => {
    const reported = { inputTokens: 42, outputTokens: 9 };
    expect(settle({ ...base, completed: true, cause: 'store', reported })).to.deep.equal({
      status: 'error',
      usage: reported,
      charge: { kind: 'finalize', body: { reservationId: 'r1', ...reported } },
    });
    expect(settle({ ...base, cause: 'store' })).to.deep.include({ status: 'error', usage: { inputTokens: 40, outputTokens: 7 } });
    expect(settle({ ...base, cause: 'store', producedText: false, outputTokens: 0 }).usage).to.deep.equal({ inputTokens: 0, outputTokens: 0 });
  });
});
