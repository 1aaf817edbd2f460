// Gateway bench (loopback, bounded): a trivial upstream directly, the gateway's proxy-only route, and its
// full policy route (verify-token + revocation + rate limit in one Redis script + signed identity headers)
// with a valid token, side by side in one run. The gateway and the upstream run as child processes, so the
// gateway's RSS is its own. Prints req/s, p50, p99, the ratios and the targets between the report markers.
// Fairness on a shared machine: the same connections and duration for every case, a warm-up of each case, then
// ROUNDS rounds that measure both gateway routes back to back in alternating order (proxy-full, full-proxy, ...),
// so drift and noise hit both alike; the table shows medians with the min-max spread, the ratios are medians of
// the per-round ratios.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKeyring, signAccessToken } from '@platform/shared-types';
import { storeUrls } from '@platform/shared-types/testing';
import autocannon from 'autocannon';

const root = new URL('../..', import.meta.url).pathname;
const CONNECTIONS = 50;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
/** the node flags the gateway runs with in production (`npm start`, Dockerfile) */
const NODE_FLAGS =
  process.env.BENCH_NODE_FLAGS !== undefined
    ? process.env.BENCH_NODE_FLAGS.split(' ').filter(Boolean)
    : (JSON.parse(readFileSync(join(root, 'gateway', 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start
        .split(/\s+/)
        .filter((word) => word.startsWith('--'));

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function waitUntilUp(url: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      await (await fetch(url)).arrayBuffer();
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`${url} did not come up`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

const UPSTREAM = `
const http = require('node:http');
const body = JSON.stringify({ ok: true });
http.createServer((req, res) => {
  req.resume();
  req.on('end', () => { res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }); res.end(body); });
}).listen(Number(process.env.PORT), '127.0.0.1');
`;

const CONFIG = `
http: { port: "\${PORT}", host: 127.0.0.1 }
redis: { failMode: open, keyPrefix: "\${RATE_LIMIT_PREFIX}" }
apiEndpoints:
  proxy: { paths: /bench/proxy }
  full: { paths: /bench/full }
serviceEndpoints:
  upstream: { url: "\${AUTH_URL}", connections: 64 }
policies: [verify-token, revocation, rate-limit, identity-headers, proxy]
pipelines:
  proxy:
    apiEndpoints: [proxy]
    policies:
      - proxy: [{ action: { serviceEndpoint: upstream } }]
  full:
    apiEndpoints: [full]
    policies:
      - verify-token:
      - revocation:
      - rate-limit: [{ action: { name: bench-user, limit: 1000000000, windowSeconds: 60, by: user } }]
      - identity-headers:
      - proxy: [{ action: { serviceEndpoint: upstream } }]
`;

interface Figures {
  /** gateway CPU time per request (user + system), microseconds: steadier than req/s on a busy machine */
  cpuUs: number;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

/** CPU time (user + system) a process has used, in microseconds, from /proc (clock ticks of 10 ms). */
function cpuTimeUs(pid: number | undefined): number {
  if (pid === undefined) return 0;
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

async function load(url: string, headers: Record<string, string>, seconds: number, measuredPid?: number): Promise<Figures> {
  const cpuBefore = cpuTimeUs(measuredPid);
  const result = await autocannon({ url, connections: CONNECTIONS, duration: seconds, headers });
  const cpuUs = (cpuTimeUs(measuredPid) - cpuBefore) / Math.max(1, result.requests.total);
  return {
    cpuUs,
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** median of every figure over the rounds */
function medianOf(runs: Figures[]): Figures {
  const pick = (field: keyof Figures) => median(runs.map((f) => f[field]));
  return { cpuUs: pick('cpuUs'), rps: pick('rps'), p50: pick('p50'), p99: pick('p99'), errors: pick('errors'), non2xx: pick('non2xx') };
}

/** "min-max" of one figure over the rounds */
function spread(runs: Figures[], field: keyof Figures, digits = 0): string {
  const values = runs.map((f) => f[field]);
  return `${Math.min(...values).toFixed(digits)}-${Math.max(...values).toFixed(digits)}`;
}

/** VmRSS (now) or VmHWM (peak) of a process, MB */
function memoryMb(pid: number, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): number {
  const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : Number.NaN;
}

const children: ChildProcess[] = [];
const dir = mkdtempSync(join(tmpdir(), 'gateway-bench-'));
try {
  const secret = randomBytes(32).toString('hex');
  const upstreamPort = await freePort();
  const gatewayPort = await freePort();
  const upstreamUrl = `http://127.0.0.1:${upstreamPort}`;
  const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
  children.push(spawn(process.execPath, ['-e', UPSTREAM], { env: { ...process.env, PORT: String(upstreamPort) }, stdio: 'ignore' }));
  writeFileSync(join(dir, 'gateway.config.yml'), CONFIG);
  // load the gateway's modules once with its flags, as any earlier start would: a warm compile cache
  // (src/compile-cache.mjs) is the steady state, not the first start on a fresh machine
  spawnSync(process.execPath, [...NODE_FLAGS, '--input-type=module', '-e', "await import('./src/main.ts')"], { cwd: join(root, 'gateway'), stdio: 'ignore' });
  const gateway = spawn(process.execPath, [...NODE_FLAGS, 'src/main.ts'], {
    cwd: join(root, 'gateway'),
    env: {
      ...process.env,
      NODE_ENV: 'production',
      LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info', // access log on, as in production (written to /dev/null here)
      PORT: String(gatewayPort),
      OPS_PORT: '0', // the private metrics listener: any free port
      REDIS_URL: process.env.REDIS_URL ?? storeUrls().REDIS_URL,
      AUTH_URL: upstreamUrl,
      GATEWAY_CONFIG: join(dir, 'gateway.config.yml'),
      RATE_LIMIT_PREFIX: `bench:${randomBytes(4).toString('hex')}:`,
      JWT_ACCESS_SECRET: secret,
      JWT_REFRESH_SECRET: randomBytes(32).toString('hex'),
      INTERNAL_SECRET: randomBytes(32).toString('hex'),
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.push(gateway);
  gateway.once('exit', (code) => {
    process.stderr.write(`gateway exited (${code})\n`);
    process.exit(1);
  });
  await waitUntilUp(`${upstreamUrl}/`);
  await waitUntilUp(`${gatewayUrl}/bench/proxy`);
  const token = signAccessToken(
    createKeyring(secret),
    { sub: 'bench-user-0001', username: 'bench', email: 'bench@example.test', role: 'enduser' },
    { ttlSeconds: 3600 },
  );
  const auth = { authorization: `Bearer ${token}` };

  // idle RSS before any traffic (after start-up settled)
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  const idleRss = memoryMb(gateway.pid as number);

  // warm-up (JIT, pools, Redis script cache), not measured
  for (const [url, headers] of [
    [`${upstreamUrl}/`, {}],
    [`${gatewayUrl}/bench/proxy`, {}],
    [`${gatewayUrl}/bench/full`, auth],
  ] as const)
    await load(url, headers, 2);

  const upstreamPid = children[0]?.pid;
  const direct = await load(`${upstreamUrl}/`, {}, SECONDS, upstreamPid);
  const proxyRuns: Figures[] = [];
  const fullRuns: Figures[] = [];
  const runProxy = async () => proxyRuns.push(await load(`${gatewayUrl}/bench/proxy`, {}, SECONDS, gateway.pid));
  const runFull = async () => fullRuns.push(await load(`${gatewayUrl}/bench/full`, auth, SECONDS, gateway.pid));
  for (let round = 0; round < ROUNDS; round++) {
    // alternate which route goes first, so neither always runs on the warmer (or busier) half of a round
    if (round % 2 === 0) {
      await runProxy();
      await runFull();
    } else {
      await runFull();
      await runProxy();
    }
  }
  const rss = memoryMb(gateway.pid as number);
  const peakRss = memoryMb(gateway.pid as number, 'VmHWM');
  const proxy = medianOf(proxyRuns);
  const full = medianOf(fullRuns);

  // each round measures both routes back to back: per-round ratios cancel the drift of a shared machine
  const roundRatios = proxyRuns.map((p, i) => (fullRuns[i] as Figures).rps / p.rps);
  const roundGaps = proxyRuns.map((p, i) => (fullRuns[i] as Figures).p99 - p.p99);
  const roundCpu = proxyRuns.map((p, i) => (fullRuns[i] as Figures).cpuUs / p.cpuUs);
  const ratio = median(roundRatios);
  const p99Gap = median(roundGaps);
  const cpuRatio = median(roundCpu);
  const verdict = (ok: boolean) => (ok ? 'pass' : 'short');
  const row = (name: string, f: Figures, runs: Figures[]) =>
    `| ${name} | ${Math.round(f.rps)} (${spread(runs, 'rps')}) | ${f.p50.toFixed(1)} (${spread(runs, 'p50', 1)}) | ${f.p99.toFixed(1)} (${spread(runs, 'p99', 1)}) | ${Math.round(f.cpuUs)} (${spread(runs, 'cpuUs')}) | ${Math.round(f.errors + f.non2xx)} |`;
  const list = (values: number[], digits: number) => values.map((v) => v.toFixed(digits)).join(', ');
  const report = [
    '## gateway',
    '',
    `autocannon, ${CONNECTIONS} connections, ${SECONDS} s per case after a 2 s warm-up of each case, loopback; gateway cases: ${ROUNDS} rounds measuring proxy-only and full policy back to back in alternating order; figures are medians of the rounds (min-max in brackets). Gateway (\`${['node', ...NODE_FLAGS, 'src/main.ts'].join(' ')}\`, as \`npm start\` runs it; BENCH_NODE_FLAGS overrides) and upstream are child processes; access log on.`,
    '',
    '| case | req/s | p50 ms | p99 ms | server CPU us/request | errors + non-2xx |',
    '|---|---|---|---|---|---|',
    row('upstream directly (1 run)', direct, [direct]),
    row('gateway, proxy-only route', proxy, proxyRuns),
    row('gateway, full policy route', full, fullRuns),
    '',
    `- proxy-only / direct req/s: ${(proxy.rps / direct.rps).toFixed(2)}`,
    `- full policy / proxy-only req/s: ${ratio.toFixed(2)}, median of the rounds (${list(roundRatios, 2)}) (target >= 0.85: ${verdict(ratio >= 0.85)})`,
    `- full policy p99 - proxy-only p99: ${p99Gap.toFixed(1)} ms, median of the rounds (${list(roundGaps, 1)}) (target <= 2 ms: ${verdict(p99Gap <= 2)})`,
    `- gateway CPU per request, full policy / proxy-only: ${cpuRatio.toFixed(2)}, median of the rounds (${list(roundCpu, 2)}) (its inverse, ${(1 / cpuRatio).toFixed(2)}, is the req/s ratio a CPU-bound gateway would reach)`,
    `- load average when the run ended: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(', ')} on ${availableParallelism()} cores (the machine is shared: req/s and p99 move with it)`,
    `- gateway RSS: ${idleRss.toFixed(0)} MB idle before traffic, ${rss.toFixed(0)} MB after the run (target <= 120 MB: ${verdict(rss <= 120)}), peak ${peakRss.toFixed(0)} MB`,
    '',
  ].join('\n');
  process.stdout.write(`<!-- report -->\n${report}<!-- /report -->\n`);
} finally {
  for (const child of children) {
    child.removeAllListeners('exit');
    child.kill('SIGTERM');
  }
  rmSync(dir, { recursive: true, force: true });
}
