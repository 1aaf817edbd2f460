import { ApiError, type ModelEntry } from '@platform/shared-types';
import { countPromptTokens, estimatePromptTokens, estimateTurnTokens } from '../../llm-catalog/tokens.ts';
import type { ChatTurn } from '../../providers/provider.ts';
import type { HistoryTurn } from '../sessions/conversation-cache.ts';

/** What a stream sends the provider and reserves for. */
export interface Prompt {
  turns: ChatTurn[];
  /** the tokenizer's count of the prompt (what an abort without provider usage is charged) */
  inputTokens: number;
  /** the conservative estimate that is reserved */
  reservedInputTokens: number;
  maxOutputTokens: number;
}

/** Same-role neighbours joined: providers such as Bedrock need strictly alternating turns. */
function mergeTurns(turns: ChatTurn[]): ChatTurn[] {
  const merged: ChatTurn[] = [];
  for (const turn of turns) {
    const last = merged.at(-1);
    if (last && last.role === turn.role) last.content = `${last.content}\n\n${turn.content}`;
    else merged.push({ ...turn });
  }
  return merged;
}

/** Conversation turns for the prompt: newest history that fits the budget, alternating roles, starting with the user. */
export function buildTurns(history: HistoryTurn[], newMessage: string, budgetTokens: number): ChatTurn[] {
  const newTokens = estimateTurnTokens(newMessage) + estimatePromptTokens([]);
  if (newTokens > budgetTokens) throw new ApiError('VALIDATION_FAILED', "The message (with its attachments) does not fit the model's context");
  const kept: ChatTurn[] = [];
  let used = newTokens;
  for (let i = history.length - 1; i >= 0; i--) {
    const message = history[i] as HistoryTurn;
    if (message.role === 'supervisor' || message.content.length === 0) continue;
    const cost = estimateTurnTokens(message.content);
    if (used + cost > budgetTokens) break;
    used += cost;
    kept.unshift({ role: message.role, content: message.content });
  }
  kept.push({ role: 'user', content: newMessage });
  const merged = mergeTurns(kept);
  while (merged.length > 0 && merged[0]?.role !== 'user') merged.shift();
  return merged;
}

/** The caller's conversation (system turns first) and the new message, refused whole when it does not fit: nothing of it is dropped. */
export function contextTurns(context: ChatTurn[], newMessage: string, budgetTokens: number): ChatTurn[] {
  const merged = mergeTurns([
    ...context.filter((t) => t.role === 'system'),
    ...context.filter((t) => t.role !== 'system'),
    { role: 'user', content: newMessage },
  ]);
  if (estimatePromptTokens(merged) > budgetTokens)
    throw new ApiError('VALIDATION_FAILED', "The messages do not fit the model's context", { extensions: { param: 'messages' } });
  return merged;
}

/**
 * The prompt for a new message: the caller's context (OpenAI-compatible API) or the stored history, with the
 * attachments' text, inside the model's context less the reply's output limit.
 */
export function promptFor(
  model: ModelEntry,
  input: { message: string; attachmentText: string; history: HistoryTurn[]; context?: ChatTurn[]; maxOutputTokens?: number },
): Prompt {
  if (input.maxOutputTokens !== undefined && input.maxOutputTokens > model.maxOutputTokens) {
    throw new ApiError('VALIDATION_FAILED', `${model.id} writes at most ${model.maxOutputTokens} tokens per reply`);
  }
  const maxOutputTokens = input.maxOutputTokens ?? model.defaultMaxOutputTokens;
  const budget = model.contextTokens - maxOutputTokens;
  const text = input.message + input.attachmentText;
  const turns = input.context ? contextTurns(input.context, text, budget) : buildTurns(input.history, text, budget);
  // reserve a conservative estimate; an abort without provider usage is charged the plain count
  return { turns, inputTokens: countPromptTokens(turns), reservedInputTokens: Math.min(estimatePromptTokens(turns), 10_000_000), maxOutputTokens };
}
