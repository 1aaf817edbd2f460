// Monitoring bench (loopback only, bounded): the relationship check other services call on every supervised
// action, with the in-process cache on and off side by side in one run, and the supervised-students list
// (PostgreSQL + auth + accounting lookups over HTTP to stand-in servers). Prints its report section.
import { availableParallelism, loadavg } from 'node:os';
import { testActor } from '@platform/shared-types/testing';
import autocannon from 'autocannon';
import { startTestMonitoring, type TestMonitoring } from '../../monitoring/test/support/monitoring.ts';

const DURATION_S = 3;
const ROUNDS = 2;
const DIRECT_CALLS = 2_000;
const CONNECTIONS = 16;
const PAIRS = 500;
const STUDENTS = 40;

async function seed(m: TestMonitoring, supervisorIds: string[], studentIds: string[]) {
  const rows = supervisorIds.flatMap((supervisorId) =>
    studentIds.map((studentId) => ({ supervisor_id: supervisorId, student_id: studentId, created_by: 'bench' })),
  );
  for (let i = 0; i < rows.length; i += 500) await m.service.stores.db('relationships').insert(rows.slice(i, i + 500));
}

async function load(url: string, headers: Record<string, string>, paths: string[]) {
  let next = 0;
  const result = await autocannon({
    url,
    connections: CONNECTIONS,
    duration: DURATION_S,
    headers,
    requests: [
      {
        setupRequest: (request) => {
          request.path = paths[next++ % paths.length] as string;
          return request;
        },
      },
    ],
  });
  return {
    rps: Math.round(result.requests.average),
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.non2xx,
    total: result.requests.total,
  };
}

const supervisors = Array.from({ length: PAIRS / 50 }, () => testActor('supervisor'));
const students = Array.from({ length: 50 }, () => testActor('enduser'));
// users no supervisor supervises: each supervisor asks about each of them (PAIRS distinct unsupervised pairs)
const outsiders = Array.from({ length: 50 }, () => testActor('enduser'));
const cached = await startTestMonitoring({ env: { CHECK_CACHE_TTL_MS: '2000' } });
const uncached = await startTestMonitoring({ auth: cached.auth, env: { CHECK_CACHE_TTL_MS: '0' } });
try {
  const supervisorIds = supervisors.map((s) => s.userId);
  const studentIds = students.map((s) => s.userId);
  await seed(cached, supervisorIds, studentIds);
  await seed(uncached, supervisorIds, studentIds);
  // half the checks hit pairs that exist, half pairs that do not, each pair once per cycle
  const checkPaths = supervisorIds.flatMap((sup) =>
    studentIds.flatMap((stu, i) => [
      `/internal/relationships/check?supervisorId=${sup}&studentId=${stu}`,
      `/internal/relationships/check?supervisorId=${sup}&studentId=${outsiders[i]?.userId}`,
    ]),
  );
  const distinctPairs = new Set(checkPaths).size;
  if (distinctPairs !== PAIRS * 2) throw new Error(`built ${distinctPairs} distinct pairs, meant ${PAIRS * 2}`);
  const loadAtStart = loadavg()[0] ?? 0;
  // interleaved rounds (the machine is shared): the best round of each variant counts
  const best = (a: Awaited<ReturnType<typeof load>> | undefined, b: Awaited<ReturnType<typeof load>>) => (!a || b.rps > a.rps ? b : a);
  let withoutCache: Awaited<ReturnType<typeof load>> | undefined;
  let withCache: Awaited<ReturnType<typeof load>> | undefined;
  for (let round = 0; round < ROUNDS; round++) {
    const serviceHeaders = cached.auth.serviceHeaders('chat', 'monitoring'); // fresh: service tokens live 60 s
    withoutCache = best(withoutCache, await load(uncached.url, serviceHeaders, checkPaths));
    withCache = best(withCache, await load(cached.url, serviceHeaders, checkPaths));
  }
  if (!withoutCache || !withCache) throw new Error('no rounds ran');

  // the check itself, without HTTP: what the cache saves per call
  const direct = async (m: TestMonitoring) => {
    const pairs = supervisorIds.flatMap((supervisorId) => studentIds.slice(0, 4).map((studentId) => ({ supervisorId, studentId })));
    for (const pair of pairs) await m.service.monitoring.relationships.check(pair); // warm
    const started = process.hrtime.bigint();
    for (let i = 0; i < DIRECT_CALLS; i++) await m.service.monitoring.relationships.check(pairs[i % pairs.length] as (typeof pairs)[number]);
    return Number(process.hrtime.bigint() - started) / 1e3 / DIRECT_CALLS;
  };
  const directUncachedUs = await direct(uncached);
  const directCachedUs = await direct(cached);

  // the student list of one supervisor with STUDENTS students
  const lead = testActor('supervisor');
  const pupils = Array.from({ length: STUDENTS }, () => testActor('enduser'));
  for (const actor of [lead, ...pupils]) cached.fakeAuth.add(actor);
  for (const pupil of pupils) cached.accounting.balances.set(pupil.userId, { available: 100, reserved: 0 });
  await seed(
    cached,
    [lead.userId],
    pupils.map((p) => p.userId),
  );
  const listHeaders = cached.auth.identityHeaders(lead, undefined, { method: 'GET', path: '/api/supervised-students', service: 'monitoring' });
  const list = await load(cached.url, listHeaders, ['/api/supervised-students']);

  const ratio = withCache.rps / Math.max(1, withoutCache.rps);
  const checkTarget = withoutCache.p50 <= 10 && withoutCache.errors === 0 && withCache.errors === 0;
  const listTarget = list.p50 <= 100 && list.errors === 0;
  const verdict = (ok: boolean) => (ok ? 'pass' : 'short');
  const report = `## monitoring

Relationship check \`GET /internal/relationships/check\` (${distinctPairs} distinct pairs, half supervised; ${CONNECTIONS} connections, ${DURATION_S} s, best of ${ROUNDS} interleaved rounds; load generator and service share one process on ${availableParallelism()} cores, 1-minute load average ${loadAtStart.toFixed(2)} at the start):

| variant | requests/s | p50 ms | p99 ms | errors |
|---|---|---|---|---|
| index only (CHECK_CACHE_TTL_MS=0) | ${withoutCache.rps} | ${withoutCache.p50} | ${withoutCache.p99} | ${withoutCache.errors} |
| index + 2 s in-process cache | ${withCache.rps} | ${withCache.p50} | ${withCache.p99} | ${withCache.errors} |

Cache speed-up over HTTP (same run): **${ratio.toFixed(2)}x** (the check itself, measured below, is ${(directUncachedUs / 1000).toFixed(2)} ms of the ${withoutCache.p50} ms p50 without the cache; the rest is HTTP, JSON and the service-token verify). The check alone, ${DIRECT_CALLS} sequential calls in process: ${directUncachedUs.toFixed(1)} us per call from PostgreSQL (unique index), ${directCachedUs.toFixed(2)} us from the cache (**${(directUncachedUs / Math.max(0.01, directCachedUs)).toFixed(0)}x**). Target: p50 <= 10 ms without the cache, no errors: **${verdict(checkTarget)}**.

\`GET /api/supervised-students\` (${STUDENTS} students; names from auth, balances and streams from accounting, over HTTP to stand-in servers): ${list.rps} requests/s, p50 ${list.p50} ms, p99 ${list.p99} ms, errors ${list.errors}. Target: p50 <= 100 ms, no errors: **${verdict(listTarget)}**.
`;
  process.stdout.write(`<!-- report -->\n${report}<!-- /report -->\n`);
} finally {
  await uncached.stop();
  await cached.stop();
}
