// API keys for programs (OpenAI SDKs, scripts): create one with a name, an optional expiry and credit limit, copy
// it while it is shown (once: auth keeps only its hash), see each key's last use and spend, delete it.
import { useEffect, useState } from 'preact/hooks';
import { api, describe } from './api.ts';
import { TableHead } from './table.tsx';

export interface ApiKey {
  id: string;
  name: string;
  prefix: string;
  createdAt: string;
  expiresAt?: string;
  creditLimit?: number;
  lastUsedAt?: string;
}
export interface Spend {
  apiKeyId: string;
  creditLimit: number | null;
  chargedCredits: number;
  heldCredits: number;
  remainingCredits?: number;
}
interface CreatedKey extends ApiKey {
  key: string;
}

const when = (iso: string | undefined, none: string) => (iso ? new Date(iso).toLocaleString() : none);

/** Keys (auth) and their spend (accounting: only keys that reserved anything are listed there); an admin names whose. */
export async function loadKeys(userId?: string): Promise<{ keys: ApiKey[]; spend: Map<string, Spend>; spendError: string }> {
  const owner = userId ? `?${new URLSearchParams({ userId })}` : '';
  const [listed, spent] = await Promise.allSettled([
    api<{ apiKeys: ApiKey[] }>(`/api/auth/api-keys${owner}`),
    api<{ apiKeys: Spend[] }>(`/api/credits/api-keys${owner}`),
  ]);
  if (listed.status === 'rejected') throw listed.reason;
  const spend = new Map(spent.status === 'fulfilled' ? spent.value.apiKeys.map((s) => [s.apiKeyId, s] as const) : []);
  return { keys: listed.value.apiKeys, spend, spendError: spent.status === 'rejected' ? describe(spent.reason) : '' };
}

function optionalInt(form: HTMLFormElement, name: string): number | undefined {
  const raw = (form.elements.namedItem(name) as HTMLInputElement).value.trim();
  return raw === '' ? undefined : Number(raw);
}

function NewKey(props: { created: CreatedKey; onDone: () => void }) {
  const [copied, setCopied] = useState('');
  const copy = () => {
    navigator.clipboard
      .writeText(props.created.key)
      .then(() => setCopied('Copied to the clipboard.'))
      .catch(() => setCopied('The browser refused the clipboard: select the key and copy it by hand.'));
  };
  return (
    <section class="new-key" aria-labelledby="new-key-title">
      <h3 id="new-key-title">Your new key “{props.created.name}”</h3>
      <p class="warn">Copy it now: it is shown only this once. Anyone with it can spend your credits.</p>
      <p class="inline">
        <code id="new-api-key" class="secret">
          {props.created.key}
        </code>
        <button type="button" onClick={copy}>
          Copy
        </button>
        <button type="button" class="secondary" onClick={props.onDone}>
          Done
        </button>
      </p>
      <p class="notice" role="status">
        {copied}
      </p>
      <p class="hint">
        Use it as <code>Authorization: Bearer sk-…</code>, for example with an OpenAI SDK pointed at <code>{window.location.origin}/v1</code>.
      </p>
    </section>
  );
}

function KeyRow(props: { apiKey: ApiKey; spend: Spend | undefined; onDelete: (key: ApiKey) => Promise<void> }) {
  const { apiKey, spend } = props;
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const charged = spend?.chargedCredits ?? 0;
  const limit = apiKey.creditLimit;
  return (
    <tr data-key-id={apiKey.id}>
      <th scope="row">{apiKey.name}</th>
      <td>
        <code>{apiKey.prefix}…</code>
      </td>
      <td>{when(apiKey.createdAt, '')}</td>
      <td>{when(apiKey.expiresAt, 'Never')}</td>
      <td class="last-used" data-last-used={apiKey.lastUsedAt ?? ''}>
        {when(apiKey.lastUsedAt, 'Never used')}
      </td>
      <td class="spent" data-charged={charged} data-held={spend?.heldCredits ?? 0}>
        {charged}
        {spend?.heldCredits ? <span class="held"> (+{spend.heldCredits} held)</span> : null}
      </td>
      <td class="limit">{limit === undefined ? 'No limit' : `${Math.max(0, limit - charged - (spend?.heldCredits ?? 0))} of ${limit} left`}</td>
      <td>
        {confirming ? (
          <span class="inline">
            <button
              type="button"
              class="danger small"
              disabled={busy}
              aria-label={`Really delete ${apiKey.name}`}
              onClick={() => {
                setBusy(true);
                void props.onDelete(apiKey).finally(() => setBusy(false));
              }}
            >
              Really delete
            </button>
            <button type="button" class="secondary small" onClick={() => setConfirming(false)}>
              Keep
            </button>
          </span>
        ) : (
          <button type="button" class="secondary small" aria-label={`Delete ${apiKey.name}`} onClick={() => setConfirming(true)}>
            Delete
          </button>
        )}
      </td>
    </tr>
  );
}

export function ApiKeysScreen() {
  const [keys, setKeys] = useState<ApiKey[] | null>(null);
  const [spend, setSpend] = useState(new Map<string, Spend>());
  const [created, setCreated] = useState<CreatedKey | null>(null);
  const [error, setError] = useState('');
  const [status, setStatus] = useState('');
  const [busy, setBusy] = useState(false);

  const reload = async () => {
    try {
      const loaded = await loadKeys();
      setKeys(loaded.keys);
      setSpend(loaded.spend);
      setError(loaded.spendError ? `Could not load the spend: ${loaded.spendError}` : '');
    } catch (problem) {
      setError(`Could not load your keys: ${describe(problem)}`);
    }
  };
  useEffect(() => {
    void reload();
    // back to the tab after running a program with a key: fresh last use and spend
    const onVisible = () => {
      if (!document.hidden) void reload();
    };
    document.addEventListener('visibilitychange', onVisible);
    window.addEventListener('focus', onVisible);
    return () => {
      document.removeEventListener('visibilitychange', onVisible);
      window.removeEventListener('focus', onVisible);
    };
  }, []);

  const onCreate = (event: SubmitEvent) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const name = (form.elements.namedItem('name') as HTMLInputElement).value.trim();
    const expiresInDays = optionalInt(form, 'expiresInDays');
    const creditLimit = optionalInt(form, 'creditLimit');
    setBusy(true);
    setError('');
    setStatus('');
    api<CreatedKey>('/api/auth/api-keys', { method: 'POST', body: { name, expiresInDays, creditLimit } })
      .then(async (answer) => {
        setCreated(answer);
        form.reset();
        await reload();
      })
      .catch((problem: unknown) => setError(`Could not create the key: ${describe(problem)}`))
      .finally(() => setBusy(false));
  };

  const onDelete = async (key: ApiKey) => {
    try {
      await api(`/api/auth/api-keys/${encodeURIComponent(key.id)}`, { method: 'DELETE' });
      setStatus(`Deleted ${key.name}: it is refused from now on.`);
      if (created?.id === key.id) setCreated(null);
      await reload();
    } catch (problem) {
      setError(`Could not delete ${key.name}: ${describe(problem)}`);
    }
  };

  return (
    <>
      <section class="card" aria-labelledby="keys-title">
        <h2 id="keys-title">API keys</h2>
        <p class="note">Programs use a key instead of your password. Its calls are charged to your credits; a credit limit caps what one key may spend.</p>
        <form class="grid-form" onSubmit={onCreate} aria-label="Create an API key">
          <label for="key-name">Name</label>
          <input id="key-name" name="name" required maxLength={100} placeholder="e.g. laptop script" />
          <label for="key-expiry">Expires in days (optional)</label>
          <input id="key-expiry" name="expiresInDays" type="number" min={1} max={3650} step={1} inputMode="numeric" />
          <label for="key-limit">Credit limit (optional)</label>
          <input id="key-limit" name="creditLimit" type="number" min={0} step={1} inputMode="numeric" />
          <button type="submit" disabled={busy}>
            Create key
          </button>
        </form>
        <p class="error" role="alert">
          {error}
        </p>
        <p class="notice" role="status">
          {status}
        </p>
        {created ? <NewKey created={created} onDone={() => setCreated(null)} /> : null}
      </section>
      <section class="card" aria-labelledby="key-list-title">
        <div class="section-head">
          <h2 id="key-list-title">Your keys</h2>
          <button type="button" class="secondary small" onClick={() => void reload()}>
            Refresh
          </button>
        </div>
        {keys === null ? (
          <p class="note">Loading…</p>
        ) : keys.length === 0 ? (
          <p class="note">No keys yet.</p>
        ) : (
          <section class="table-wrap" aria-label="Your API keys" tabindex={0}>
            <table id="api-keys-table">
              <caption class="visually-hidden">Your API keys with their last use and spend</caption>
              <TableHead columns={['Name', 'Key', 'Created', 'Expires', 'Last used', 'Credits spent', 'Limit', '']} />
              <tbody>
                {keys.map((key) => (
                  <KeyRow key={key.id} apiKey={key} spend={spend.get(key.id)} onDelete={onDelete} />
                ))}
              </tbody>
            </table>
          </section>
        )}
      </section>
    </>
  );
}
