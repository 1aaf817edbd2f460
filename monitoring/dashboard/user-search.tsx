// Finds a user by a part of the name or email (admin search in auth) and hands the chosen one on: the dashboard's
// screens never ask for a raw id.
import { api, describe } from '@platform/webapp/api';
import { useEffect, useState } from 'preact/hooks';

export interface FoundUser {
  id: string;
  username: string;
  email?: string | null;
}

const label = (user: FoundUser) => `${user.username} <${user.email ?? ''}>`;
const search = async (typed: string, limit: number) =>
  (await api<{ users: FoundUser[] }>(`/api/admin/users?${new URLSearchParams({ search: typed.trim(), limit: String(limit) })}`)).users;

/** `action` names the button (several searches share a page). */
export function UserSearch(props: { id: string; label: string; action: string; onPick: (user: FoundUser) => void }) {
  const [typed, setTyped] = useState('');
  const [found, setFound] = useState<FoundUser[]>([]);
  const [error, setError] = useState('');
  useEffect(() => {
    if (typed.trim().length < 2) return;
    const timer = setTimeout(() => {
      search(typed, 10)
        .then(setFound)
        .catch((problem: unknown) => setError(describe(problem)));
    }, 250);
    return () => clearTimeout(timer);
  }, [typed]);
  /** a chosen suggestion, else the only user matching what was typed (submitted before the suggestions came) */
  const pick = async () => {
    const chosen = found.find((u) => label(u) === typed.trim());
    if (chosen) return chosen;
    const matching = await search(typed, 2);
    return matching.length === 1 ? matching[0] : undefined;
  };
  return (
    <form
      class="inline"
      onSubmit={(event) => {
        event.preventDefault();
        pick()
          .then((user) => (user ? props.onPick(user) : setError('Choose the user from the suggestions (type part of the name or email).')))
          .catch((problem: unknown) => setError(describe(problem)));
      }}
    >
      <label for={`${props.id}-search`}>{props.label}</label>
      <input
        id={`${props.id}-search`}
        type="search"
        list={`${props.id}-options`}
        autocomplete="off"
        value={typed}
        onInput={(event) => {
          setError('');
          setTyped((event.target as HTMLInputElement).value);
        }}
      />
      <datalist id={`${props.id}-options`}>
        {found.map((user) => (
          <option key={user.id} value={label(user)} />
        ))}
      </datalist>
      <button type="submit" class="secondary">
        {props.action}
      </button>
      <span class="error" role="alert">
        {error}
      </span>
    </form>
  );
}
