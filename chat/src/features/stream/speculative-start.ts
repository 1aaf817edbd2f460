import { creditsFor, type ModelEntry, type ReservationResponse } from '@platform/shared-types';
import { chatMetrics } from '../../metrics.ts';
import type { Provider, ProviderEvent, ProviderRequest } from '../../providers/provider.ts';

/**
 * A provider stream started before its reservation is confirmed. It runs up to its first event and waits there
 * (an async iterator is pulled, never pushed), so nothing it produces reaches the client, an observer or the store
 * until `events()` is read, which the stream does only once the reservation is confirmed. `abort()` closes the
 * upstream request: a refused reservation, or a stream that never opens.
 */
export class HeldUpstream {
  readonly #controller = new AbortController();
  readonly #iterator: AsyncIterator<ProviderEvent>;
  readonly #first: Promise<IteratorResult<ProviderEvent>>;
  #read = false;

  constructor(provider: Provider, request: Omit<ProviderRequest, 'signal'>) {
    this.#iterator = provider.stream({ ...request, signal: this.#controller.signal })[Symbol.asyncIterator]();
    this.#first = this.#iterator.next();
    // observed here (a refused stream never reads it); events() rethrows it
    this.#first.catch(() => undefined);
  }

  /** closes the upstream request; a held iterator that was never read is also returned (its cleanup runs) */
  abort(): void {
    this.#controller.abort();
    if (this.#read) return;
    this.#read = true;
    this.#first.then(
      () => this.#iterator.return?.().catch(() => undefined),
      () => undefined,
    );
  }

  /** the provider's events from the first one; the live stream's `signal` stops the upstream */
  async *events(signal: AbortSignal): AsyncIterable<ProviderEvent> {
    if (this.#read) throw new Error('the held provider stream was aborted or read already');
    this.#read = true;
    const stop = () => this.#controller.abort();
    if (signal.aborted) stop();
    else signal.addEventListener('abort', stop, { once: true });
    let next: IteratorResult<ProviderEvent> | undefined;
    try {
      next = await this.#first;
      while (!next.done) {
        yield next.value;
        next = await this.#iterator.next();
      }
    } finally {
      signal.removeEventListener('abort', stop);
      if (next && !next.done) await this.#iterator.return?.().catch(() => undefined);
    }
  }
}

interface UserHint {
  available: number;
  at: number;
  /** worst cases of this instance's speculative starts whose reservations have not answered yet */
  outstanding: number;
}

interface KeyHint {
  /** null: the key has no credit limit */
  remaining: number | null;
  at: number;
  outstanding: number;
}

/** A speculative start's share of the hints, given back once its reservation answered (or failed). */
export interface HintClaim {
  release(): void;
}

/**
 * What this instance last heard from accounting about a user's available credits (and an API key's remaining
 * limit): a stream may start its provider alongside its reservation only when that answer, fresh and less the
 * worst cases of this instance's other speculative starts still waiting, covers this stream's worst case. It is
 * a hint that bounds what a refused reservation costs the platform (one provider call cut short), never a
 * decision about money: the reservation decides, and nothing produced is shown, stored or charged before it.
 * A refusal forgets the user's hint, so the next stream reserves first. Bounded: the least recently answered
 * users are dropped first.
 */
export class CreditHints {
  readonly #users = new Map<string, UserHint>();
  readonly #keys = new Map<string, KeyHint>();
  readonly #maxAgeMs: number;
  readonly #maxEntries: number;
  readonly #now: () => number;

  constructor(options: { maxAgeMs: number; maxEntries: number; now?: () => number }) {
    this.#maxAgeMs = options.maxAgeMs;
    this.#maxEntries = options.maxEntries;
    this.#now = options.now ?? Date.now;
  }

  /** a claim on the hints when they cover `worstCase` credits for this user (and key); undefined: reserve first */
  claim(userId: string, apiKeyId: string | undefined, worstCase: number): HintClaim | undefined {
    if (this.#maxAgeMs <= 0) return undefined;
    const now = this.#now();
    const user = this.#users.get(userId);
    if (!user || now - user.at > this.#maxAgeMs || user.available - user.outstanding < worstCase) return undefined;
    const key = apiKeyId === undefined ? undefined : this.#keys.get(apiKeyId);
    if (apiKeyId !== undefined) {
      if (!key || now - key.at > this.#maxAgeMs) return undefined;
      if (key.remaining !== null && key.remaining - key.outstanding < worstCase) return undefined;
    }
    user.outstanding += worstCase;
    if (key) key.outstanding += worstCase;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        user.outstanding -= worstCase;
        if (key) key.outstanding -= worstCase;
      },
    };
  }

  /** an answered reservation: the user's available credits after it, and the key's remaining limit when reported */
  learn(apiKeyId: string | undefined, answer: ReservationResponse): void {
    const at = this.#now();
    // updated in place: the claims of starts still waiting hold the same entry
    const user = this.#users.get(answer.userId) ?? { available: 0, at, outstanding: 0 };
    Object.assign(user, { available: answer.availableCredits, at });
    remember(this.#users, answer.userId, user);
    if (apiKeyId !== undefined && answer.apiKeyRemainingCredits !== undefined) {
      const key = this.#keys.get(apiKeyId) ?? { remaining: null, at, outstanding: 0 };
      Object.assign(key, { remaining: answer.apiKeyRemainingCredits, at });
      remember(this.#keys, apiKeyId, key);
    }
    trim(this.#users, this.#maxEntries);
    trim(this.#keys, this.#maxEntries);
  }

  /** a refused reservation: the next stream of this user (or through this key) reserves before its provider starts */
  forget(userId: string, apiKeyId: string | undefined): void {
    this.#users.delete(userId);
    if (apiKeyId !== undefined) this.#keys.delete(apiKeyId);
  }
}

/** re-inserted, so the map's order is the order of the last answers (the oldest first) */
function remember<T>(map: Map<string, T>, id: string, value: T): void {
  map.delete(id);
  map.set(id, value);
}

function trim<T>(map: Map<string, T>, max: number): void {
  for (const id of map.keys()) {
    if (map.size <= max) return;
    map.delete(id);
  }
}

/** the credits a reservation of this prompt holds at most (what accounting reserves, at the catalog's prices) */
export function worstCaseCredits(model: ModelEntry, reservedInputTokens: number, maxOutputTokens: number): number {
  return creditsFor(model.prices, reservedInputTokens, maxOutputTokens);
}

/** counts how a speculative start ended: its reservation confirmed it, or refused it (the provider call was cut) */
export function countSpeculation(model: ModelEntry, outcome: 'confirmed' | 'refused'): void {
  chatMetrics.speculativeStarts.inc({ model: model.id, provider: model.provider, outcome });
}
