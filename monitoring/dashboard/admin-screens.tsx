// Admin screens: model prices (accounting's, changed with PUT /api/models/prices/:modelId; new reservations use
// them) and any user's API keys (auth's list with last use, accounting's spend; delete), the user found by name or
// email.
import { api, describe } from '@platform/webapp/api';
import { type ApiKey, loadKeys, type Spend } from '@platform/webapp/api-keys';
import { TableHead } from '@platform/webapp/table';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { type FoundUser, UserSearch } from './user-search.tsx';

interface Price {
  modelId: string;
  displayName: string;
  inputPer1k: number;
  outputPer1k: number;
  updatedAt: string;
}

const when = (iso: string | undefined | null, none: string) => (iso ? new Date(iso).toLocaleString() : none);

function PriceInput(props: { label: string; value: string; onChange: (value: string) => void }) {
  return (
    <input
      type="number"
      min={1}
      step={1}
      required
      size={6}
      aria-label={props.label}
      value={props.value}
      onInput={(e) => props.onChange((e.target as HTMLInputElement).value)}
    />
  );
}

function PriceRow(props: { price: Price; onSaved: (message: string) => void }) {
  const { price } = props;
  const [inputPer1k, setInput] = useState(String(price.inputPer1k));
  const [outputPer1k, setOutput] = useState(String(price.outputPer1k));
  const [error, setError] = useState('');
  const name = price.displayName || price.modelId;
  const save = (event: Event) => {
    event.preventDefault();
    setError('');
    api<Price>(`/api/models/prices/${encodeURIComponent(price.modelId)}`, {
      method: 'PUT',
      body: { inputPer1k: Number(inputPer1k), outputPer1k: Number(outputPer1k) },
    })
      .then((saved) => props.onSaved(`Prices of ${name} are now ${saved.inputPer1k} / ${saved.outputPer1k}.`))
      .catch((problem: unknown) => setError(describe(problem)));
  };
  return (
    <tr data-price-model={price.modelId}>
      <th scope="row">
        {name} <span class="muted">{price.modelId}</span>
      </th>
      <td>
        <form class="inline" onSubmit={save}>
          <PriceInput label={`Input price of ${name} (credits per 1,000 tokens)`} value={inputPer1k} onChange={setInput} />
          <PriceInput label={`Output price of ${name} (credits per 1,000 tokens)`} value={outputPer1k} onChange={setOutput} />
          <button type="submit" class="small" aria-label={`Save prices of ${name}`}>
            Save
          </button>
          <span class="error" role="alert">
            {error}
          </span>
        </form>
      </td>
      <td>{when(price.updatedAt, '')}</td>
    </tr>
  );
}

function PricesAdmin(props: { say: (message: string, kind?: 'info' | 'error') => void }) {
  const [prices, setPrices] = useState<Price[] | null>(null);
  const [version, setVersion] = useState(0);
  useEffect(() => {
    api<{ prices: Price[] }>('/api/models/prices')
      .then((answer) => setPrices(answer.prices))
      .catch((problem: unknown) => props.say(`Could not load the prices: ${describe(problem)}`, 'error'));
  }, [version]);
  return (
    <section aria-labelledby="prices-title">
      <h3 id="prices-title">Model prices</h3>
      <p class="note">Credits per 1,000 input / output tokens. A change applies to streams that start after it.</p>
      <div class="table-wrap">
        <table id="prices-table">
          <caption class="visually-hidden">Prices of every model accounting knows</caption>
          <TableHead columns={['Model', 'Input / output price', 'Changed']} />
          <tbody>
            {(prices ?? []).map((price) => (
              <PriceRow
                key={`${price.modelId}-${price.updatedAt}`}
                price={price}
                onSaved={(message) => {
                  props.say(message);
                  setVersion(version + 1);
                }}
              />
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

function KeyRow(props: { apiKey: ApiKey; spend: Spend | undefined; owner: FoundUser; onDeleted: () => void; say: (m: string, k?: 'info' | 'error') => void }) {
  const { apiKey, spend, owner } = props;
  const remove = () => {
    if (!window.confirm(`Delete the key “${apiKey.name}” of ${owner.username}? Programs using it stop working.`)) return;
    api(`/api/auth/api-keys/${encodeURIComponent(apiKey.id)}?${new URLSearchParams({ userId: owner.id })}`, { method: 'DELETE' })
      .then(() => {
        props.say(`Deleted the key ${apiKey.name} of ${owner.username}.`);
        props.onDeleted();
      })
      .catch((problem: unknown) => props.say(`Could not delete the key: ${describe(problem)}`, 'error'));
  };
  return (
    <tr data-key-name={apiKey.name}>
      <th scope="row">
        {apiKey.name} <code class="muted">{apiKey.prefix}…</code>
      </th>
      <td>{when(apiKey.createdAt, '')}</td>
      <td>{when(apiKey.expiresAt, 'never')}</td>
      <td>{when(apiKey.lastUsedAt, 'never')}</td>
      <td class="figure" data-charged={spend?.chargedCredits ?? 0}>
        {spend?.chargedCredits ?? 0}
        {spend?.heldCredits ? <span class="muted"> (+{spend.heldCredits} held)</span> : null}
      </td>
      <td>{apiKey.creditLimit ?? spend?.creditLimit ?? 'none'}</td>
      <td>
        <button type="button" class="small danger" aria-label={`Delete the key ${apiKey.name} of ${owner.username}`} onClick={remove}>
          Delete
        </button>
      </td>
    </tr>
  );
}

function KeysAdmin(props: { say: (message: string, kind?: 'info' | 'error') => void }) {
  const [owner, setOwner] = useState<FoundUser | null>(null);
  const [loaded, setLoaded] = useState<Awaited<ReturnType<typeof loadKeys>> | null>(null);
  const [version, setVersion] = useState(0);
  const ownerId = owner?.id;
  useEffect(() => {
    setLoaded(null);
    if (!ownerId) return;
    loadKeys(ownerId)
      .then(setLoaded)
      .catch((problem: unknown) => props.say(`Could not load the keys: ${describe(problem)}`, 'error'));
  }, [ownerId, version]);
  return (
    <section aria-labelledby="keys-title">
      <h3 id="keys-title">API keys</h3>
      <UserSearch id="keys-user" label="Keys of (name or email)" action="Show keys" onPick={setOwner} />
      {owner && loaded ? (
        <>
          <p class="note" id="keys-owner">
            Keys of <strong>{owner.username}</strong>: {loaded.keys.length}
            {loaded.spendError ? ` (spend unknown: ${loaded.spendError})` : ''}
          </p>
          <div class="table-wrap">
            <table id="keys-table">
              <caption class="visually-hidden">API keys of {owner.username} with last use and spend</caption>
              <TableHead columns={['Key', 'Created', 'Expires', 'Last used', 'Credits spent', 'Credit limit', '']} />
              <tbody>
                {loaded.keys.map((apiKey) => (
                  <KeyRow
                    key={apiKey.id}
                    apiKey={apiKey}
                    spend={loaded.spend.get(apiKey.id)}
                    owner={owner}
                    say={props.say}
                    onDeleted={() => setVersion(version + 1)}
                  />
                ))}
              </tbody>
            </table>
          </div>
        </>
      ) : null}
    </section>
  );
}

/** Draws the admin screens (prices, API keys) into `container`; `say` reports in the dashboard's status line. */
export function showAdminScreens(container: HTMLElement, say: (message: string, kind?: 'info' | 'error') => void): void {
  render(
    <>
      <PricesAdmin say={say} />
      <KeysAdmin say={say} />
    </>,
    container,
  );
}

export function hideAdminScreens(container: HTMLElement): void {
  render(null, container);
}
