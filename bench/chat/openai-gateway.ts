// The OpenAI-compatible route through the gateway (issue 13): time to the first content chunk of
// `POST /v1/chat/completions` with `stream: true`, through the real gateway (shipped config: token check,
// revocation, rate limits, stream caps, long-lived pool) in front of the chat child, against the local provider's
// own time to first delta, side by side: one at a time and 100 at once (100 users, one stream each).

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { loadModelCatalog } from '@platform/shared-types';
import type { TestAuth } from '@platform/shared-types/testing';
import { testActor } from '@platform/shared-types/testing';
import { type Agent, request } from 'undici';
import { LocalProvider } from '../../chat/src/providers/local-provider.ts';

const SEQUENTIAL = 20;
const AT_ONCE = 100;
const root = new URL('../..', import.meta.url).pathname;

export interface OpenAiFigures {
  providerOne: number[];
  providerMany: number[];
  gatewayOne: number[];
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

async function firstChunk(gatewayUrl: string, token: string, agent: Agent, message: string): Promise<{ first: number; done: boolean }> {
  const t0 = performance.now();
  const res = await request(`${gatewayUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
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

export async function measureOpenAiThroughGateway(options: {
  chatUrl: string;
  auth: TestAuth;
  redisUrl: string;
  agent: Agent;
  tokens: number;
  delayMs: number;
}): Promise<OpenAiFigures> {
  const { auth, agent } = options;
  const gateway = spawn(process.execPath, ['src/main.ts'], {
    cwd: join(root, 'gateway'),
    env: {
      ...process.env,
      ...auth.secrets,
      NODE_ENV: 'production',
      LOG_LEVEL: 'info',
      PORT: '0',
      OPS_PORT: '0',
      REDIS_URL: options.redisUrl,
      CHAT_URL: options.chatUrl,
      RATE_LIMIT_PREFIX: `bench-oa:${randomBytes(4).toString('hex')}:`,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const gatewayUrl = await new Promise<string>((resolve, reject) => {
      let buffer = '';
      gateway.stdout.on('data', (chunk: Buffer) => {
        buffer += chunk.toString();
        const match = /"url":"(http:\/\/[^"]+)"/.exec(buffer);
        if (match) resolve(match[1] as string);
        if (buffer.length > 100_000) buffer = buffer.slice(-1000);
      });
      gateway.once('exit', (code) => reject(new Error(`gateway exited with ${code}`)));
      setTimeout(() => reject(new Error('gateway did not start')), 30_000).unref();
    });
    // one warm-up stream (JIT, pools, Redis scripts), not measured
    await firstChunk(gatewayUrl, auth.token(testActor('enduser')), agent, 'warm up');
    const providerOne: number[] = [];
    const gatewayOne: number[] = [];
    // alternating, so both see the same machine load
    for (let i = 0; i < SEQUENTIAL; i++) {
      providerOne.push(...(await providerFirstDeltas(options.tokens, options.delayMs, 1)));
      gatewayOne.push((await firstChunk(gatewayUrl, auth.token(testActor('enduser')), agent, `one at a time ${i}`)).first);
    }
    const providerMany = await providerFirstDeltas(options.tokens, options.delayMs, AT_ONCE);
    const tokens = Array.from({ length: AT_ONCE }, () => auth.token(testActor('enduser')));
    const many = await Promise.all(tokens.map((token, i) => firstChunk(gatewayUrl, token, agent, `at once ${i}`)));
    return {
      providerOne,
      providerMany,
      gatewayOne,
      gatewayMany: many.map((r) => r.first).filter((v) => !Number.isNaN(v)),
      completedMany: many.filter((r) => r.done).length,
    };
  } finally {
    if (gateway.exitCode === null) {
      gateway.kill('SIGTERM');
      await new Promise((resolve) => gateway.once('exit', resolve));
    }
  }
}

export const OPENAI_AT_ONCE = AT_ONCE;
export const OPENAI_SEQUENTIAL = SEQUENTIAL;
