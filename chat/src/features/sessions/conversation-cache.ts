import { randomUUID } from 'node:crypto';
import { ApiError, type Logger } from '@platform/shared-types';
import type { Redis } from 'ioredis';
import type { MessageDoc, SessionDoc } from './sessions-dal.ts';

/** A stored message as the prompt uses it (supervisor notes and empty replies never reach the prompt). */
export type HistoryTurn = Pick<MessageDoc, 'role' | 'content'>;

/** What a stream needs of its session before the first token. */
export interface Conversation {
  userId: string;
  modelId: string;
  titled: boolean;
  history: HistoryTurn[];
}

/**
 * What a stream holding the lock may write back when it lets go: the generation it set when it took the lock, and
 * the Redis server it saw (`run` is empty when the stream may not write back: a mutation ran or was running).
 */
export interface CacheTicket {
  generation: string;
  run: string;
}

/** the generation and server seen before a store read (a miss), checked again when the lock is taken */
export interface MissSeen {
  generation: string;
  run: string;
}

export type StreamStart =
  | { kind: 'hit'; ticket: CacheTicket; conversation: Conversation }
  | { kind: 'miss'; seen: MissSeen }
  | { kind: 'foreign' }
  | { kind: 'busy' };

/** the prompt's turns of stored messages, in their stored order */
export function historyTurns(messages: HistoryTurn[]): HistoryTurn[] {
  return messages.filter((m) => m.role !== 'supervisor' && m.content.length > 0).map((m) => ({ role: m.role, content: m.content }));
}

// The Redis server's run id changes with every restart: an entry (or a ticket) from before a restart, restored
// from a snapshot with an older generation, is never taken for current.
const RUN_ID = "local function run_id() return string.match(redis.call('INFO', 'server'), 'run_id:(%w+)') end\n";

// KEYS: lock, entry, generation, busy. ARGV: holder, lock ttl ms, user id, fresh generation, generation ttl s.
// A valid entry of another user answers 'foreign' without touching the lock; a hit takes the lock and moves the
// generation, so the entry is spent (a stream that dies before it lets go leaves no valid entry behind).
const START = `${RUN_ID}
local current = redis.call('GET', KEYS[3]) or ''
local run = run_id()
local e = redis.call('HMGET', KEYS[2], 'gen', 'run', 'owner', 'body')
if current ~= '' and e[1] == current and e[2] == run and redis.call('EXISTS', KEYS[4]) == 0 then
  if e[3] ~= ARGV[3] then return {'foreign'} end
  if not redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return {'busy'} end
  redis.call('SET', KEYS[3], ARGV[4], 'EX', ARGV[5])
  return {'hit', run, e[4]}
end
return {'miss', current, run}`;

// KEYS: lock, generation, busy. ARGV: holder, lock ttl ms, seen generation, seen run ('' when the stream does not
// use the cache), fresh generation, generation ttl s. Write-back is allowed only when nothing moved the generation
// since the store read and no mutation is running.
const LOCK = `${RUN_ID}
if not redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return false end
local current = redis.call('GET', KEYS[2]) or ''
local run = run_id()
local cacheable = ARGV[4] ~= '' and current == ARGV[3] and run == ARGV[4] and redis.call('EXISTS', KEYS[3]) == 0
redis.call('SET', KEYS[2], ARGV[5], 'EX', ARGV[6])
if cacheable then return run end
return ''`;

// KEYS: lock, entry, generation. ARGV: holder, ticket generation, ticket run, fresh generation, generation ttl s,
// owner, body ('' writes nothing), entry ttl s. Always moves the generation (even when the lock had expired: this
// stream wrote, so a store read running alongside must not be cached).
const RELEASE = `${RUN_ID}
local owned = redis.call('GET', KEYS[1]) == ARGV[1]
if owned then redis.call('DEL', KEYS[1]) end
local current = redis.call('GET', KEYS[3])
redis.call('SET', KEYS[3], ARGV[4], 'EX', ARGV[5])
if owned and ARGV[7] ~= '' and ARGV[3] ~= '' and current == ARGV[2] and run_id() == ARGV[3] then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[2], 'gen', ARGV[4], 'run', ARGV[3], 'owner', ARGV[6], 'body', ARGV[7])
  redis.call('EXPIRE', KEYS[2], ARGV[8])
  return 1
end
return 0`;

// KEYS: generation, entry, busy. ARGV: fresh generation, generation ttl s, owner, body, entry ttl s.
const CREATED = `${RUN_ID}
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('HSET', KEYS[2], 'gen', ARGV[1], 'run', run_id(), 'owner', ARGV[3], 'body', ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[5])
return 1`;

// KEYS: generation, busy. ARGV: fresh generation, generation ttl s, busy ttl ms.
const MUTATION_BEGIN = `redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1`;

// KEYS: generation, busy, entry. ARGV: fresh generation, generation ttl s.
const MUTATION_END = `redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
if redis.call('DECR', KEYS[2]) <= 0 then redis.call('DEL', KEYS[2]) end
redis.call('DEL', KEYS[3])
return 1`;

export interface ConversationCacheOptions {
  /** builds a key under chat's prefix (the stream lock's key must be the bus's) */
  key: (...parts: string[]) => string;
  lockTtlMs: number;
  /** how long an entry lives without a stream writing it back */
  ttlSeconds: number;
  /** a conversation larger than this (JSON) is not cached: its streams read the store */
  maxBytes: number;
  /** how long a mutation keeps streams from caching if it never says it ended */
  mutationTtlMs: number;
  logger: Logger;
}

/**
 * The conversation a stream needs (owner, model, titled flag, the history the prompt uses) in Redis, read in the
 * same round trip as the session's stream lock; FerretDB stays the truth. An entry is valid only for the session's
 * generation it was written at (and the Redis server that holds it). Every writer moves the generation: a stream
 * when it takes the lock and when it lets go (writing the new entry back only if nothing else moved it meanwhile),
 * a rename or delete before and after its store write (with a busy marker while it runs), so no entry outlives a
 * change of the store. A miss reads the store as before and is written back by the stream's release.
 */
export class ConversationCache {
  readonly #redis: Redis;
  readonly #options: ConversationCacheOptions;

  constructor(redis: Redis, options: ConversationCacheOptions) {
    this.#redis = redis;
    this.#options = options;
  }

  #keys(sessionId: string) {
    const { key } = this.#options;
    return {
      lock: key('lock', sessionId),
      entry: key('conversation', sessionId),
      generation: key('conversation-gen', sessionId),
      busy: key('conversation-busy', sessionId),
    };
  }

  get #generationTtl(): string {
    return String(this.#options.ttlSeconds * 2);
  }

  /** Takes the lock and returns the conversation when a valid entry of `userId` exists; otherwise what a miss saw. */
  async start(sessionId: string, holder: string, userId: string): Promise<StreamStart> {
    const k = this.#keys(sessionId);
    const args = [holder, String(this.#options.lockTtlMs), userId, randomUUID(), this.#generationTtl];
    const answer = (await this.#redis.eval(START, 4, k.lock, k.entry, k.generation, k.busy, ...args)) as string[];
    const [kind, a, b] = answer;
    if (kind === 'foreign' || kind === 'busy') return { kind };
    if (kind === 'hit') {
      const body = JSON.parse(b as string) as Omit<Conversation, 'userId'>;
      return { kind: 'hit', ticket: { generation: args[3] as string, run: a as string }, conversation: { userId, ...body } };
    }
    return { kind: 'miss', seen: { generation: a ?? '', run: b ?? '' } };
  }

  /** Takes the lock (undefined when another stream holds it); `seen` (a miss) allows writing back at release. */
  async lock(sessionId: string, holder: string, seen: MissSeen | undefined): Promise<CacheTicket | undefined> {
    const k = this.#keys(sessionId);
    const generation = randomUUID();
    const args = [holder, String(this.#options.lockTtlMs), seen?.generation ?? '', seen?.run ?? '', generation, this.#generationTtl];
    const run = (await this.#redis.eval(LOCK, 3, k.lock, k.generation, k.busy, ...args)) as string | null;
    return run === null ? undefined : { generation, run };
  }

  /** Lets go of the lock, writing `next` back when nothing else moved the generation since the lock; true when written. */
  async release(sessionId: string, holder: string, ticket: CacheTicket, next: Conversation | undefined): Promise<boolean> {
    const k = this.#keys(sessionId);
    const body = next ? this.#body(next) : '';
    const args = [holder, ticket.generation, ticket.run, randomUUID(), this.#generationTtl, next?.userId ?? '', body, String(this.#options.ttlSeconds)];
    return (await this.#redis.eval(RELEASE, 3, k.lock, k.entry, k.generation, ...args)) === 1;
  }

  /** A new session's entry (empty history), so its first stream needs no store read; a failure only costs that read. */
  async created(session: SessionDoc): Promise<void> {
    const sessionId = session._id.toHexString();
    const k = this.#keys(sessionId);
    const body = this.#body({ userId: session.userId, modelId: session.modelId, titled: session.titled, history: [] });
    const args = [randomUUID(), this.#generationTtl, session.userId, body, String(this.#options.ttlSeconds)];
    await this.#redis.eval(CREATED, 3, k.generation, k.entry, k.busy, ...args).catch((error: unknown) => {
      this.#options.logger.warn({ err: error, sessionId }, 'could not cache a new session; its first stream reads the store');
    });
  }

  /**
   * Runs a store write that changes the conversation (rename, delete) between two generation moves, with a busy
   * marker between them. Without Redis the write is refused (UPSTREAM_UNAVAILABLE) before it starts: an entry it
   * could not invalidate would be served stale when Redis is back.
   */
  async mutate<T>(sessionId: string, write: () => Promise<T>): Promise<T> {
    const k = this.#keys(sessionId);
    await this.#redis
      .eval(MUTATION_BEGIN, 2, k.generation, k.busy, randomUUID(), this.#generationTtl, String(this.#options.mutationTtlMs))
      .catch((error: unknown) => {
        throw new ApiError('UPSTREAM_UNAVAILABLE', 'The chat service cannot reach Redis', { cause: error });
      });
    try {
      return await write();
    } finally {
      // a failed end leaves the busy marker to expire: until then no stream writes this session's entry back
      await this.#redis.eval(MUTATION_END, 3, k.generation, k.busy, k.entry, randomUUID(), this.#generationTtl).catch((error: unknown) => {
        this.#options.logger.warn({ err: error, sessionId }, 'could not end a conversation mutation in Redis; its busy marker expires on its own');
      });
    }
  }

  /** the entry's JSON, or '' (nothing written) when it is over the size bound */
  #body(conversation: Conversation): string {
    const body = JSON.stringify({ modelId: conversation.modelId, titled: conversation.titled, history: conversation.history });
    return Buffer.byteLength(body) > this.#options.maxBytes ? '' : body;
  }
}
