import { countTokens as bpeTokens } from 'gpt-tokenizer';

/**
 * Token counts with a real BPE tokenizer (o200k, as current OpenAI models use) instead of characters / 4, which
 * undercounts CJK scripts, emoji and code several times over. Other providers tokenise differently, so what is
 * reserved is a conservative estimate (the count plus a margin); what is charged is the provider's reported usage,
 * and only a stream that stopped without one is charged the plain count of what it produced.
 */

/** tokens chat formats add around each message (role, separators) and to prime the reply */
const PER_TURN_TOKENS = 4;
const REPLY_PRIMING_TOKENS = 3;
/** headroom of the estimate over our tokenizer's count, for providers whose tokenizers split finer */
const ESTIMATE_MARGIN = 1.25;

/** Tokens of `text` with the tokenizer; special-token markers in user text are counted as plain text. */
export function countTokens(text: string): number {
  return text.length === 0 ? 0 : bpeTokens(text, { disallowedSpecial: new Set() });
}

/** A conservative estimate of one message of a prompt: its count and framing, plus the margin. */
export function estimateTurnTokens(text: string): number {
  return Math.ceil((countTokens(text) + PER_TURN_TOKENS) * ESTIMATE_MARGIN);
}

/** Tokens of a conversation as a prompt: its messages with their framing. */
export function countPromptTokens(turns: Array<{ content: string }>): number {
  return turns.reduce((sum, turn) => sum + countTokens(turn.content) + PER_TURN_TOKENS, REPLY_PRIMING_TOKENS);
}

/**
 * What to reserve for a prompt's input: each message's estimate (as budgets count them, so a prompt that fits the
 * budget never reserves more than it) plus the reply's priming.
 */
export function estimatePromptTokens(turns: Array<{ content: string }>): number {
  return turns.reduce((sum, turn) => sum + estimateTurnTokens(turn.content), Math.ceil(REPLY_PRIMING_TOKENS * ESTIMATE_MARGIN));
}
