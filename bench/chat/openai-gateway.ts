// The OpenAI-compatible route through the gateway (issue 13): time to the first content chunk of
// `POST /v1/chat/completions` with `stream: true`, through the real gateway (shipped config: API-key resolution
// and token minting, revocation, rate limits, stream caps, long-lived pool) in front of a chat child, against the
// local provider's own time to first delta, side by side: one at a time (provider, API key, access token, in turn)
// and 100 at once (100 users, one stream each, with API keys).
// BENCH_BASELINE_DIR (another checkout, e.g. a copy of main): its chat and gateway run too, measured in the same
// turns, so a change is judged against its baseline in one run.

import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { apiKeyRedisKeys, loadModelCatalog } from '@platform/shared-types';
import { connectRedis } from '@platform/shared-types/stores';
import type { TestAuth } from '@platform/shared-types/testing';
import { testActor } from '@platform/shared-types/testing';
import { type Agent, request } from 'undici';
import { LocalProvider } from '../../chat/src/providers/local-provider.ts';
import { type Child, chatDir, gatewayDir, startChild } from './children.ts';

const SEQUENTIAL = Number(process.env.BENCH_OPENAI_SEQUENTIAL ?? 20);
const AT_ONCE = 100;
const KEY_USES = 10;
const root = new URL('../..', import.meta.url).pathname;

export interface OpenAiFigures {
  providerOne: number[];
  providerMany: number[];
  /** through the gateway with an API key, one at a time */
  gatewayOne: number[];
  /** the same with an access token */
  tokenOne: number[];
  /** BENCH_BASELINE_DIR's chat and gateway with an API key, one at a time (empty without it) */
  baselineOne: number[];
  gatewayMany: number[];
  completedMany: number;
}

/** the local provider's own time to first delta, `concurrent` streams at once, in this process */
export async function providerFirstDeltas(tokens: number, delayMs: number, concurrent: number): Promise<number[]> {
  const provider = new LocalProvider({ tokens, tokenDelayMs: delayMs });
  const model = loadModelCatalog().find((m) => m.provider === 'local') as ReturnType<typeof loadModelCatalog>[number];
  return Promise.all(
    Array.from({ length: concurrent }, async () => {
      const started = performance.now();
      let first = Number.NaN;
      for await (const event of provider.stream({
        model,
        turns: [{ role: 'user', content: 'bench' }],
        maxOutputTokens: tokens,
        sessionId: 's',
        signal: AbortSignal.timeout(60_000),
      }))
        if (event.type === 'delta' && Number.isNaN(first)) first = performance.now() - started;
      return first;
    }),
  );
}

/** a chunk whose delta carries text (the first chunk only names the role, with empty content) */
const CONTENT = /"delta":\{"content":"[^"]/;

async function firstChunk(gatewayUrl: string, credential: string, agent: Agent, message: string): Promise<{ first: number; done: boolean }> {
  const t0 = performance.now();
  const res = await request(`${gatewayUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${credential}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'local-dev', messages: [{ role: 'user', content: message }], stream: true }),
    dispatcher: agent,
  });
  if (res.statusCode !== 200) {
    process.stderr.write(`gateway answered ${res.statusCode}: ${await res.body.text()}\n`);
    return { first: Number.NaN, done: false };
  }
  let text = '';
  let first = Number.NaN;
  for await (const chunk of res.body) {
    text += chunk.toString();
    if (Number.isNaN(first) && CONTENT.test(text)) first = performance.now() - t0;
  }
  return { first, done: text.includes('data: [DONE]') };
}

/** chat's own stand-in for auth's key writes: the Redis entry DESIGN 5b describes, for a fresh user */
async function apiKeyFor(redis: Awaited<ReturnType<typeof connectRedis>>, written: string[]): Promise<string> {
  const actor = testActor('enduser');
  const key = `sk-${randomBytes(32).toString('base64url')}`;
  const entryKey = apiKeyRedisKeys.entry(createHash('sha256').update(key).digest('hex'));
  const entry = { keyId: randomUUID(), userId: actor.userId, username: actor.username, email: actor.email, role: actor.role };
  await redis.set(entryKey, JSON.stringify(entry), 'EX', 3600);
  written.push(entryKey);
  return key;
}

async function startGateway(name: string, dir: string, auth: TestAuth, redisUrl: string, chatUrl: string): Promise<Child> {
  return startChild(name, gatewayDir(dir), {
    ...auth.secrets,
    REDIS_URL: redisUrl,
    CHAT_URL: chatUrl,
    RATE_LIMIT_PREFIX: `bench-oa:${randomBytes(4).toString('hex')}:`,
  });
}

export async function measureOpenAiThroughGateway(options: {
  chatUrl: string;
  auth: TestAuth;
  redisUrl: string;
  agent: Agent;
  tokens: number;
  delayMs: number;
  /** the environment a baseline chat child needs (same as the measured one's) */
  chatEnv: Record<string, string>;
}): Promise<OpenAiFigures> {
  const { auth, agent } = options;
  const children: Child[] = [];
  const redis = await connectRedis(options.redisUrl);
  const keys: string[] = [];
  try {
    const gateway = await startGateway('gateway', root, auth, options.redisUrl, options.chatUrl);
    children.push(gateway);
    const baselineDir = process.env.BENCH_BASELINE_DIR;
    let baselineUrl: string | undefined;
    if (baselineDir) {
      const chat = await startChild('baseline-chat', chatDir(baselineDir), options.chatEnv);
      children.push(chat);
      const baselineGateway = await startGateway('baseline-gateway', baselineDir, auth, options.redisUrl, chat.url);
      children.push(baselineGateway);
      baselineUrl = baselineGateway.url;
    }
    // warm-up streams (JIT, pools, Redis scripts), not measured
    for (let i = 0; i < 3; i++) {
      await firstChunk(gateway.url, await apiKeyFor(redis, keys), agent, 'warm up');
      await firstChunk(gateway.url, auth.token(testActor('enduser')), agent, 'warm up');
      if (baselineUrl) await firstChunk(baselineUrl, await apiKeyFor(redis, keys), agent, 'warm up');
    }
    const figures: OpenAiFigures = { providerOne: [], providerMany: [], gatewayOne: [], tokenOne: [], baselineOne: [], gatewayMany: [], completedMany: 0 };
    // a key serves KEY_USES sequential calls (well inside a user's stream starts per minute); each is resolved once
    // before the measure, so the calls find it cached, as a program's key that is in use is
    const keyCount = Math.ceil(SEQUENTIAL / KEY_USES);
    const ourKeys = await Promise.all(Array.from({ length: keyCount }, () => apiKeyFor(redis, keys)));
    const baselineKeys = await Promise.all(Array.from({ length: keyCount }, () => apiKeyFor(redis, keys)));
    for (const [url, list] of [[gateway.url, ourKeys] as const, ...(baselineUrl ? [[baselineUrl, baselineKeys] as const] : [])])
      for (const k of list) await firstChunk(url, k, agent, 'warm up');
    const key = (list: string[], turn: number) => list[Math.floor(turn / KEY_USES)] as string;
    const turns: Array<() => Promise<void>> = [
      async () => {
        figures.providerOne.push(...(await providerFirstDeltas(options.tokens, options.delayMs, 1)));
      },
      async () => {
        figures.gatewayOne.push((await firstChunk(gateway.url, key(ourKeys, figures.gatewayOne.length), agent, 'one at a time')).first);
      },
      async () => {
        figures.tokenOne.push((await firstChunk(gateway.url, auth.token(testActor('enduser')), agent, 'one at a time')).first);
      },
      ...(baselineUrl
        ? [
            async () => {
              figures.baselineOne.push((await firstChunk(baselineUrl, key(baselineKeys, figures.baselineOne.length), agent, 'one at a time')).first);
            },
          ]
        : []),
    ];
    // every case in every turn, the order rotated and reversed every other turn, so all see the same machine load
    for (let i = 0; i < SEQUENTIAL; i++) {
      const order = turns.map((_, j) => turns[(i + j) % turns.length] as () => Promise<void>);
      for (const turn of i % 2 === 0 ? order : order.reverse()) await turn();
    }
    figures.providerMany = await providerFirstDeltas(options.tokens, options.delayMs, AT_ONCE);
    const manyKeys = await Promise.all(Array.from({ length: AT_ONCE }, () => apiKeyFor(redis, keys)));
    const many = await Promise.all(manyKeys.map((k, i) => firstChunk(gateway.url, k, agent, `at once ${i}`)));
    figures.gatewayMany = many.map((r) => r.first).filter((v) => !Number.isNaN(v));
    figures.completedMany = many.filter((r) => r.done).length;
    return figures;
  } finally {
    for (const child of children.reverse()) await child.stop();
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  }
}

export const OPENAI_AT_ONCE = AT_ONCE;
export const OPENAI_SEQUENTIAL = SEQUENTIAL;
