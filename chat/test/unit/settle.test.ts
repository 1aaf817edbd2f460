import { expect } from 'chai';
import { type StreamOutcome, settle, type TerminalInput, terminalEvent } from '../../src/features/stream/settle.ts';

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

describe('terminalEvent: the one event that ends a settled stream', () => {
  const usage = { inputTokens: 40, outputTokens: 7 };
  const base: TerminalInput = {
    messageId: 'm1',
    settlement: { status: 'complete', usage },
    charged: { pending: false, credits: 3 },
    cause: undefined,
    stopReason: 'end_turn',
    failureDetail: 'The model failed to answer',
  };

  it('done: usage, credits and the stop reason, to the client', () => {
    expect(terminalEvent(base)).to.deep.equal({
      event: { event: 'done', data: { messageId: 'm1', usage, credits: 3, chargePending: undefined, stopReason: 'end_turn' } },
      toClient: true,
    });
  });

  it('a charge waiting in the outbox shows no credits and chargePending', () => {
    expect(terminalEvent({ ...base, charged: { pending: true } }).event).to.deep.include({
      data: { messageId: 'm1', usage, credits: undefined, chargePending: true, stopReason: 'end_turn' },
    });
  });

  it('interrupted by a supervisor names them; a client that left is told nothing (observers only)', () => {
    const interrupted = { ...base, settlement: { status: 'interrupted' as const, usage } };
    const bySupervisor = terminalEvent({ ...interrupted, cause: { kind: 'interrupt', by: 'sam', byUserId: 'u9', reason: 'off topic' } });
    expect(bySupervisor).to.deep.equal({
      event: { event: 'interrupted', data: { messageId: 'm1', by: 'sam', byUserId: 'u9', reason: 'off topic', usage, credits: 3 } },
      toClient: true,
    });
    const clientGone = terminalEvent({ ...interrupted, cause: { kind: 'client' } });
    expect(clientGone.toClient).to.equal(false);
    expect(clientGone.event).to.deep.include({ event: 'interrupted' });
    expect(clientGone.event.data).to.deep.include({ by: 'client' });
  });

  it('provider error: the safe detail; store error: the conversation could not be stored', () => {
    const failed = { ...base, settlement: { status: 'error' as const, usage } };
    expect(terminalEvent({ ...failed, failureDetail: 'upstream said no' }).event).to.deep.equal({
      event: 'error',
      data: { messageId: 'm1', code: 'UPSTREAM_UNAVAILABLE', detail: 'upstream said no', usage, credits: 3 },
    });
    const store = terminalEvent({ ...failed, cause: { kind: 'store', error: new Error('locked') } });
    expect(store.toClient).to.equal(true);
    expect(store.event.data).to.deep.include({ code: 'UPSTREAM_UNAVAILABLE', detail: 'The conversation could not be stored' });
  });
});
