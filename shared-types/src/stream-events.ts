// The events chat's streams carry (DESIGN 7), typed once for every part that writes or reads them: chat's
// pipeline and SSE writers, monitoring's observe relay, the dashboard and the web app (`import type` from
// '@platform/shared-types/stream-events': this file imports nothing, so browser code can use it).

export interface StreamUsage {
  inputTokens: number;
  outputTokens: number;
}

/** first event of a reply: what it is and what it is reserved under */
export interface SessionEventData {
  sessionId: string;
  messageId: string;
  reservationId: string;
  modelId: string;
}

export interface DeltaEventData {
  text: string;
}

/** the reply finished; `credits` is absent while the charge waits for accounting (`chargePending`) */
export interface DoneEventData {
  messageId: string;
  usage: StreamUsage;
  credits?: number;
  chargePending?: boolean;
  /** the provider's stop reason (end_turn, max_tokens, ...) */
  stopReason: string;
}

/** stopped early: by a supervisor or admin (`by` their username, `byUserId` their id) or `by: 'client'` (the caller left) */
export interface InterruptedEventData {
  messageId: string;
  by: string;
  byUserId?: string;
  reason: string;
  usage: StreamUsage;
  credits?: number;
}

/**
 * the stream failed (provider, store) or, on a long-lived stream, ended because its access token died
 * (TOKEN_REVOKED, TOKEN_EXPIRED) or its supervision ended (FORBIDDEN): a code of DESIGN 6's closed list
 */
export interface ErrorEventData {
  code: string;
  detail: string;
  messageId?: string;
  usage?: StreamUsage;
  credits?: number;
}

/** a supervisor's message in a student's session (the student's event stream and observers) */
export interface FeedbackEventData {
  sessionId: string;
  messageId: string;
  from: { userId: string; username: string; role: string };
  content: string;
  createdAt: string;
}

/** on the student's own event stream: a supervisor stopped a reply in one of their sessions */
export interface InterruptNoticeData {
  sessionId: string;
  messageId: string;
  by: string;
  reason: string;
}

export type SessionStreamEvent = { event: 'session'; data: SessionEventData };
export type DeltaStreamEvent = { event: 'delta'; data: DeltaEventData };
export type DoneStreamEvent = { event: 'done'; data: DoneEventData };
export type InterruptedStreamEvent = { event: 'interrupted'; data: InterruptedEventData };
export type ErrorStreamEvent = { event: 'error'; data: ErrorEventData };
export type FeedbackStreamEvent = { event: 'feedback'; data: FeedbackEventData };

/** exactly one of these ends a reply's stream */
export type TerminalStreamEvent = DoneStreamEvent | InterruptedStreamEvent | ErrorStreamEvent;

/** `POST /api/chat/sessions/:id/stream`: session, deltas, then one terminal event */
export type ChatStreamEvent = SessionStreamEvent | DeltaStreamEvent | TerminalStreamEvent;

/** what observers of a session see (`GET /api/observe/...`, chat's `/internal/sessions/:id/observe`): the reply's events and feedback */
export type ObserveEvent = ChatStreamEvent | FeedbackStreamEvent;

/** `GET /api/chat/events`, the user's own stream: feedback and interrupt notices; an error when the token dies */
export type UserStreamEvent = FeedbackStreamEvent | { event: 'interrupted'; data: InterruptNoticeData } | ErrorStreamEvent;

/** every event chat's streams carry */
export type StreamEvent = ObserveEvent | UserStreamEvent;

export type StreamEventName = StreamEvent['event'];

export const TERMINAL_EVENTS: ReadonlySet<string> = new Set(['done', 'interrupted', 'error']);

export function isTerminalEvent<E extends { event: string }>(event: E): event is Extract<E, { event: 'done' | 'interrupted' | 'error' }> {
  return TERMINAL_EVENTS.has(event.event);
}
