// Chat: the session list, a new session with a model picker that shows prices, and the chat view, which streams
// the reply as it arrives (SSE over fetch), can be stopped, takes attachments and shows supervisors' feedback and
// interrupts where they belong.
import type { ChatStreamEvent } from '@platform/shared-types/stream-events';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { api, authorizedFetch, describe, problemOf, readSse } from './api.ts';
import { refreshBalance, refreshBalanceUntilSettled } from './balance.ts';
import { onSupervision } from './events.ts';
import { renderMarkdown } from './markdown.ts';
import { linkProps, navigate } from './router.ts';

interface ChatSession {
  id: string;
  modelId: string;
  title: string;
  createdAt: string;
  updatedAt: string;
}
interface Message {
  /** stable while the reply streams (its id arrives with the first event) */
  key: string;
  id: string;
  role: 'user' | 'assistant' | 'supervisor';
  content: string;
  status: 'complete' | 'interrupted' | 'error' | 'streaming';
  credits?: number;
  /** why the reply ended early, as the stream or the supervisor said */
  note?: string;
  author?: string;
  createdAt?: string;
}
interface Model {
  id: string;
  displayName: string;
  maxOutputTokens: number;
}
interface Price {
  modelId: string;
  inputPer1k: number;
  outputPer1k: number;
}
interface UploadedFile {
  id: string;
  name: string;
  size: number;
}
interface Quota {
  used: number;
  limit: number;
  remaining: number;
  resetsAt: string;
}

const formatSize = (bytes: number) =>
  bytes < 1024 ? `${bytes} B` : bytes < 1_048_576 ? `${(bytes / 1024).toFixed(1)} KB` : `${(bytes / 1_048_576).toFixed(1)} MB`;

function useModels() {
  const [models, setModels] = useState<Array<Model & { price?: Price }>>([]);
  useEffect(() => {
    Promise.all([api<{ models: Model[] }>('/api/chat/models'), api<{ prices: Price[] }>('/api/models/prices').catch(() => ({ prices: [] as Price[] }))])
      .then(([chat, accounting]) => setModels(chat.models.map((model) => ({ ...model, price: accounting.prices.find((p) => p.modelId === model.id) }))))
      .catch(() => setModels([]));
  }, []);
  return models;
}

const priceText = (price?: Price) => (price ? `${price.inputPer1k} in / ${price.outputPer1k} out credits per 1,000 tokens` : 'price unknown');

export function ChatScreen(props: { sessionId: string | null }) {
  const { sessionId } = props;
  const [sessions, setSessions] = useState<ChatSession[]>([]);
  const [unread, setUnread] = useState<Set<string>>(new Set());
  const [status, setStatus] = useState('');
  const models = useModels();

  const loadSessions = useCallback(async () => {
    try {
      const answer = await api<{ sessions: ChatSession[] }>('/api/chat/sessions?limit=50');
      setSessions(answer.sessions);
    } catch (error) {
      setStatus(`Could not load your chats: ${describe(error)}`);
    }
  }, []);
  useEffect(() => {
    void loadSessions();
  }, [loadSessions]);

  // feedback or an interrupt for a chat that is not open: mark it in the list
  useEffect(
    () =>
      onSupervision((event) => {
        if (event.data.sessionId === sessionId) return;
        setUnread((previous) => new Set(previous).add(event.data.sessionId));
        setStatus(
          event.kind === 'feedback' ? `New feedback from ${event.data.from.username} in another chat.` : 'A supervisor stopped a reply in another chat.',
        );
      }),
    [sessionId],
  );
  useEffect(() => {
    if (!sessionId) return;
    setUnread((previous) => {
      if (!previous.has(sessionId)) return previous;
      const next = new Set(previous);
      next.delete(sessionId);
      return next;
    });
  }, [sessionId]);

  return (
    <div class={sessionId ? 'chat-layout chat-open' : 'chat-layout'}>
      <aside class="card sessions" aria-labelledby="sessions-title">
        <h2 id="sessions-title">Your chats</h2>
        <NewSession models={models} onCreated={(created) => setSessions((list) => [created, ...list])} />
        {sessions.length === 0 ? <p class="note">No chats yet.</p> : null}
        <ul class="plain session-list">
          {sessions.map((s) => (
            <li key={s.id}>
              <a {...linkProps(`/chat/${encodeURIComponent(s.id)}`)} aria-current={s.id === sessionId ? 'page' : undefined} data-session-id={s.id}>
                <span class="session-title">{s.title}</span>
                {unread.has(s.id) ? <span class="badge attention">new</span> : null}
                <span class="session-meta">
                  {s.modelId} · {new Date(s.updatedAt).toLocaleDateString()}
                </span>
              </a>
            </li>
          ))}
        </ul>
        <p class="note" role="status">
          {status}
        </p>
      </aside>
      {sessionId ? (
        <ChatView key={sessionId} sessionId={sessionId} models={models} onActivity={loadSessions} />
      ) : (
        <section class="card chat-empty" aria-labelledby="chat-empty-title">
          <h2 id="chat-empty-title">Start a chat</h2>
          <p>Pick a model on the left and start a new chat, or open one of your chats.</p>
        </section>
      )}
    </div>
  );
}

function NewSession(props: { models: Array<Model & { price?: Price }>; onCreated: (session: ChatSession) => void }) {
  const [modelId, setModelId] = useState('');
  const [title, setTitle] = useState('');
  const [error, setError] = useState('');
  const chosen = props.models.find((m) => m.id === modelId) ?? props.models[0];
  const onSubmit = async (event: SubmitEvent) => {
    event.preventDefault();
    if (!chosen) return;
    setError('');
    try {
      const answer = await api<{ session: ChatSession }>('/api/chat/sessions', {
        method: 'POST',
        body: { modelId: chosen.id, ...(title.trim() ? { title: title.trim() } : {}) },
      });
      setTitle('');
      props.onCreated(answer.session);
      navigate(`/chat/${encodeURIComponent(answer.session.id)}`);
    } catch (problem) {
      setError(describe(problem));
    }
  };
  return (
    <form class="stack new-session" onSubmit={(event) => void onSubmit(event)}>
      <label for="new-model">Model</label>
      <select id="new-model" value={chosen?.id ?? ''} onChange={(event) => setModelId((event.currentTarget as HTMLSelectElement).value)}>
        {props.models.map((model) => (
          <option key={model.id} value={model.id}>
            {model.displayName} — {priceText(model.price)}
          </option>
        ))}
      </select>
      <p class="hint" id="new-model-price">
        {chosen ? `${chosen.displayName}: ${priceText(chosen.price)}` : 'Loading models…'}
      </p>
      <label for="new-title">Title (optional)</label>
      <input id="new-title" maxLength={200} value={title} onInput={(event) => setTitle((event.currentTarget as HTMLInputElement).value)} />
      <button type="submit" disabled={!chosen}>
        New chat
      </button>
      <p class="error" role="alert">
        {error}
      </p>
    </form>
  );
}

interface StoredMessage {
  id: string;
  role: Message['role'];
  content: string;
  status: 'complete' | 'interrupted' | 'error';
  credits?: number;
  createdAt: string;
}

function ChatView(props: { sessionId: string; models: Array<Model & { price?: Price }>; onActivity: () => void }) {
  const { sessionId } = props;
  const [session, setSession] = useState<ChatSession | null>(null);
  const [messages, setMessages] = useState<Message[]>([]);
  const [draft, setDraft] = useState('');
  const [streaming, setStreaming] = useState(false);
  const [error, setError] = useState('');
  const [files, setFiles] = useState<UploadedFile[]>([]);
  const [quota, setQuota] = useState<Quota | null>(null);
  const [uploading, setUploading] = useState(false);
  const controller = useRef<AbortController | null>(null);
  /** replies streamed in this tab: their own stream already told how they ended */
  const streamedHere = useRef(new Set<string>());
  const logRef = useRef<HTMLDivElement>(null);

  const load = useCallback(async () => {
    try {
      const answer = await api<{ session: ChatSession; messages: StoredMessage[] }>(`/api/chat/sessions/${encodeURIComponent(sessionId)}`);
      setSession(answer.session);
      setMessages(
        answer.messages.map((m) => ({
          ...m,
          key: m.id,
          note: m.status === 'interrupted' ? 'Stopped early' : m.status === 'error' ? 'Ended with an error' : undefined,
        })),
      );
    } catch (problem) {
      setError(`Could not open this chat: ${describe(problem)}`);
    }
  }, [sessionId]);
  const loadQuota = useCallback(() => {
    api<Quota>('/api/chat/files/quota')
      .then(setQuota)
      .catch(() => setQuota(null));
  }, []);

  useEffect(() => {
    void load();
    loadQuota();
    return () => controller.current?.abort();
  }, [load, loadQuota]);

  // supervisor feedback lands in this chat as it is sent; an interrupt of a reply streaming elsewhere reloads it
  useEffect(
    () =>
      onSupervision((event) => {
        if (event.data.sessionId !== sessionId) return;
        if (event.kind === 'feedback') {
          const { messageId, content, from, createdAt } = event.data;
          setMessages((list) =>
            list.some((m) => m.id === messageId)
              ? list
              : [...list, { key: messageId, id: messageId, role: 'supervisor', content, status: 'complete', author: from.username, createdAt }],
          );
        } else if (!streamedHere.current.has(event.data.messageId)) void load();
      }),
    [sessionId, load],
  );

  useEffect(() => {
    const log = logRef.current;
    if (log) log.scrollTop = log.scrollHeight;
  }, [messages]);

  /** changes the reply being streamed, wherever it is now (feedback may have landed after it) */
  const updateReply = (key: string, change: (message: Message) => Message) =>
    setMessages((list) => list.map((message) => (message.key === key ? change(message) : message)));

  const send = async (event: SubmitEvent) => {
    event.preventDefault();
    const text = draft.trim();
    if (!text || streaming) return;
    setError('');
    setStreaming(true);
    const abort = new AbortController();
    controller.current = abort;
    const fileIds = files.map((f) => f.id);
    const key = `local-${crypto.randomUUID()}`;
    const updateLast = (change: (message: Message) => Message) => updateReply(key, change);
    setMessages((list) => [
      ...list,
      { key: `${key}-question`, id: '', role: 'user', content: text, status: 'complete' },
      { key, id: '', role: 'assistant', content: '', status: 'streaming' },
    ]);
    setDraft('');
    setFiles([]);
    let ended = false;
    try {
      const response = await authorizedFetch(`/api/chat/sessions/${encodeURIComponent(sessionId)}/stream`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify({ message: text, ...(fileIds.length ? { fileIds } : {}) }),
        signal: abort.signal,
      });
      if (!response.ok) throw await problemOf(response);
      void refreshBalance(); // shows the reservation while the reply streams
      await readSse(response, (name, raw) => {
        // chat's stream events (shared-types' ChatStreamEvent)
        const received = { event: name, data: JSON.parse(raw) } as ChatStreamEvent;
        if (received.event === 'session') {
          const { messageId } = received.data;
          streamedHere.current.add(messageId);
          updateLast((m) => ({ ...m, id: messageId }));
        } else if (received.event === 'delta') {
          const { text } = received.data;
          updateLast((m) => ({ ...m, content: m.content + text }));
        } else if (received.event === 'done') {
          ended = true;
          const { credits } = received.data;
          updateLast((m) => ({ ...m, status: 'complete', credits }));
        } else if (received.event === 'interrupted') {
          ended = true;
          const { by, reason, credits } = received.data;
          const who = by === 'client' ? 'You stopped this reply' : `Stopped by ${by}`;
          updateLast((m) => ({ ...m, status: 'interrupted', credits, note: reason && by !== 'client' ? `${who}: ${reason}` : who }));
        } else if (received.event === 'error') {
          ended = true;
          const { credits, detail, code } = received.data;
          updateLast((m) => ({ ...m, status: 'error', credits, note: `Error: ${detail ?? code}` }));
        }
      });
      if (!ended) updateLast((m) => ({ ...m, status: 'error', note: 'The connection closed before the reply ended.' }));
    } catch (problem) {
      if (abort.signal.aborted) updateLast((m) => ({ ...m, status: 'interrupted', note: 'You stopped this reply' }));
      else {
        setMessages((list) => list.filter((message) => message.key !== key || message.content !== ''));
        setError(describe(problem));
      }
    } finally {
      controller.current = null;
      setStreaming(false);
      props.onActivity();
      void refreshBalanceUntilSettled();
    }
  };

  const upload = async (input: HTMLInputElement) => {
    const file = input.files?.[0];
    if (!file) return;
    setUploading(true);
    setError('');
    try {
      const form = new FormData();
      form.append('file', file, file.name);
      const response = await authorizedFetch('/api/chat/files', { method: 'POST', body: form, headers: { accept: 'application/json' } });
      if (!response.ok) throw await problemOf(response);
      const answer = (await response.json()) as { file: UploadedFile };
      setFiles((list) => [...list, answer.file]);
    } catch (problem) {
      setError(`Could not attach ${file.name}: ${describe(problem)}`);
    } finally {
      input.value = '';
      setUploading(false);
      loadQuota();
    }
  };

  const model = props.models.find((m) => m.id === session?.modelId);
  return (
    <section class="card chat" aria-labelledby="chat-title">
      <a class="back-link" {...linkProps('/')}>
        ← All chats
      </a>
      <div class="section-head">
        <h2 id="chat-title">{session?.title ?? 'Chat'}</h2>
        <span class="note" id="chat-model">
          {session ? `${model?.displayName ?? session.modelId} · ${priceText(model?.price)}` : ''}
        </span>
      </div>
      <div class="messages" ref={logRef} role="log" aria-label="Messages" aria-busy={streaming} tabindex={0}>
        {messages.length === 0 ? <p class="note">Say hello to start.</p> : null}
        {messages.map((message) => (
          <MessageView key={message.key} message={message} />
        ))}
      </div>
      <form class="composer" onSubmit={(event) => void send(event)}>
        <label for="composer-input" class="visually-hidden">
          Your message
        </label>
        <textarea
          id="composer-input"
          rows={3}
          value={draft}
          placeholder="Write a message (Enter sends, Shift+Enter for a new line)"
          onInput={(event) => setDraft((event.currentTarget as HTMLTextAreaElement).value)}
          onKeyDown={(event) => {
            if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
              event.preventDefault();
              (event.currentTarget as HTMLTextAreaElement).form?.requestSubmit();
            }
          }}
        />
        <div class="composer-actions">
          <label class="file-button" for="composer-file">
            Attach a file
          </label>
          <input
            id="composer-file"
            class="file-input"
            type="file"
            disabled={uploading || streaming || quota?.remaining === 0}
            onChange={(event) => void upload(event.currentTarget as HTMLInputElement)}
          />
          <span class="note" id="quota">
            {quota ? `Uploads today: ${quota.used} of ${quota.limit}` : ''}
          </span>
          {streaming ? (
            <button type="button" class="danger" onClick={() => controller.current?.abort()}>
              Stop
            </button>
          ) : (
            <button type="submit" disabled={!draft.trim()}>
              Send
            </button>
          )}
        </div>
        {files.length ? (
          <ul class="plain attachments" aria-label="Attached files">
            {files.map((file) => (
              <li key={file.id}>
                {file.name} <span class="muted">({formatSize(file.size)})</span>{' '}
                <button
                  type="button"
                  class="small secondary"
                  aria-label={`Remove ${file.name}`}
                  onClick={() => setFiles((list) => list.filter((f) => f.id !== file.id))}
                >
                  Remove
                </button>
              </li>
            ))}
          </ul>
        ) : null}
        <p class="error" role="alert">
          {error}
        </p>
      </form>
    </section>
  );
}

function MessageView(props: { message: Message }) {
  const { message } = props;
  const who = message.role === 'user' ? 'You' : message.role === 'assistant' ? 'Assistant' : `Supervisor${message.author ? ` ${message.author}` : ''}`;
  return (
    <article class={`message ${message.role} ${message.status}`} data-message-id={message.id} data-status={message.status} aria-label={`${who} says`}>
      <p class="message-author">{message.role === 'supervisor' ? `Feedback from ${who}` : who}</p>
      {message.role === 'assistant' ? (
        // sanitized: raw HTML, images and non-web links in model output stay text (markdown.ts)
        <div class="message-body markdown" dangerouslySetInnerHTML={{ __html: renderMarkdown(message.content) }} />
      ) : (
        <p class="message-body plain-text">{message.content}</p>
      )}
      {message.status === 'streaming' ? <p class="message-meta">Writing…</p> : null}
      {message.note ? <p class={`message-meta ${message.status === 'error' ? 'error' : 'warn'}`}>{message.note}</p> : null}
      {message.credits !== undefined && !Number.isNaN(message.credits) ? (
        <p class="message-meta" data-credits={String(message.credits)}>
          {message.credits} credits
        </p>
      ) : null}
    </article>
  );
}
