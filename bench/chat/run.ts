// Chat streaming bench: 500 concurrent metered streams of the local model through ONE chat instance.
// The chat service runs as a child process (its RSS is measured alone) against the real MongoDB-compatible
// server and Redis; accounting is an in-process HTTP stand-in that speaks the /internal reservation contract
// (chat's test stand-in: initialize / finalize / abort over real HTTP with real service tokens).
// Side by side in the same run: the local provider's own time to first delta (500 concurrent in-process
// streams, same delay) and the time to first delta through chat (HTTP, reservation, MongoDB writes, SSE).
// Bounded: 500 streams of 20 tokens x 20 ms, 120 s overall.
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { connectMongo, connectRedis } from '@platform/shared-types/stores';
import { createTestAuth, storeUrls, testActor, uniqueDbName } from '@platform/shared-types/testing';
import { Agent, request } from 'undici';
import { AccountingStandIn } from '../../chat/test/support/stand-ins.ts';
import { chatDir, startChild } from './children.ts';
import { measureOpenAiThroughGateway, OPENAI_AT_ONCE, OPENAI_SEQUENTIAL, type OpenAiFigures, providerFirstDeltas } from './openai-gateway.ts';

const STREAMS = 500;
const TOKENS = 20;
const DELAY_MS = 20;
const DEADLINE = Date.now() + 120_000;
const root = new URL('../..', import.meta.url).pathname;

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
};
const rssOf = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
const ms = (value: number) => value.toFixed(1);

const providerFirstDelta = () => providerFirstDeltas(TOKENS, DELAY_MS, STREAMS);

const pass = (ok: boolean) => (ok ? 'pass' : 'short');

function openAiReport(oa: OpenAiFigures): string {
  const p50 = (values: number[]) =>
    percentile(
      values.filter((v) => !Number.isNaN(v)),
      50,
    );
  const failedOne = [oa.gatewayOne, oa.tokenOne, oa.baselineOne].flat().filter((v) => Number.isNaN(v)).length;
  const one = p50(oa.gatewayOne) / p50(oa.providerOne);
  const many = p50(oa.gatewayMany) / p50(oa.providerMany);
  const baseline =
    oa.baselineOne.length > 0
      ? `| baseline (${process.env.BENCH_BASELINE_DIR}) gateway + /v1 with an API key, one at a time (p50 / p95) | ${ms(p50(oa.baselineOne))} / ${ms(percentile(oa.baselineOne, 95))} ms | | |
| ratio baseline / provider, one at a time (p50) | ${(p50(oa.baselineOne) / p50(oa.providerOne)).toFixed(2)}x | | |
`
      : '';
  return `OpenAI-compatible route (issue 13): \`POST /v1/chat/completions\` with \`stream: true\` through the real gateway (shipped config: API-key resolution and token minting, revocation, user rate limit, stream caps, long-lived pool) in front of the same chat instance; time to the first chunk with text, against the local provider's own time to first delta measured in the same run (one at a time: ${OPENAI_SEQUENTIAL} turns, each measuring the provider, an API key and an access token${oa.baselineOne.length > 0 ? ' and the baseline' : ''}, the order rotated every turn; at once: ${OPENAI_AT_ONCE} users with one API key and one stream each). 1-minute load average ${(loadavg()[0] ?? 0).toFixed(2)} on ${availableParallelism()} cores after the measure.

| figure | value | target | result |
|---|---|---|---|
| provider alone, one at a time / ${OPENAI_AT_ONCE} at once (p50) | ${ms(p50(oa.providerOne))} / ${ms(p50(oa.providerMany))} ms | | |
| gateway + /v1 with an API key, one at a time (p50 / p95) | ${ms(p50(oa.gatewayOne))} / ${ms(percentile(oa.gatewayOne, 95))} ms | | |
| ratio gateway + /v1 with an API key / provider, one at a time (p50) | ${one.toFixed(2)}x | <= 1.5x | ${pass(one <= 1.5)} |
| gateway + /v1 with an access token, one at a time (p50 / p95) | ${ms(p50(oa.tokenOne))} / ${ms(percentile(oa.tokenOne, 95))} ms | | |
| ratio gateway + /v1 with an access token / provider, one at a time (p50) | ${(p50(oa.tokenOne) / p50(oa.providerOne)).toFixed(2)}x | | |
${baseline}| one-at-a-time calls without a content chunk (refused or failed) | ${failedOne} | 0 | ${pass(failedOne === 0)} |
| gateway + /v1, ${OPENAI_AT_ONCE} at once (p50 / p95) | ${ms(p50(oa.gatewayMany))} / ${ms(percentile(oa.gatewayMany, 95))} ms | | |
| ratio gateway + /v1 / provider, ${OPENAI_AT_ONCE} at once (p50) | ${many.toFixed(2)}x | | |
| /v1 streams ended with [DONE], ${OPENAI_AT_ONCE} at once | ${oa.completedMany} / ${OPENAI_AT_ONCE} | all | ${pass(oa.completedMany === OPENAI_AT_ONCE)} |
`;
}

async function main() {
  const auth = createTestAuth();
  const urls = storeUrls();
  const accounting = await new AccountingStandIn(auth).start();
  const mongoDb = uniqueDbName('chat_bench');
  const redisPrefix = `chat-bench-${process.pid}:`;
  const chatEnv: Record<string, string> = {
    ...auth.secrets,
    MONGO_URL: urls.MONGO_URL,
    MONGO_DB: mongoDb,
    REDIS_URL: urls.REDIS_URL,
    REDIS_PREFIX: redisPrefix,
    ACCOUNTING_URL: accounting.url,
    LOCAL_MODEL_TOKENS: String(TOKENS),
    LOCAL_MODEL_TOKEN_DELAY_MS: String(DELAY_MS),
  };
  const chat = await startChild('chat', chatDir(root), chatEnv);
  const child = chat.process;
  const chatUrl = chat.url;
  const agent = new Agent({ connections: STREAMS + 50, pipelining: 0, headersTimeout: 60_000, bodyTimeout: 60_000 });
  const stopAll = async () => {
    await chat.stop();
    await agent.close();
    await accounting.stop();
    const mongo = await connectMongo(urls.MONGO_URL, mongoDb);
    await mongo.dropDatabase();
    await mongo.close();
    const redis = await connectRedis(urls.REDIS_URL);
    const keys = await redis.keys(`${redisPrefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  };

  try {
    if (process.env.BENCH_CHAT_OPENAI_ONLY === '1') {
      // the /v1 measure alone (quick runs while working on it)
      const oa = await measureOpenAiThroughGateway({ chatUrl, auth, redisUrl: urls.REDIS_URL, agent, tokens: TOKENS, delayMs: DELAY_MS, chatEnv });
      console.log(`<!-- report -->\n## chat /v1\n\n${openAiReport(oa)}\n<!-- /report -->`);
      if (oa.completedMany !== OPENAI_AT_ONCE) process.exitCode = 1;
      return;
    }
    const actors = Array.from({ length: STREAMS }, () => testActor('enduser'));
    // the identity signature is bound to the request (DESIGN section 3): signed per call, as the gateway does
    const headers = (actor: (typeof actors)[number], path: string) => ({
      ...auth.identityHeaders(actor, undefined, { method: 'POST', path, service: 'chat' }),
      authorization: `Bearer ${auth.token(actor)}`,
      'content-type': 'application/json',
    });
    // sessions first (not measured), a few at a time
    const sessions: string[] = [];
    for (let i = 0; i < STREAMS; i += 50) {
      const batch = await Promise.all(
        actors.slice(i, i + 50).map(async (actor) => {
          const res = await request(`${chatUrl}/api/chat/sessions`, {
            method: 'POST',
            headers: headers(actor, '/api/chat/sessions'),
            body: JSON.stringify({ modelId: 'local-dev' }),
            dispatcher: agent,
          });
          return ((await res.body.json()) as { session: { id: string } }).session.id;
        }),
      );
      sessions.push(...batch);
    }
    // warm up one stream, then the baseline RSS
    const warm = await request(`${chatUrl}/api/chat/sessions/${sessions[0]}/stream`, {
      method: 'POST',
      headers: headers(actors[0] as (typeof actors)[number], `/api/chat/sessions/${sessions[0]}/stream`),
      body: JSON.stringify({ message: 'warm up' }),
      dispatcher: agent,
    });
    await warm.body.text();
    const rssBase = rssOf(child.pid as number);

    const providerTtfd = await providerFirstDelta();
    // the store's own pace at this concurrency, side by side: 500 concurrent inserts into a scratch collection
    const probe = await connectMongo(urls.MONGO_URL, mongoDb);
    const probeStarted = performance.now();
    await Promise.all(Array.from({ length: STREAMS }, (_, i) => probe.collection('bench_probe').insertOne({ i, text: 'probe' })));
    const insertsPerSecond = STREAMS / ((performance.now() - probeStarted) / 1000);
    const loadAtStart = loadavg()[0] ?? 0;
    await probe.close();
    // one stream at a time first: chat's own latency without queueing behind 499 others
    const sequentialTtfd: number[] = [];
    for (let i = 1; i <= 20; i++) {
      const t0 = performance.now();
      const res = await request(`${chatUrl}/api/chat/sessions/${sessions[i]}/stream`, {
        method: 'POST',
        headers: headers(actors[i] as (typeof actors)[number], `/api/chat/sessions/${sessions[i]}/stream`),
        body: JSON.stringify({ message: 'one at a time' }),
        dispatcher: agent,
      });
      let text = '';
      let first = Number.NaN;
      for await (const chunk of res.body) {
        text += chunk.toString();
        if (Number.isNaN(first) && text.includes('event: delta')) first = performance.now() - t0;
      }
      sequentialTtfd.push(first);
    }

    let open = 0;
    let peakOpen = 0;
    let rssPeak = rssBase;
    const sampler = setInterval(() => {
      if (open >= peakOpen) {
        peakOpen = open;
        rssPeak = Math.max(rssPeak, rssOf(child.pid as number));
      }
    }, 20);
    const started = performance.now();
    const results = await Promise.all(
      sessions.map(async (sessionId, i) => {
        const t0 = performance.now();
        let firstDelta = Number.NaN;
        let done = false;
        try {
          const res = await request(`${chatUrl}/api/chat/sessions/${sessionId}/stream`, {
            method: 'POST',
            headers: headers(actors[i] as (typeof actors)[number], `/api/chat/sessions/${sessions[i]}/stream`),
            body: JSON.stringify({ message: `bench message ${i}` }),
            dispatcher: agent,
          });
          if (res.statusCode !== 200) {
            await res.body.text();
            return { firstDelta, done };
          }
          open++;
          let text = '';
          for await (const chunk of res.body) {
            text += chunk.toString();
            if (Number.isNaN(firstDelta) && text.includes('event: delta')) firstDelta = performance.now() - t0;
            if (Date.now() > DEADLINE) break;
          }
          open--;
          done = text.includes('event: done');
        } catch {
          // counted as not completed
        }
        return { firstDelta, done };
      }),
    );
    const wallMs = performance.now() - started;
    clearInterval(sampler);
    const completed = results.filter((r) => r.done).length;
    const chatTtfd = results.map((r) => r.firstDelta).filter((v) => !Number.isNaN(v));
    const charged = accounting.calls.filter((c) => c.path.endsWith('/finalize') && c.status === 200).length;
    const providerP50 = percentile(providerTtfd, 50);
    const chatP50 = percentile(chatTtfd, 50);
    const ratio = chatP50 / providerP50;
    const rssPerStream = (rssPeak - rssBase) / Math.max(1, peakOpen);
    // the burst's store work for scale: every stream's five writes at the store's measured insert rate
    const storeQueueMs = ((STREAMS * 5) / insertsPerSecond) * 1000;
    const check = await connectMongo(urls.MONGO_URL, mongoDb);
    const storedReplies = await check.collection('messages').countDocuments({ role: 'assistant', status: 'complete' });
    await check.close();
    // after the counts above: the OpenAI-compatible route through the gateway, side by side with the provider
    // (BENCH_CHAT_SKIP_OPENAI=1 leaves it out, for quick runs of the /api/chat figures)
    const oa =
      process.env.BENCH_CHAT_SKIP_OPENAI === '1'
        ? undefined
        : await measureOpenAiThroughGateway({ chatUrl, auth, redisUrl: urls.REDIS_URL, agent, tokens: TOKENS, delayMs: DELAY_MS, chatEnv });
    console.log('<!-- report -->');
    console.log(`## chat

${STREAMS} concurrent SSE streams of the local model (${TOKENS} tokens x ${DELAY_MS} ms) through one chat instance (child process) on the real MongoDB-compatible server and Redis, each with a reservation and a finalize at an in-process HTTP stand-in for accounting (the /internal contract, real service tokens). Side by side: the local provider's own time to first delta with ${STREAMS} concurrent in-process streams.

| figure | value | target | result |
|---|---|---|---|
| streams completed / started | ${completed} / ${STREAMS} | all | ${pass(completed === STREAMS)} |
| replies stored complete | ${storedReplies} (+21 warm-up and sequential) | one per stream | ${pass(storedReplies === STREAMS + 21)} |
| finalize charges landed | ${charged} (+21 warm-up and sequential) | one per stream | ${pass(charged === STREAMS + 21)} |
| time to first delta, provider alone (p50 / p95) | ${ms(providerP50)} / ${ms(percentile(providerTtfd, 95))} ms | | |
| time to first delta through chat, one stream at a time (p50 of 20) | ${ms(percentile(sequentialTtfd, 50))} ms | | |
| ratio through chat / provider, one at a time (p50) | ${(percentile(sequentialTtfd, 50) / providerP50).toFixed(2)}x | | |
| time to first delta through chat, 500 at once (p50 / p95) | ${ms(chatP50)} / ${ms(percentile(chatTtfd, 95))} ms | | |
| ratio through chat / provider, 500 at once (p50) | ${ratio.toFixed(2)}x | <= 5x | ${pass(ratio <= 5)} |
| MongoDB-compatible server alone: ${STREAMS} concurrent inserts | ${insertsPerSecond.toFixed(0)} inserts/s | | |
| wall time for all streams | ${ms(wallMs)} ms | | |
| chat RSS: baseline / at ${peakOpen} open streams | ${mb(rssBase)} / ${mb(rssPeak)} MB | | |
| RSS per open stream | ${(rssPerStream / 1024).toFixed(1)} KB | | |

${oa ? openAiReport(oa) : '(the /v1 part was skipped: BENCH_CHAT_SKIP_OPENAI=1)'}

Before its first token a stream waits for the HTTP request, one Redis script (the session's stream lock and its conversation from the cache: owner, model, titled flag, history; the sessions were created through the API, which caches them) and the reservation call; it reads nothing from the MongoDB-compatible server. Its writes (the user message and the first-message title, then the reply) run alongside the provider and are done before the terminal event. All of it on ${availableParallelism()} cores shared with the client and the stores (1-minute load average ${loadAtStart.toFixed(2)} before the streams, ${(loadavg()[0] ?? 0).toFixed(2)} after). The store's pace for scale: at the insert rate measured above, the ${STREAMS * 5} store operations of the burst (user message, title, reply, session touch, outbox checkpoint per stream) take ${ms(storeQueueMs)} ms of store time, against a first-delta p50 of ${ms(chatP50)} ms through chat with ${STREAMS} at once; the one-at-a-time figure is chat's own overhead.`);
    console.log('<!-- /report -->');
    // every stream's reply stored and its charge landed, or the bench fails (the ratio is reported, pass or short)
    if (completed !== STREAMS || storedReplies !== STREAMS + 21 || charged !== STREAMS + 21 || (oa && oa.completedMany !== OPENAI_AT_ONCE))
      process.exitCode = 1;
  } finally {
    await stopAll();
  }
}

await main();
