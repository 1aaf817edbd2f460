// Supervisor dashboard (browser module), bundled by esbuild with the web app's API helper and chart and served by
// monitoring at /monitoring/app.js. It talks only to public gateway paths on the same origin, with the signed-in
// user's access token.

import type { ObserveEvent } from '@platform/shared-types/stream-events';
import {
  api,
  authorizedFetch,
  currentSession,
  describe,
  keepSessionUnder,
  onSessionChange,
  problemOf,
  readSse,
  type Session,
  setSession,
} from '@platform/webapp/api';
import { hideAdminScreens, showAdminScreens } from './admin-screens.tsx';
import { hideStudentCharts, showStudentCharts } from './student-charts.tsx';

interface User {
  id: string;
  username: string;
  email: string;
  role: 'admin' | 'supervisor' | 'enduser';
  status?: string;
}
interface ActiveStream {
  sessionId: string;
  modelId: string;
  reservedCredits: number;
  startedAt: string;
  /** null until the first token (or when chat could not tell) */
  timeToFirstTokenMs?: number | null;
}
interface Student {
  id: string;
  username: string | null;
  email: string | null;
  since: string;
  balance: { available: number; reserved: number } | null;
  activeStreams: ActiveStream[] | null;
}
interface StudentsAnswer {
  supervisorId: string;
  students: Student[];
  total: number;
  sources: { auth: string; accounting: string };
}
interface Relationship {
  id: string;
  supervisorId: string;
  studentId: string;
  active: boolean;
  since: string;
  supervisor: { username: string } | null;
  student: { username: string } | null;
}

interface Prices {
  inputPer1k: number;
  outputPer1k: number;
}
interface CatalogModel {
  id: string;
  displayName: string;
  provider: string;
  upstreamModel: string;
  access: { public?: boolean; roles?: string[]; users?: string[] };
  enabled: boolean;
  configured: boolean;
  prices: Prices | null;
}
interface Chatflow {
  id: string;
  modelId: string;
  name: string;
  displayName: string;
  available: boolean;
  isPublic: boolean;
  allowedUsers: string[];
  allowedRoles: string[];
  prices: Prices | null;
}
interface SyncReport {
  added: Array<{ id: string; name: string }>;
  renamed: Array<{ id: string; from: string; to: string }>;
  retired: string[];
  restored: string[];
  unchanged: number;
}

const STORAGE_KEY = 'monitoring.session';
const REFRESH_EVERY_MS = 10_000;

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const found = document.getElementById(id);
  if (!found) throw new Error(`missing #${id}`);
  return found as T;
};

/** Builds an element; children are text (never parsed as HTML) or nodes. */
function el(tag: string, attrs: Record<string, string> = {}, ...children: Array<Node | string>): HTMLElement {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  for (const child of children) node.append(child);
  return node;
}

function say(message: string, kind: 'info' | 'error' = 'info'): void {
  const status = $('status');
  status.textContent = message;
  status.className = `status ${kind}`;
}

const formatTime = (iso: string) => new Date(iso).toLocaleString();
const formatClock = (iso: string) => new Date(iso).toLocaleTimeString();

// ---------------------------------------------------------------- session and API (shared with the web app)

keepSessionUnder(STORAGE_KEY);
// a session that ended elsewhere (refresh refused, signed out in another way) shows the sign-in form
onSessionChange((next) => {
  if (!next && !$('app-view').hidden) signedOut('Your session ended; sign in again.');
});

// ---------------------------------------------------------------- sign in / out

async function signIn(event: SubmitEvent): Promise<void> {
  event.preventDefault();
  const identity = $<HTMLInputElement>('login-identity').value.trim();
  const password = $<HTMLInputElement>('login-password').value;
  const error = $('login-error');
  error.textContent = '';
  const body = identity.includes('@') ? { email: identity, password } : { username: identity, password };
  const response = await fetch('/api/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).catch(
    () => null,
  );
  if (!response) {
    error.textContent = 'The platform cannot be reached.';
    return;
  }
  if (!response.ok) {
    error.textContent = (await problemOf(response)).message;
    return;
  }
  const answer = (await response.json()) as Session;
  if (answer.user.role === 'enduser') {
    error.textContent = 'This dashboard is for supervisors and admins.';
    return;
  }
  setSession({ accessToken: answer.accessToken, refreshToken: answer.refreshToken, user: answer.user });
  $<HTMLInputElement>('login-password').value = '';
  showApp();
}

async function signOut(): Promise<void> {
  const current = currentSession();
  stopWatching();
  setSession(null);
  if (current) {
    void fetch('/api/auth/logout', {
      method: 'POST',
      headers: { authorization: `Bearer ${current.accessToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ refreshToken: current.refreshToken }),
    }).catch(() => undefined);
  }
  signedOut('Signed out.');
}

let refreshTimer: number | undefined;

function signedOut(message: string): void {
  if (currentSession()) setSession(null);
  shownStudents = '';
  stopWatching();
  hideStudentCharts($('charts-root'));
  hideAdminScreens($('admin-screens-root'));
  window.clearInterval(refreshTimer);
  $('app-view').hidden = true;
  $('whoami').hidden = true;
  $('login-view').hidden = false;
  say(message);
}

function showApp(): void {
  const session = currentSession();
  if (!session) return;
  const admin = session.user.role === 'admin';
  $('login-view').hidden = true;
  $('app-view').hidden = false;
  $('whoami').hidden = false;
  $('whoami-name').textContent = session.user.username;
  $('whoami-role').textContent = session.user.role;
  $('supervisor-form').hidden = !admin;
  $('admin-view').hidden = !admin;
  for (const node of document.querySelectorAll<HTMLElement>('.admin-only')) node.hidden = !admin;
  say(`Welcome, ${session.user.username}.`);
  void loadStudents();
  if (admin) {
    void loadUsers();
    void loadRelationships();
    void loadCatalog();
    showAdminScreens($('admin-screens-root'), say);
  }
  window.clearInterval(refreshTimer);
  refreshTimer = window.setInterval(() => {
    if (!document.hidden) void loadStudents(true);
  }, REFRESH_EVERY_MS);
}

// ---------------------------------------------------------------- students

let students: Student[] = [];
/** the supervisor whose students an admin looks at (null: the admin's own) */
let viewedSupervisor: User | null = null;
/** what the table shows now: an unchanged answer is not re-rendered (keeps focus and open selects during auto-refresh) */
let shownStudents = '';

async function loadStudents(quiet = false): Promise<void> {
  const query = viewedSupervisor ? `?supervisorId=${encodeURIComponent(viewedSupervisor.id)}` : '';
  try {
    const answer = await api<StudentsAnswer>(`/api/supervised-students${query}`);
    const signature = JSON.stringify(answer);
    if (signature === shownStudents) return;
    shownStudents = signature;
    students = answer.students;
    renderStudents(answer);
  } catch (error) {
    if (!quiet) say(`Could not load students: ${describe(error)}`, 'error');
  }
}

function renderStudents(answer: StudentsAnswer): void {
  const body = $('students-table').querySelector('tbody') as HTMLTableSectionElement;
  body.replaceChildren(
    ...answer.students.map((student) => {
      const name = student.username ?? 'unknown user';
      const balance = student.balance
        ? el(
            'span',
            {},
            String(student.balance.available),
            student.balance.reserved ? el('span', { class: 'muted' }, ` (${student.balance.reserved} reserved)`) : '',
          )
        : el('span', { class: 'muted' }, 'unknown');
      const live = student.activeStreams
        ? student.activeStreams.length === 0
          ? el('span', { class: 'muted' }, 'none')
          : el(
              'ul',
              { class: 'plain' },
              ...student.activeStreams.map((stream) => {
                const label = `${stream.modelId} session started ${formatClock(stream.startedAt)}`;
                const button = el('button', { type: 'button', class: 'small', 'aria-label': `Watch ${name}'s ${label}` }, 'Watch');
                button.addEventListener('click', () => void watch(student.id, name, stream.sessionId, label));
                return el(
                  'li',
                  { 'data-session-id': stream.sessionId },
                  el('span', { class: 'live-dot', 'aria-hidden': 'true' }),
                  `${stream.modelId} `,
                  firstTokenText(stream),
                  ' ',
                  button,
                );
              }),
            )
        : el('span', { class: 'muted' }, 'unknown');
      return el(
        'tr',
        { 'data-student-id': student.id },
        el('th', { scope: 'row' }, name),
        el('td', {}, student.email ?? ''),
        el('td', {}, balance),
        el('td', {}, live),
        el('td', {}, formatTime(student.since)),
      );
    }),
  );
  $('students-empty').hidden = answer.students.length > 0;
  $('students-note').textContent = answer.sources.accounting === 'ok' ? '' : 'Balances and live sessions are unknown right now (accounting is unavailable).';
  renderStudentChoices();
  showStudentCharts(
    $('charts-root'),
    answer.students.map((student) => ({ id: student.id, username: student.username ?? 'unknown user', email: student.email })),
    currentSession()?.user.role === 'admin',
  );
}

function renderStudentChoices(): void {
  const select = $<HTMLSelectElement>('allocate-user');
  const chosen = select.value;
  select.replaceChildren(
    el('option', { value: '' }, students.length ? 'Choose a student' : 'No students'),
    ...students.map((student) => el('option', { value: student.id }, student.username ?? 'unknown user')),
  );
  select.value = students.some((s) => s.id === chosen) ? chosen : '';
}

/** time to first token of a live session, as chat measured it */
function firstTokenText(stream: ActiveStream): HTMLElement {
  const ms = stream.timeToFirstTokenMs;
  if (ms === undefined) return el('span', { class: 'muted ttft' }, 'first token: unknown');
  if (ms === null) return el('span', { class: 'muted ttft', 'data-ttft-ms': '' }, 'waiting for the first token');
  const shown = ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
  return el('span', { class: 'ttft', 'data-ttft-ms': String(ms) }, `first token after ${shown}`);
}

// ---------------------------------------------------------------- watching a live session

interface Watching {
  controller: AbortController;
  studentId: string;
  sessionId: string;
}
let watching: Watching | null = null;

function stopWatching(): void {
  watching?.controller.abort();
  watching = null;
  $('watch-panel').hidden = true;
}

function setWatchState(state: string): void {
  $('watch-state').textContent = state;
}

function logEvent(text: string): void {
  $('watch-events').append(el('li', {}, text));
}

function handleStreamEvent(event: string, raw: string): void {
  let observed: ObserveEvent;
  try {
    // chat's observe events (shared-types' ObserveEvent), relayed by monitoring
    observed = { event, data: JSON.parse(raw) } as ObserveEvent;
  } catch {
    logEvent(event);
    return;
  }
  const transcript = $('transcript');
  switch (observed.event) {
    case 'session':
      setWatchState('streaming');
      logEvent(`Stream started (message ${observed.data.messageId})`);
      break;
    case 'delta':
      transcript.append(observed.data.text);
      transcript.scrollTop = transcript.scrollHeight;
      break;
    case 'done':
      setWatchState(`done (${observed.data.credits ?? '?'} credits)`);
      logEvent('Stream finished');
      void loadStudents(true); // the list would show the session live until the next auto-refresh
      break;
    case 'interrupted':
      setWatchState('interrupted');
      logEvent(`Interrupted${observed.data.reason ? `: ${observed.data.reason}` : ''}`);
      void loadStudents(true);
      break;
    case 'feedback':
      logEvent(`Feedback: ${observed.data.content}`);
      break;
    case 'error':
      setWatchState('ended with an error');
      logEvent(`Error: ${observed.data.detail ?? observed.data.code ?? 'unknown'}`);
      break;
    default:
      logEvent(event);
  }
}

async function watch(studentId: string, studentName: string, sessionId: string, label: string): Promise<void> {
  stopWatching();
  const controller = new AbortController();
  const current: Watching = { controller, studentId, sessionId };
  watching = current;
  $('watch-student').textContent = studentName;
  $('watch-session').textContent = label;
  $('transcript').textContent = '';
  $('watch-events').replaceChildren();
  setWatchState('connecting');
  $('watch-panel').hidden = false;
  $('watch-title').scrollIntoView({ block: 'nearest' });
  try {
    const response = await authorizedFetch(`/api/observe/${encodeURIComponent(studentId)}/${encodeURIComponent(sessionId)}/stream`, {
      headers: { accept: 'text/event-stream' },
      signal: controller.signal,
    });
    if (!response.ok) throw await problemOf(response);
    setWatchState('live');
    await readSse(response, handleStreamEvent);
    if (watching === current && $('watch-state').textContent === 'live') setWatchState('stream closed');
  } catch (error) {
    if (controller.signal.aborted) return;
    setWatchState('not available');
    say(`Cannot watch this session: ${describe(error)}`, 'error');
  }
}

async function interrupt(event: SubmitEvent): Promise<void> {
  event.preventDefault();
  if (!watching) return;
  const reason = $<HTMLInputElement>('interrupt-reason').value.trim();
  try {
    await api(`/api/sessions/${encodeURIComponent(watching.sessionId)}/interrupt`, { method: 'POST', body: reason ? { reason } : {} });
    say('Interrupt sent.');
    $<HTMLInputElement>('interrupt-reason').value = '';
  } catch (error) {
    say(`Could not interrupt: ${describe(error)}`, 'error');
  }
}

async function sendFeedback(event: SubmitEvent): Promise<void> {
  event.preventDefault();
  if (!watching) return;
  const field = $<HTMLTextAreaElement>('feedback-message');
  const message = field.value.trim();
  if (!message) return;
  try {
    await api(`/api/sessions/${encodeURIComponent(watching.sessionId)}/feedback`, { method: 'POST', body: { message } });
    say('Feedback sent.');
    field.value = '';
  } catch (error) {
    say(`Could not send feedback: ${describe(error)}`, 'error');
  }
}

// ---------------------------------------------------------------- credits

/** One key per intended allocation: a retried submit of the same form cannot allocate twice. */
let allocationKey: { key: string; fingerprint: string } | null = null;

async function allocate(event: SubmitEvent): Promise<void> {
  event.preventDefault();
  let userId = $<HTMLSelectElement>('allocate-user').value;
  let who = students.find((s) => s.id === userId)?.username ?? '';
  const other = $<HTMLInputElement>('allocate-other');
  if (other.value.trim()) {
    const user = await pickedUser(other).catch(() => null);
    if (!user) {
      say('Choose the user from the suggestions (type part of the name or email).', 'error');
      return;
    }
    userId = user.id;
    who = user.username;
  }
  const credits = Number($<HTMLInputElement>('allocate-credits').value);
  const expiry = $<HTMLInputElement>('allocate-expiry').value;
  const notes = $<HTMLInputElement>('allocate-notes').value.trim();
  if (!userId) {
    say('Choose who gets the credits.', 'error');
    return;
  }
  const body: Record<string, unknown> = { userId, credits };
  if (expiry) body.expiryDays = Number(expiry);
  if (notes) body.notes = notes;
  const fingerprint = JSON.stringify(body);
  if (allocationKey?.fingerprint !== fingerprint) allocationKey = { key: crypto.randomUUID(), fingerprint };
  try {
    const answer = await api<{ newBalance?: number }>('/api/credits/allocate', { method: 'POST', body, headers: { 'idempotency-key': allocationKey.key } });
    allocationKey = null;
    say(`Allocated ${credits} credits to ${who}${answer?.newBalance !== undefined ? `; new balance ${answer.newBalance}` : ''}.`);
    $<HTMLInputElement>('allocate-credits').value = '';
    $<HTMLInputElement>('allocate-notes').value = '';
    other.value = '';
    void loadStudents(true);
  } catch (error) {
    say(`Could not allocate: ${describe(error)}`, 'error');
  }
}

// ---------------------------------------------------------------- admin console

let usersPage = 1;
const USERS_LIMIT = 20;

async function loadUsers(): Promise<void> {
  const params = new URLSearchParams({ page: String(usersPage), limit: String(USERS_LIMIT) });
  const search = $<HTMLInputElement>('users-query').value.trim();
  const role = $<HTMLSelectElement>('users-role').value;
  if (search) params.set('search', search);
  if (role) params.set('role', role);
  try {
    const answer = await api<{ users: User[]; total?: number }>(`/api/admin/users?${params}`);
    renderUsers(answer.users, answer.total);
  } catch (error) {
    say(`Could not load users: ${describe(error)}`, 'error');
  }
}

function renderUsers(users: User[], total?: number): void {
  const body = $('users-table').querySelector('tbody') as HTMLTableSectionElement;
  body.replaceChildren(
    ...users.map((user) => {
      const role = el('select', { 'aria-label': `Role of ${user.username}` }) as HTMLSelectElement;
      for (const option of ['enduser', 'supervisor', 'admin']) role.append(el('option', { value: option }, option));
      role.value = user.role;
      role.addEventListener('change', () => void updateUser(user, { role: role.value }));
      const disabled = user.status === 'disabled';
      const toggle = el('button', { type: 'button', class: disabled ? 'small secondary' : 'small danger' }, disabled ? 'Enable' : 'Disable');
      toggle.setAttribute('aria-label', `${disabled ? 'Enable' : 'Disable'} ${user.username}`);
      toggle.addEventListener('click', () => void updateUser(user, { status: disabled ? 'active' : 'disabled' }));
      return el(
        'tr',
        {},
        el('th', { scope: 'row' }, user.username),
        el('td', {}, user.email),
        el('td', {}, role),
        el('td', {}, `${user.status ?? ''} `, toggle),
      );
    }),
  );
  const pages = total === undefined ? undefined : Math.max(1, Math.ceil(total / USERS_LIMIT));
  $('users-page').textContent = pages ? `Page ${usersPage} of ${pages}` : `Page ${usersPage}`;
  $<HTMLButtonElement>('users-prev').disabled = usersPage <= 1;
  $<HTMLButtonElement>('users-next').disabled = pages !== undefined ? usersPage >= pages : users.length < USERS_LIMIT;
}

async function updateUser(user: User, change: { role?: string; status?: string }): Promise<void> {
  try {
    await api(`/api/admin/users/${encodeURIComponent(user.id)}`, { method: 'PATCH', body: change });
    say(`Updated ${user.username}.`);
  } catch (error) {
    say(`Could not update ${user.username}: ${describe(error)}`, 'error');
  }
  void loadUsers();
  void loadRelationships();
}

async function loadRelationships(): Promise<void> {
  try {
    const answer = await api<{ relationships: Relationship[] }>('/api/monitoring/relationships?limit=100');
    const body = $('relationships-table').querySelector('tbody') as HTMLTableSectionElement;
    body.replaceChildren(
      ...answer.relationships.map((rel) => {
        const supervisor = rel.supervisor?.username ?? 'unknown user';
        const student = rel.student?.username ?? 'unknown user';
        const remove = el('button', { type: 'button', class: 'small danger', 'aria-label': `Delete ${supervisor} supervising ${student}` }, 'Delete');
        remove.addEventListener('click', () => void deleteRelationship(rel.id));
        return el(
          'tr',
          {},
          el('td', {}, supervisor),
          el('td', {}, student),
          el('td', {}, rel.active ? 'yes' : 'no'),
          el('td', {}, formatTime(rel.since)),
          el('td', {}, remove),
        );
      }),
    );
  } catch (error) {
    say(`Could not load relationships: ${describe(error)}`, 'error');
  }
}

type PickerRole = 'supervisor' | 'enduser';
const userSearch = (search: string, role: PickerRole | undefined, limit: number) =>
  new URLSearchParams({ search, limit: String(limit), ...(role ? { role } : {}) });

/** what a user is called in the pickers: the username and the email, never a raw id */
const userLabel = (user: User) => `${user.username} <${user.email}>`;
/** users found by the pickers' searches, by label */
const pickedUsers = new Map<string, User>();

/** Fills a picker's suggestions with the users whose name or email matches what was typed (admin search). */
async function suggestUsers(input: HTMLInputElement, list: HTMLDataListElement, role?: PickerRole): Promise<void> {
  const search = input.value.trim();
  if (search.length < 2 || pickedUsers.has(search)) return;
  try {
    const answer = await api<{ users: User[] }>(`/api/admin/users?${userSearch(search, role, 10)}`);
    if (input.value.trim() !== search) return; // typed on meanwhile
    for (const user of answer.users) pickedUsers.set(userLabel(user), user);
    list.replaceChildren(...answer.users.map((user) => el('option', { value: userLabel(user) })));
  } catch (error) {
    say(`Could not search users: ${describe(error)}`, 'error');
  }
}

/** The user a picker names: a chosen suggestion, or the only user matching what was typed. */
async function pickedUser(input: HTMLInputElement, role?: PickerRole): Promise<User | null> {
  const typed = input.value.trim();
  const chosen = pickedUsers.get(typed);
  if (chosen && (!role || chosen.role === role)) return chosen;
  const answer = await api<{ users: User[] }>(`/api/admin/users?${userSearch(typed, role, 2)}`);
  return answer.users.length === 1 ? (answer.users[0] as User) : null;
}

function wirePicker(inputId: string, listId: string, role?: PickerRole): void {
  const input = $<HTMLInputElement>(inputId);
  const list = $<HTMLDataListElement>(listId);
  let timer: number | undefined;
  input.addEventListener('input', () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(() => void suggestUsers(input, list, role), 250);
  });
}

async function createRelationship(event: SubmitEvent): Promise<void> {
  event.preventDefault();
  const supervisorInput = $<HTMLInputElement>('rel-supervisor');
  const studentInput = $<HTMLInputElement>('rel-student');
  let supervisorId = '';
  let studentId = '';
  try {
    const [supervisor, student] = await Promise.all([pickedUser(supervisorInput, 'supervisor'), pickedUser(studentInput, 'enduser')]);
    if (!supervisor || !student) {
      say(`Choose the ${supervisor ? 'student' : 'supervisor'} from the suggestions (type part of the name or email).`, 'error');
      return;
    }
    supervisorId = supervisor.id;
    studentId = student.id;
  } catch (error) {
    say(`Could not search users: ${describe(error)}`, 'error');
    return;
  }
  try {
    await api('/api/monitoring/relationships', { method: 'POST', body: { supervisorId, studentId } });
    say('Relationship created.');
    $<HTMLInputElement>('rel-student').value = '';
  } catch (error) {
    say(`Could not create the relationship: ${describe(error)}`, 'error');
  }
  void loadRelationships();
  void loadStudents(true);
}

async function deleteRelationship(id: string): Promise<void> {
  try {
    await api(`/api/monitoring/relationships/${encodeURIComponent(id)}`, { method: 'DELETE' });
    say('Relationship deleted.');
  } catch (error) {
    say(`Could not delete the relationship: ${describe(error)}`, 'error');
  }
  void loadRelationships();
  void loadStudents(true);
}

// ---------------------------------------------------------------- models and chatflows (admin)

/** users named in access lists, by id (admin lookups; an id auth does not know stays "unknown user") */
const knownUsers = new Map<string, User | null>();

async function learnUsers(ids: string[]): Promise<void> {
  const unknown = [...new Set(ids)].filter((id) => !knownUsers.has(id));
  await Promise.all(
    unknown.map(async (id) => {
      const user = await api<{ user: User }>(`/api/admin/users/${encodeURIComponent(id)}`).catch(() => null);
      knownUsers.set(id, user?.user ?? null);
    }),
  );
}

const nameOf = (id: string) => knownUsers.get(id)?.username ?? 'unknown user';

/** who may use a model or chatflow besides admins (who may use everything) */
function accessText(isPublic: boolean | undefined, roles: string[] = [], users: string[] = []): string {
  if (isPublic) return 'everyone';
  const parts = [roles.length ? `roles: ${roles.join(', ')}` : '', users.length ? `users: ${users.map(nameOf).join(', ')}` : ''].filter(Boolean);
  return parts.length ? parts.join('; ') : 'admins only';
}

const pricesCell = (prices: Prices | null) =>
  prices ? el('td', {}, `${prices.inputPer1k} / ${prices.outputPer1k}`) : el('td', {}, el('span', { class: 'error' }, 'no price'));

async function loadCatalog(): Promise<void> {
  try {
    const [models, flows] = await Promise.all([
      api<{ models: CatalogModel[] }>('/api/chat/models/catalog'),
      api<{ chatflows: Chatflow[] }>('/api/chat/chatflows'),
    ]);
    await learnUsers([...models.models.flatMap((model) => model.access.users ?? []), ...flows.chatflows.flatMap((flow) => flow.allowedUsers)]);
    renderModels(models.models);
    renderChatflows(flows.chatflows);
  } catch (error) {
    say(`Could not load models and chatflows: ${describe(error)}`, 'error');
  }
}

function renderModels(models: CatalogModel[]): void {
  const body = $('models-table').querySelector('tbody') as HTMLTableSectionElement;
  body.replaceChildren(
    ...models.map((model) => {
      const state = !model.configured ? 'provider not configured' : model.enabled ? (model.prices ? 'enabled' : 'enabled, unpriced') : 'disabled';
      const toggle = el('button', { type: 'button', class: model.enabled ? 'small danger' : 'small secondary' }, model.enabled ? 'Disable' : 'Enable');
      toggle.setAttribute('aria-label', `${model.enabled ? 'Disable' : 'Enable'} model ${model.id}`);
      toggle.addEventListener('click', () => void changeModel(model.id, { enabled: !model.enabled }));
      return el(
        'tr',
        { 'data-model-id': model.id },
        el('th', { scope: 'row' }, model.displayName, el('br'), el('code', {}, model.id)),
        el('td', {}, `${model.provider} `, el('span', { class: 'muted' }, model.upstreamModel)),
        el('td', {}, accessText(model.access.public, model.access.roles, model.access.users)),
        pricesCell(model.prices),
        el('td', {}, state),
        el('td', {}, toggle),
      );
    }),
  );
}

function renderChatflows(flows: Chatflow[]): void {
  const body = $('chatflows-table').querySelector('tbody') as HTMLTableSectionElement;
  body.replaceChildren(
    ...flows.map((flow) => {
      const label = flow.displayName;
      const visibility = el('button', { type: 'button', class: 'small secondary' }, flow.isPublic ? 'Make private' : 'Make public');
      visibility.setAttribute('aria-label', `${flow.isPublic ? 'Make private' : 'Make public'} chatflow ${label}`);
      visibility.addEventListener('click', () => void changeChatflow(flow, { isPublic: !flow.isPublic }));
      return chatflowRow(flow, visibility);
    }),
  );
  $('chatflows-empty').hidden = flows.length > 0;
}

/** The allowed users of a chatflow by name, each removable, and a picker (name or email) to add one. */
function allowedUsersEditor(flow: Chatflow): HTMLElement {
  const label = flow.displayName;
  const allowed = el(
    'ul',
    { class: 'plain', 'aria-label': `Allowed users of ${label}` },
    ...flow.allowedUsers.map((id) => {
      const remove = el('button', { type: 'button', class: 'small secondary', 'aria-label': `Remove ${nameOf(id)} from ${label}` }, 'Remove');
      remove.addEventListener('click', () => void changeChatflow(flow, { allowedUsers: flow.allowedUsers.filter((other) => other !== id) }));
      return el('li', {}, `${nameOf(id)} `, remove);
    }),
  );
  const listId = `allow-${flow.id}-options`;
  const input = el('input', {
    type: 'search',
    list: listId,
    autocomplete: 'off',
    'aria-label': `Add a user to ${label} (name or email)`,
    size: '20',
  }) as HTMLInputElement;
  const options = el('datalist', { id: listId }) as HTMLDataListElement;
  let timer: number | undefined;
  input.addEventListener('input', () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(() => void suggestUsers(input, options), 250);
  });
  const add = el('button', { type: 'submit', class: 'small' }, 'Add user');
  add.setAttribute('aria-label', `Add the user to ${label}`);
  const form = el('form', { class: 'inline' }, input, options, add);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void (async () => {
      const user = await pickedUser(input).catch(() => null);
      if (!user) return say('Choose the user from the suggestions (type part of the name or email).', 'error');
      knownUsers.set(user.id, user);
      await changeChatflow(flow, { allowedUsers: [...new Set([...flow.allowedUsers, user.id])] });
    })();
  });
  return el('div', {}, allowed, form);
}

function chatflowRow(flow: Chatflow, visibility: HTMLElement): HTMLElement {
  const label = flow.displayName;
  return el(
    'tr',
    { 'data-chatflow-id': flow.id },
    el('th', { scope: 'row' }, label, flow.displayName !== flow.name ? el('span', { class: 'muted' }, ` (${flow.name} in Flowise)`) : ''),
    el('td', {}, accessText(flow.isPublic, flow.allowedRoles, flow.allowedUsers)),
    pricesCell(flow.prices),
    el('td', {}, flow.available ? 'available' : 'retired (gone from Flowise)'),
    el('td', {}, visibility, allowedUsersEditor(flow)),
  );
}

async function changeModel(id: string, change: { enabled: boolean }): Promise<void> {
  try {
    await api(`/api/chat/models/${encodeURIComponent(id)}`, { method: 'PATCH', body: change });
    say(`Model ${id} ${change.enabled ? 'enabled' : 'disabled'}.`);
  } catch (error) {
    say(`Could not change model ${id}: ${describe(error)}`, 'error');
  }
  void loadCatalog();
}

async function changeChatflow(flow: Chatflow, change: { isPublic?: boolean; allowedUsers?: string[] }): Promise<void> {
  try {
    await api(`/api/chat/chatflows/${encodeURIComponent(flow.id)}`, { method: 'PATCH', body: change });
    say(`Chatflow ${flow.displayName} updated.`);
  } catch (error) {
    say(`Could not update chatflow ${flow.displayName}: ${describe(error)}`, 'error');
  }
  void loadCatalog();
}

async function syncChatflows(): Promise<void> {
  const report = $('sync-report');
  report.textContent = 'Syncing with Flowise…';
  try {
    const answer = await api<SyncReport>('/api/chat/chatflows/sync', { method: 'POST' });
    const list = (label: string, names: string[]) => (names.length ? `${label}: ${names.join(', ')}` : '');
    report.textContent =
      [
        list(
          'added',
          answer.added.map((flow) => flow.name),
        ),
        list(
          'renamed',
          answer.renamed.map((flow) => `${flow.from} → ${flow.to}`),
        ),
        list('retired', answer.retired),
        list('restored', answer.restored),
      ]
        .filter(Boolean)
        .join('; ') || `No changes (${answer.unchanged} unchanged).`;
  } catch (error) {
    report.textContent = `Sync failed: ${describe(error)}`;
  }
  void loadCatalog();
}

// ---------------------------------------------------------------- wiring

function onSubmit(id: string, handler: (event: SubmitEvent) => Promise<void>): void {
  $(id).addEventListener('submit', (event) => void handler(event as SubmitEvent));
}

onSubmit('login-form', signIn);
onSubmit('interrupt-form', interrupt);
onSubmit('feedback-form', sendFeedback);
onSubmit('allocate-form', allocate);
onSubmit('relationship-form', createRelationship);
wirePicker('rel-supervisor', 'rel-supervisor-options', 'supervisor');
wirePicker('rel-student', 'rel-student-options', 'enduser');
onSubmit('supervisor-form', async (event) => {
  event.preventDefault();
  const input = $<HTMLInputElement>('supervisor-pick');
  if (!input.value.trim()) viewedSupervisor = null;
  else {
    const found = await pickedUser(input, 'supervisor').catch(() => null);
    if (!found) {
      say('Choose the supervisor from the suggestions (type part of the name or email).', 'error');
      return;
    }
    viewedSupervisor = found;
  }
  say(viewedSupervisor ? `Showing the students of ${viewedSupervisor.username}.` : 'Showing your students.');
  await loadStudents();
});
wirePicker('supervisor-pick', 'supervisor-pick-options', 'supervisor');
wirePicker('allocate-other', 'allocate-other-options');
onSubmit('users-search', async (event) => {
  event.preventDefault();
  usersPage = 1;
  await loadUsers();
});
$('users-prev').addEventListener('click', () => {
  usersPage = Math.max(1, usersPage - 1);
  void loadUsers();
});
$('users-next').addEventListener('click', () => {
  usersPage++;
  void loadUsers();
});
$('refresh-students').addEventListener('click', () => void loadStudents());
$('sync-chatflows').addEventListener('click', () => void syncChatflows());
$('stop-watching').addEventListener('click', stopWatching);
$('sign-out').addEventListener('click', () => void signOut());

if (currentSession()) showApp();
