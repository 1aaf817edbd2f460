// Chat streaming bench: 500 concurrent metered streams of the local model through ONE chat instance.
// The chat service runs as a child process (its RSS is measured alone) against the real MongoDB-compatible
// server and Redis; accounting is an in-process HTTP stand-in that speaks the /internal reservation contract
// (chat's test stand-in: initialize / finalize / abort over real HTTP with real service tokens).
// Side by side in the same run: the local provider's own time to first delta (500 concurrent in-process
// streams, same delay) and the time to first delta through chat (HTTP, reservation, MongoDB writes, SSE).
// Bounded: 500 streams of 20 tokens x 20 ms, each burst cut after 120 s.
// The floor (bench/chat/floor-server.ts, after chat): a bare metered SSE server measured by the same client.
// BENCH_BASELINE_DIR (a copy of main): its chat child too, with its own stores and stand-in, one burst each per
// round (BENCH_CHAT_ROUNDS, default 1), the order alternating by round (BENCH_CHAT_BASELINE_FIRST=1: baseline first).
import { appendFileSync, readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { connectMongo, connectRedis } from '@platform/shared-types/stores';
import { createTestAuth, storeUrls, type TestAuth, testActor, uniqueDbName } from '@platform/shared-types/testing';
import { Agent, request } from 'undici';
import { AccountingStandIn } from '../../chat/test/support/stand-ins.ts';
import { type Child, chatDir, startChild } from './children.ts';
import { measureOpenAiThroughGateway, OPENAI_AT_ONCE, OPENAI_SEQUENTIAL, type OpenAiFigures, providerFirstDeltas } from './openai-gateway.ts';

const STREAMS = 500;
const TOKENS = 20;
const DELAY_MS = 20;
/** a burst (or a single stream) is cut after this */
const STREAM_DEADLINE_MS = 120_000;
const root = new URL('../..', import.meta.url).pathname;

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
};
const rssOf = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
/** CPU time (user + system) of a process so far, in ms (at the kernel's tick, 10 ms) */
const cpuMsOf = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10;
};
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

type Actor = ReturnType<typeof testActor>;

/** one chat child under measure: its own database, Redis prefix and accounting stand-in (so its counts are its own) */
interface Target {
  name: string;
  chat: Child;
  accounting: AccountingStandIn;
  mongoDb: string;
  redisPrefix: string;
  chatEnv: Record<string, string>;
}

interface Burst {
  ttfd: number[];
  completed: number;
  wallMs: number;
  peakOpen: number;
  rssPeak: number;
  /** chat's CPU ms until half the streams had their first delta, and for the whole burst */
  cpuAtHalf: number;
  cpuMs: number;
}

async function startTarget(name: string, dir: string, auth: TestAuth, urls: ReturnType<typeof storeUrls>): Promise<Target> {
  const accounting = await new AccountingStandIn(auth).start();
  const mongoDb = uniqueDbName(name === 'chat' ? 'chat_bench' : 'chat_bench_base');
  const redisPrefix = `${name}-bench-${process.pid}:`;
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
  const chat = await startChild(name, chatDir(dir), chatEnv);
  return { name, chat, accounting, mongoDb, redisPrefix, chatEnv };
}

/** the floor (bench/chat/floor-server.ts): a bare metered SSE server with its own stand-in, measured by the same client */
async function startFloor(auth: TestAuth): Promise<{ chat: Child; accounting: AccountingStandIn }> {
  const accounting = await new AccountingStandIn(auth).start();
  const env = { ...auth.secrets, ACCOUNTING_URL: accounting.url, LOCAL_MODEL_TOKENS: String(TOKENS), LOCAL_MODEL_TOKEN_DELAY_MS: String(DELAY_MS) };
  return { chat: await startChild('floor', join(root, 'bench/chat'), env, 'floor-server.ts'), accounting };
}

async function stopTarget(target: Target, urls: ReturnType<typeof storeUrls>): Promise<void> {
  await target.chat.stop();
  await target.accounting.stop();
  const mongo = await connectMongo(urls.MONGO_URL, target.mongoDb);
  await mongo.dropDatabase();
  await mongo.close();
  const redis = await connectRedis(urls.REDIS_URL);
  const keys = await redis.keys(`${target.redisPrefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
}

/** the identity signature is bound to the request (DESIGN section 3): signed per call, as the gateway does */
const headersFor = (auth: TestAuth) => (actor: Actor, path: string) => ({
  ...auth.identityHeaders(actor, undefined, { method: 'POST', path, service: 'chat' }),
  authorization: `Bearer ${auth.token(actor)}`,
  'content-type': 'application/json',
});

/** one session per actor (not measured), a few at a time */
async function makeSessions(target: Target, auth: TestAuth, agent: Agent, actors: Actor[]): Promise<string[]> {
  const headers = headersFor(auth);
  const sessions: string[] = [];
  for (let i = 0; i < actors.length; i += 50) {
    const batch = await Promise.all(
      actors.slice(i, i + 50).map(async (actor) => {
        const res = await request(`${target.chat.url}/api/chat/sessions`, {
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
  return sessions;
}

/** time to first delta of one stream, and whether it ended with `done` */
async function timedStream(
  target: Pick<Target, 'chat'>,
  auth: TestAuth,
  agent: Agent,
  actor: Actor,
  sessionId: string,
  message: string,
  on: { open?: () => void; firstDelta?: () => void } = {},
) {
  const t0 = performance.now();
  const deadline = Date.now() + STREAM_DEADLINE_MS;
  let firstDelta = Number.NaN;
  let headers = Number.NaN;
  let done = false;
  let opened = false;
  try {
    const path = `/api/chat/sessions/${sessionId}/stream`;
    const res = await request(`${target.chat.url}${path}`, {
      method: 'POST',
      headers: headersFor(auth)(actor, path),
      body: JSON.stringify({ message }),
      dispatcher: agent,
    });
    headers = performance.now() - t0;
    if (res.statusCode !== 200) {
      await res.body.text();
      return { firstDelta, done, opened, t0, headers };
    }
    opened = true;
    on.open?.();
    let text = '';
    for await (const chunk of res.body) {
      text += chunk.toString();
      if (Number.isNaN(firstDelta) && text.includes('event: delta')) {
        firstDelta = performance.now() - t0;
        on.firstDelta?.();
      }
      if (Date.now() > deadline) break;
    }
    done = text.includes('event: done');
  } catch {
    // counted as not completed
  }
  return { firstDelta, done, opened, t0, headers };
}

/** all streams at once, one per session; RSS sampled while they are open */
async function burst(target: Pick<Target, 'chat'>, auth: TestAuth, agent: Agent, actors: Actor[], sessions: string[]): Promise<Burst> {
  const pid = target.chat.process.pid as number;
  let open = 0;
  let peakOpen = 0;
  let rssPeak = rssOf(pid);
  const sampler = setInterval(() => {
    if (open >= peakOpen) {
      peakOpen = open;
      rssPeak = Math.max(rssPeak, rssOf(pid));
    }
  }, 20);
  // chat's CPU time (not the wall clock, which the machine's other work stretches) until half the streams had their
  // first delta, and for the whole burst: the start work a median stream waited for
  const cpuStart = cpuMsOf(pid);
  let firstDeltas = 0;
  let cpuAtHalf = Number.NaN;
  const onFirstDelta = () => {
    if (++firstDeltas === Math.ceil(sessions.length / 2)) cpuAtHalf = cpuMsOf(pid) - cpuStart;
  };
  const started = performance.now();
  const results = await Promise.all(
    sessions.map(async (sessionId, i) => {
      const result = await timedStream(target, auth, agent, actors[i] as Actor, sessionId, `bench message ${i}`, {
        open: () => open++,
        firstDelta: onFirstDelta,
      });
      if (result.opened) open--;
      return result;
    }),
  );
  const wallMs = performance.now() - started;
  const cpuMs = cpuMsOf(pid) - cpuStart;
  clearInterval(sampler);
  // BENCH_CHAT_TIMELINE=file: every stream's start (from the burst's), response head and first delta, appended per burst
  if (process.env.BENCH_CHAT_TIMELINE) {
    const timeline = results.map((r) => [r.t0 - started, r.headers, r.firstDelta].map((v) => Math.round(v * 10) / 10));
    appendFileSync(process.env.BENCH_CHAT_TIMELINE, `${JSON.stringify({ target: target.name, timeline })}\n`);
  }
  return {
    ttfd: results.map((r) => r.firstDelta).filter((v) => !Number.isNaN(v)),
    completed: results.filter((r) => r.done).length,
    wallMs,
    peakOpen,
    rssPeak,
    cpuAtHalf,
    cpuMs,
  };
}

/**
 * The floor's bursts (as many as chat's rounds, with users and session ids of their own), after the warm-up chat had:
 * one stream, then 20 one at a time, so both are measured equally warm.
 */
async function floorFirstDeltas(auth: TestAuth, agent: Agent, rounds: number): Promise<Burst[]> {
  const floor = await startFloor(auth);
  try {
    for (let i = 0; i < 21; i++) await timedStream(floor, auth, agent, testActor('enduser'), `floor-warm-${i}`, 'warm up');
    const bursts: Burst[] = [];
    for (let round = 0; round < rounds; round++) {
      const actors = Array.from({ length: STREAMS }, () => testActor('enduser'));
      const sessions = actors.map((_, i) => `floor-${round}-${i}`);
      bursts.push(await burst(floor, auth, agent, actors, sessions));
    }
    return bursts;
  } finally {
    await floor.chat.stop();
    await floor.accounting.stop();
  }
}

/** replies stored complete and finalize charges landed at the target's stand-in */
async function counts(target: Target, urls: ReturnType<typeof storeUrls>): Promise<{ stored: number; charged: number }> {
  const charged = target.accounting.calls.filter((c) => c.path.endsWith('/finalize') && c.status === 200).length;
  const check = await connectMongo(urls.MONGO_URL, target.mongoDb);
  const stored = await check.collection('messages').countDocuments({ role: 'assistant', status: 'complete' });
  await check.close();
  return { stored, charged };
}

async function main() {
  const auth = createTestAuth();
  const urls = storeUrls();
  const ours = await startTarget('chat', root, auth, urls);
  const baselineDir = process.env.BENCH_BASELINE_DIR;
  const rounds = Math.max(1, Number(process.env.BENCH_CHAT_ROUNDS ?? 1));
  const targets = [ours];
  const child = ours.chat.process;
  const chatUrl = ours.chat.url;
  const { chatEnv } = ours;
  const agent = new Agent({ connections: STREAMS + 50, pipelining: 0, headersTimeout: 60_000, bodyTimeout: 60_000 });
  const stopAll = async () => {
    await agent.close();
    for (const target of targets) await stopTarget(target, urls);
  };

  try {
    if (process.env.BENCH_CHAT_OPENAI_ONLY === '1') {
      // the /v1 measure alone (quick runs while working on it)
      const oa = await measureOpenAiThroughGateway({ chatUrl, auth, redisUrl: urls.REDIS_URL, agent, tokens: TOKENS, delayMs: DELAY_MS, chatEnv });
      console.log(`<!-- report -->\n## chat /v1\n\n${openAiReport(oa)}\n<!-- /report -->`);
      if (oa.completedMany !== OPENAI_AT_ONCE) process.exitCode = 1;
      return;
    }
    // BENCH_BASELINE_DIR: that checkout's chat child too, with its own stores and stand-in, bursts alternating
    const baseline = baselineDir ? await startTarget('baseline-chat', baselineDir, auth, urls) : undefined;
    if (baseline) targets.push(baseline);
    // per round and target: its own users and fresh sessions (a first message titles its session, as in the burst)
    const plan = Array.from({ length: rounds }, () =>
      targets.map((target) => ({ target, actors: Array.from({ length: STREAMS }, () => testActor('enduser')) })),
    );
    const prepared = await Promise.all(plan.flat().map(async (p) => ({ ...p, sessions: await makeSessions(p.target, auth, agent, p.actors) })));
    // warm up one stream per target, then the baseline RSS
    for (const target of targets) {
      const actor = testActor('enduser');
      const [sessionId] = await makeSessions(target, auth, agent, [actor]);
      await timedStream(target, auth, agent, actor, sessionId as string, 'warm up');
    }
    const rssBase = rssOf(child.pid as number);

    const providerTtfd = await providerFirstDelta();
    // the store's own pace at this concurrency, side by side: 500 concurrent inserts into a scratch collection
    const probe = await connectMongo(urls.MONGO_URL, ours.mongoDb);
    const probeStarted = performance.now();
    await Promise.all(Array.from({ length: STREAMS }, (_, i) => probe.collection('bench_probe').insertOne({ i, text: 'probe' })));
    const insertsPerSecond = STREAMS / ((performance.now() - probeStarted) / 1000);
    const loadAtStart = loadavg()[0] ?? 0;
    await probe.close();
    // one stream at a time first: chat's own latency without queueing behind 499 others
    const sequentialTtfd: number[] = [];
    const seqActors = Array.from({ length: 20 }, () => testActor('enduser'));
    const seqSessions = await makeSessions(ours, auth, agent, seqActors);
    for (let i = 0; i < 20; i++)
      sequentialTtfd.push((await timedStream(ours, auth, agent, seqActors[i] as Actor, seqSessions[i] as string, 'one at a time')).firstDelta);

    // rounds alternate which target goes first (ours, baseline; baseline, ours; ...)
    const bursts = new Map<Target, Burst[]>(targets.map((t) => [t, []]));
    const loads: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const order = prepared.slice(round * targets.length, (round + 1) * targets.length);
      // BENCH_CHAT_BASELINE_FIRST=1: the baseline opens the first round
      if ((round + (process.env.BENCH_CHAT_BASELINE_FIRST === '1' ? 1 : 0)) % 2 === 1) order.reverse();
      for (const p of order) {
        bursts.get(p.target)?.push(await burst(p.target, auth, agent, p.actors, p.sessions));
        loads.push(loadavg()[0] ?? 0);
      }
    }
    // the floor after the rounds: a bare metered SSE server (bench/chat/floor-server.ts), the same client and burst
    const floorBursts = await floorFirstDeltas(auth, agent, rounds);
    const floorTtfd = { ttfd: floorBursts.flatMap((b) => b.ttfd), completed: floorBursts.reduce((sum, b) => sum + b.completed, 0) };
    const ourBursts = bursts.get(ours) as Burst[];
    const completed = ourBursts.reduce((sum, b) => sum + b.completed, 0);
    const chatTtfd = ourBursts.flatMap((b) => b.ttfd);
    const wallMs = ourBursts.reduce((sum, b) => sum + b.wallMs, 0) / ourBursts.length;
    const peakOpen = Math.max(...ourBursts.map((b) => b.peakOpen));
    const rssPeak = Math.max(...ourBursts.map((b) => b.rssPeak));
    const { stored: storedReplies, charged } = await counts(ours, urls);
    const expected = STREAMS * rounds;
    const providerP50 = percentile(providerTtfd, 50);
    const chatP50 = percentile(chatTtfd, 50);
    const ratio = chatP50 / providerP50;
    const rssPerStream = (rssPeak - rssBase) / Math.max(1, peakOpen);
    // the burst's store work for scale: every stream's five writes at the store's measured insert rate
    const storeQueueMs = ((STREAMS * 5) / insertsPerSecond) * 1000;
    let baselineRows = '';
    let baselineOk = true;
    if (baseline) {
      const baseBursts = bursts.get(baseline) as Burst[];
      const baseTtfd = baseBursts.flatMap((b) => b.ttfd);
      const baseCompleted = baseBursts.reduce((sum, b) => sum + b.completed, 0);
      const base = await counts(baseline, urls);
      baselineOk = baseCompleted === expected && base.stored === expected + 1 && base.charged === expected + 1;
      const perBurst = (list: Burst[]) => list.map((b) => ms(percentile(b.ttfd, 50))).join(', ');
      const cpuPerBurst = (list: Burst[]) => list.map((b) => `${b.cpuAtHalf.toFixed(0)} of ${b.cpuMs.toFixed(0)}`).join(', ');
      baselineRows = `| baseline (${baselineDir}): time to first delta, ${STREAMS} at once (p50 / p95) | ${ms(percentile(baseTtfd, 50))} / ${ms(percentile(baseTtfd, 95))} ms | | |
| baseline: ratio / provider, ${STREAMS} at once (p50) | ${(percentile(baseTtfd, 50) / providerP50).toFixed(2)}x | | |
| baseline: streams completed, replies stored, charges landed | ${baseCompleted} / ${expected}, ${base.stored}, ${base.charged} (+1 warm-up) | all | ${pass(baselineOk)} |
| p50 per burst, this checkout / baseline (in run order: ${rounds > 1 ? 'alternating' : ''}${process.env.BENCH_CHAT_BASELINE_FIRST === '1' ? ', baseline first' : ', this checkout first'}) | ${perBurst(ourBursts)} / ${perBurst(baseBursts)} ms | | |
| chat CPU until half the streams had their first delta, of the whole burst, this checkout / baseline (per burst) | ${cpuPerBurst(ourBursts)} / ${cpuPerBurst(baseBursts)} ms | | |
| 1-minute load average after each burst | ${loads.map((l) => l.toFixed(2)).join(', ')} | | |
`;
    }
    // after the counts above: the OpenAI-compatible route through the gateway, side by side with the provider
    // (BENCH_CHAT_SKIP_OPENAI=1 leaves it out, for quick runs of the /api/chat figures)
    const oa =
      process.env.BENCH_CHAT_SKIP_OPENAI === '1'
        ? undefined
        : await measureOpenAiThroughGateway({ chatUrl, auth, redisUrl: urls.REDIS_URL, agent, tokens: TOKENS, delayMs: DELAY_MS, chatEnv });
    console.log('<!-- report -->');
    console.log(`## chat

${STREAMS} concurrent SSE streams of the local model (${TOKENS} tokens x ${DELAY_MS} ms) through one chat instance (child process) on the real MongoDB-compatible server and Redis, each with a reservation and a finalize at an in-process HTTP stand-in for accounting (the /internal contract, real service tokens). Side by side: the local provider's own time to first delta with ${STREAMS} concurrent in-process streams. And the floor, measured by the same client after chat: a bare \`node:http\` SSE server (\`bench/chat/floor-server.ts\`) with the same provider and one reservation and one finalize per stream at a stand-in of its own, nothing else (no identity check, Redis, store, lock or prompt), warmed up as chat was.${rounds > 1 ? ` ${rounds} bursts per checkout, figures over all of them.` : ''}

| figure | value | target | result |
|---|---|---|---|
| streams completed / started | ${completed} / ${expected} | all | ${pass(completed === expected)} |
| replies stored complete | ${storedReplies} (+21 warm-up and sequential) | one per stream | ${pass(storedReplies === expected + 21)} |
| finalize charges landed | ${charged} (+21 warm-up and sequential) | one per stream | ${pass(charged === expected + 21)} |
| time to first delta, provider alone (p50 / p95) | ${ms(providerP50)} / ${ms(percentile(providerTtfd, 95))} ms | | |
| time to first delta through chat, one stream at a time (p50 of 20) | ${ms(percentile(sequentialTtfd, 50))} ms | | |
| ratio through chat / provider, one at a time (p50) | ${(percentile(sequentialTtfd, 50) / providerP50).toFixed(2)}x | | |
| time to first delta through chat, ${STREAMS} at once (p50 / p95) | ${ms(chatP50)} / ${ms(percentile(chatTtfd, 95))} ms | | |
| ratio through chat / provider, ${STREAMS} at once (p50) | ${ratio.toFixed(2)}x | <= 5x | ${pass(ratio <= 5)} |
${baselineRows}| floor: bare metered SSE server, ${STREAMS} at once (p50 / p95; completed) | ${ms(percentile(floorTtfd.ttfd, 50))} / ${ms(percentile(floorTtfd.ttfd, 95))} ms; ${floorTtfd.completed} / ${expected} | | |
| floor: ratio / provider, ${STREAMS} at once (p50) | ${(percentile(floorTtfd.ttfd, 50) / providerP50).toFixed(2)}x | | |
| through chat / floor, ${STREAMS} at once (p50) | ${(chatP50 / percentile(floorTtfd.ttfd, 50)).toFixed(2)}x | | |
| MongoDB-compatible server alone: ${STREAMS} concurrent inserts | ${insertsPerSecond.toFixed(0)} inserts/s | | |
| wall time for all streams (mean per burst) | ${ms(wallMs)} ms | | |
| chat RSS: baseline / at ${peakOpen} open streams | ${mb(rssBase)} / ${mb(rssPeak)} MB | | |
| RSS per open stream | ${(rssPerStream / 1024).toFixed(1)} KB | | |

${oa ? openAiReport(oa) : '(the /v1 part was skipped: BENCH_CHAT_SKIP_OPENAI=1)'}

Before its first token a stream waits for the HTTP request, one Redis script (the session's stream lock and its conversation from the cache: owner, model, titled flag, history; the sessions were created through the API, which caches them) and the reservation call; it reads nothing from the MongoDB-compatible server. Its writes (the user message and the first-message title, then the reply) run alongside the provider and are done before the terminal event. All of it on ${availableParallelism()} cores shared with the client and the stores (1-minute load average ${loadAtStart.toFixed(2)} before the streams, ${(loadavg()[0] ?? 0).toFixed(2)} after). The store's pace for scale: at the insert rate measured above, the ${STREAMS * 5} store operations of the burst (user message, title, reply, session touch, outbox checkpoint per stream) take ${ms(storeQueueMs)} ms of store time, against a first-delta p50 of ${ms(chatP50)} ms through chat with ${STREAMS} at once; the one-at-a-time figure is chat's own overhead.`);
    console.log('<!-- /report -->');
    // every stream's reply stored and its charge landed, or the bench fails (the ratio is reported, pass or short)
    if (
      completed !== expected ||
      floorTtfd.completed !== expected ||
      storedReplies !== expected + 21 ||
      charged !== expected + 21 ||
      !baselineOk ||
      (oa && oa.completedMany !== OPENAI_AT_ONCE)
    )
      process.exitCode = 1;
  } finally {
    await stopAll();
  }
}

await main();
