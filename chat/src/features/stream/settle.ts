import type { TerminalStreamEvent } from '@platform/shared-types';
import type { Usage } from '../../providers/provider.ts';
import type { MessageStatus } from '../sessions/sessions-dal.ts';
import type { Charge, ChargeResult } from './charge-outbox.ts';

/** Why a stream was stopped before the provider finished. */
export type StopCause =
  | { kind: 'client' }
  | { kind: 'interrupt'; by: string; byUserId: string; reason: string }
  /** the session or the user's message could not be stored: the stream ends, charging what was produced */
  | { kind: 'store'; error: unknown };

/** How a stream ended, as `settle` needs it. */
export interface StreamOutcome {
  reservationId: string;
  /** the provider finished its reply */
  completed: boolean;
  /** why it was stopped early, if it was */
  cause?: StopCause['kind'];
  producedText: boolean;
  /** the tokenizer's count of the prompt and of the produced text (what is charged without provider usage) */
  promptTokens: number;
  outputTokens: number;
  /** the provider's reported usage (a completed reply) */
  reported?: Usage;
}

export interface Settlement {
  status: MessageStatus;
  usage: Usage;
  charge: Charge;
}

/**
 * What to store and charge for a stream's outcome: a completed reply is finalized with the provider's usage; a
 * stopped or failed one is aborted with what was produced. An upstream that failed before producing anything is
 * not billed; anything produced (or stopped by the user) is. A failed conversation write makes the reply an error,
 * charged like the rest.
 */
export function settle(outcome: StreamOutcome): Settlement {
  const { reservationId, completed, cause } = outcome;
  const failedEmpty = !completed && (cause === undefined || cause === 'store') && !outcome.producedText;
  const produced: Usage = { inputTokens: failedEmpty ? 0 : outcome.promptTokens, outputTokens: outcome.outputTokens };
  if (completed) {
    const usage = outcome.reported ?? produced;
    return { status: cause === 'store' ? 'error' : 'complete', usage, charge: { kind: 'finalize', body: { reservationId, ...usage } } };
  }
  const status: MessageStatus = cause === 'client' || cause === 'interrupt' ? 'interrupted' : 'error';
  return { status, usage: produced, charge: { kind: 'abort', body: { reservationId, ...produced } } };
}

/** What the terminal event needs beyond the settlement. */
export interface TerminalInput {
  messageId: string;
  settlement: Pick<Settlement, 'status' | 'usage'>;
  charged: ChargeResult;
  cause: StopCause | undefined;
  /** the provider's stop reason (a completed reply) */
  stopReason: string;
  /** what the client is told about a provider failure */
  failureDetail: string;
}

/**
 * The one terminal event of a settled stream and who gets it: a client that went away is gone, so only observers
 * learn it was interrupted. Accounting is the one source of prices: while the charge waits in the outbox the
 * event carries no number (and `chargePending`).
 */
export function terminalEvent(input: TerminalInput): { event: TerminalStreamEvent; toClient: boolean } {
  const { messageId, cause } = input;
  const { usage } = input.settlement;
  const credits = input.charged.pending ? undefined : input.charged.credits;
  if (input.settlement.status === 'complete') {
    const chargePending = input.charged.pending || undefined;
    return { event: { event: 'done', data: { messageId, usage, credits, chargePending, stopReason: input.stopReason } }, toClient: true };
  }
  if (cause?.kind === 'interrupt') {
    const data = { messageId, by: cause.by, byUserId: cause.byUserId, reason: cause.reason, usage, credits };
    return { event: { event: 'interrupted', data }, toClient: true };
  }
  if (cause?.kind === 'client') {
    return { event: { event: 'interrupted', data: { messageId, by: 'client', reason: 'client disconnected', usage, credits } }, toClient: false };
  }
  const detail = cause?.kind === 'store' ? 'The conversation could not be stored' : input.failureDetail;
  return { event: { event: 'error', data: { messageId, code: 'UPSTREAM_UNAVAILABLE', detail, usage, credits } }, toClient: true };
}
