// Client-side routes under /app/ (History API): the server answers index.html for every /app/* path, so a link
// in a mail (/app/verify-email?token=...) or a reload opens the right screen.
import { useEffect, useState } from 'preact/hooks';

export const BASE = '/app';

export interface Location {
  /** the path under /app, always starting with '/' */
  path: string;
  query: URLSearchParams;
}

function current(): Location {
  const path = window.location.pathname.startsWith(BASE) ? window.location.pathname.slice(BASE.length) || '/' : '/';
  return { path, query: new URLSearchParams(window.location.search) };
}

const listeners = new Set<() => void>();
window.addEventListener('popstate', () => {
  for (const listener of listeners) listener();
});

export function navigate(to: string, options: { replace?: boolean } = {}): void {
  const url = `${BASE}${to}`;
  if (options.replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  for (const listener of listeners) listener();
}

export function useLocation(): Location {
  const [location, setLocation] = useState(current);
  useEffect(() => {
    const update = () => setLocation(current());
    listeners.add(update);
    return () => listeners.delete(update);
  }, []);
  return location;
}

/** An in-app link: a real href (open in new tab works), navigation without a reload. */
export function linkProps(to: string): { href: string; onClick: (event: MouseEvent) => void } {
  return {
    href: `${BASE}${to}`,
    onClick(event: MouseEvent) {
      if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
      event.preventDefault();
      navigate(to);
    },
  };
}
