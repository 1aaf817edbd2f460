// The signed-in user's own event stream (GET /api/chat/events): supervisor feedback and interrupts, live. One
// connection per tab, reconnected with a growing pause after a drop; screens subscribe to what they show.
import type { FeedbackEventData, InterruptNoticeData, UserStreamEvent } from '@platform/shared-types/stream-events';
import { authorizedFetch, problemOf, readSse } from './api.ts';

export type SupervisionEvent = { kind: 'feedback'; data: FeedbackEventData } | { kind: 'interrupted'; data: InterruptNoticeData };
export type Connection = 'connecting' | 'live' | 'offline';

const listeners = new Set<(event: SupervisionEvent) => void>();
const stateListeners = new Set<(state: Connection) => void>();
let controller: AbortController | null = null;
let state: Connection = 'offline';

function setState(next: Connection): void {
  state = next;
  for (const listener of stateListeners) listener(next);
}

export function onSupervision(listener: (event: SupervisionEvent) => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function onConnection(listener: (state: Connection) => void): () => void {
  stateListeners.add(listener);
  listener(state);
  return () => stateListeners.delete(listener);
}

function dispatch(event: string, raw: string): void {
  let received: UserStreamEvent;
  try {
    // chat's user events (shared-types' UserStreamEvent)
    received = { event, data: JSON.parse(raw) } as UserStreamEvent;
  } catch {
    return;
  }
  let message: SupervisionEvent;
  if (received.event === 'feedback') message = { kind: 'feedback', data: received.data };
  else if (received.event === 'interrupted') message = { kind: 'interrupted', data: received.data };
  else return;
  for (const listener of listeners) listener(message);
}

export function startEvents(): void {
  stopEvents();
  const current = new AbortController();
  controller = current;
  void (async () => {
    let pauseMs = 1_000;
    while (!current.signal.aborted) {
      setState('connecting');
      try {
        const response = await authorizedFetch('/api/chat/events', { headers: { accept: 'text/event-stream' }, signal: current.signal });
        if (!response.ok) throw await problemOf(response);
        await readSse(response, dispatch, (comment) => {
          if (comment === 'ready') {
            pauseMs = 1_000;
            setState('live');
          }
        });
      } catch {
        // dropped or refused: try again after a pause (a signed-out session aborts the loop)
      }
      if (current.signal.aborted) break;
      setState('offline');
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
      pauseMs = Math.min(pauseMs * 2, 30_000);
    }
  })();
}

export function stopEvents(): void {
  controller?.abort();
  controller = null;
  setState('offline');
}
