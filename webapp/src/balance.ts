// The credits balance shown in the header on every screen; any screen asks for a fresh read after spending.
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.ts';

export interface Balance {
  available: number;
  reserved: number;
}

let balance: Balance | null = null;
const listeners = new Set<(balance: Balance | null) => void>();

export async function refreshBalance(): Promise<Balance | null> {
  try {
    const answer = await api<Balance>('/api/credits/balance');
    balance = { available: answer.available, reserved: answer.reserved };
  } catch {
    // keep the last known figure; the header says it may be stale only when there is none
  }
  for (const listener of listeners) listener(balance);
  return balance;
}

/** Re-reads until nothing is reserved any more (a stream's charge lands a moment after it ends), bounded. */
export async function refreshBalanceUntilSettled(maxTries = 10): Promise<void> {
  for (let attempt = 0; attempt < maxTries; attempt++) {
    const read = await refreshBalance();
    if (!read || read.reserved === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 300 * (attempt + 1)));
  }
}

export function useBalance(): Balance | null {
  const [value, setValue] = useState(balance);
  useEffect(() => {
    listeners.add(setValue);
    return () => listeners.delete(setValue);
  }, []);
  return value;
}

export function clearBalance(): void {
  balance = null;
  for (const listener of listeners) listener(null);
}
