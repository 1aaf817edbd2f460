// Gateway bench (loopback, bounded): a trivial upstream directly, the gateway's proxy-only route, its
// full policy route (verify-token + revocation + rate limit in one Redis script + signed identity headers)
// with a valid token, and Express Gateway 1.16 (installed on demand into the git-ignored bench/gateway/.eg)
// running the equivalent policy as a plugin against the same upstream, side by side in one run. The gateway and the upstream run as child processes, so the
// gateway's RSS is its own. Prints req/s, p50, p99, the ratios and the targets between the report markers.
// Fairness on a shared machine: the same connections and duration for every case, a warm-up of each case, then
// ROUNDS rounds that measure both gateway routes back to back in alternating order (proxy-full, full-proxy, ...),
// so drift and noise hit both alike; the table shows medians with the min-max spread, the ratios are medians of
// the per-round ratios.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createKeyring, signAccessToken } from '@platform/shared-types';
import { storeUrls } from '@platform/shared-types/testing';
import autocannon from 'autocannon';
import { BARE_PROXY_SOURCE, UPSTREAM_SOURCE } from './bare-proxy.ts';

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

/** median over the rounds of one figure's per-round ratio between two cases measured in the same rounds */
function roundRatio(runs: Figures[], others: Figures[], field: keyof Figures): number {
  return median(runs.map((f, i) => f[field] / (others[i] as Figures)[field]));
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

const EG_DIR = join(root, 'bench', 'gateway', '.eg');
const EG_FILES = join(root, 'bench', 'gateway', 'express-gateway');

/** Express Gateway 1.16, installed on demand into the bench's git-ignored .eg folder (never a platform dependency). */
function ensureExpressGateway(): void {
  if (existsSync(join(EG_DIR, 'node_modules', 'express-gateway', 'package.json'))) return;
  process.stderr.write('installing Express Gateway 1.16 into bench/gateway/.eg (once)\n');
  // npm beside this node when there is one; the node from the registry (scripts/bootstrap-node.sh) has none, so PATH's
  const besideNode = join(dirname(process.execPath), 'npm');
  const npm = existsSync(besideNode) ? besideNode : 'npm';
  const result = spawnSync(npm, ['install', '--prefix', EG_DIR, '--no-audit', '--no-fund', 'express-gateway@1.16.x', 'ioredis@5'], { stdio: 'inherit' });
  if (result.status !== 0) throw new Error('npm install of express-gateway failed');
}

/** Express Gateway's config folder: the same echo upstream, a proxy-only route and the full route with our policy's equivalent (plugin.cjs). */
function writeExpressGatewayConfig(folder: string, port: number, upstreamUrl: string): void {
  mkdirSync(folder, { recursive: true });
  // its user/app/credential models, as its own generator copies them
  cpSync(join(EG_DIR, 'node_modules', 'express-gateway', 'lib', 'config', 'models'), join(folder, 'models'), { recursive: true });
  writeFileSync(
    join(folder, 'system.config.yml'),
    `db: { redis: { emulate: true, namespace: EG } }
plugins:
  platform: { package: "${join(EG_FILES, 'plugin.cjs')}" }
crypto: { cipherKey: "${randomBytes(16).toString('hex')}", algorithm: aes256, saltRounds: 4 }
session: { secret: "${randomBytes(16).toString('hex')}", resave: false, saveUninitialized: false }
accessTokens: { timeToExpiry: 7200000 }
refreshTokens: { timeToExpiry: 7200000 }
authorizationCodes: { timeToExpiry: 300000 }
`,
  );
  writeFileSync(
    join(folder, 'gateway.config.yml'),
    `http: { port: ${port}, hostname: 127.0.0.1 }
apiEndpoints:
  full: { host: "*", paths: /bench/full }
serviceEndpoints:
  upstream: { url: "${upstreamUrl}" }
policies: [platform-auth, proxy]
pipelines:
  full:
    apiEndpoints: [full]
    policies:
      - platform-auth: [{ action: { limit: 1000000000 } }]
      - proxy: [{ action: { serviceEndpoint: upstream, changeOrigin: true } }]
`,
  );
}

const children: ChildProcess[] = [];
const tmp = mkdtempSync(join(tmpdir(), 'gateway-bench-'));
try {
  const secret = randomBytes(32).toString('hex');
  const upstreamPort = await freePort();
  const gatewayPort = await freePort();
  const upstreamUrl = `http://127.0.0.1:${upstreamPort}`;
  const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
  children.push(spawn(process.execPath, ['-e', UPSTREAM_SOURCE], { env: { ...process.env, PORT: String(upstreamPort) }, stdio: 'ignore' }));
  writeFileSync(join(tmp, 'gateway.config.yml'), CONFIG);
  // BENCH_PROFILE_DIR: a V8 CPU profile of this gateway (not the baseline) is written there when it stops (shortly after
  // the report); read it with profile-summary.ts
  const profileFlags = process.env.BENCH_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`] : [];
  const startGateway = (dir: string, port: number, flags = NODE_FLAGS, extraFlags: string[] = []) => {
    // load the gateway's modules once with its flags, as any earlier start would: a warm compile cache
    // (src/compile-cache.mjs) is the steady state, not the first start on a fresh machine
    spawnSync(process.execPath, [...flags, '--input-type=module', '-e', "await import('./src/main.ts')"], { cwd: dir, stdio: 'ignore' });
    const child = spawn(process.execPath, [...flags, ...extraFlags, 'src/main.ts'], {
      cwd: dir,
      env: {
        ...process.env,
        NODE_ENV: 'production',
        LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info', // access log on, as in production (written to /dev/null here)
        PORT: String(port),
        OPS_PORT: '0', // the private metrics listener: any free port
        REDIS_URL: process.env.REDIS_URL ?? storeUrls().REDIS_URL,
        AUTH_URL: upstreamUrl,
        GATEWAY_CONFIG: join(tmp, 'gateway.config.yml'),
        RATE_LIMIT_PREFIX: `bench:${randomBytes(4).toString('hex')}:`,
        JWT_ACCESS_SECRET: secret,
        JWT_REFRESH_SECRET: randomBytes(32).toString('hex'),
        INTERNAL_SECRET: randomBytes(32).toString('hex'),
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    children.push(child);
    child.once('exit', (code) => {
      process.stderr.write(`gateway (${dir}) exited (${code})\n`);
      // process.exit skips the finally below: stop the upstream, the other gateways and Express Gateway first
      for (const other of children) if (other !== child) other.kill('SIGTERM');
      process.exit(1);
    });
    return child;
  };
  const gateway = startGateway(join(root, 'gateway'), gatewayPort, NODE_FLAGS, profileFlags);
  // BENCH_BASELINE_DIR: another checkout's gateway folder (e.g. an earlier commit), and/or BENCH_BASELINE_NODE_FLAGS: other
  // start flags, measured on the full route in the same rounds
  const baselineFlags = process.env.BENCH_BASELINE_NODE_FLAGS?.split(' ').filter(Boolean);
  const baselineDir = process.env.BENCH_BASELINE_DIR ?? (baselineFlags ? join(root, 'gateway') : undefined);
  const baselinePort = await freePort();
  const baselineUrl = `http://127.0.0.1:${baselinePort}`;
  const baseline = baselineDir ? startGateway(baselineDir, baselinePort, baselineFlags) : undefined;
  const withExpressGateway = process.env.BENCH_EXPRESS_GATEWAY !== '0';
  const egPort = await freePort();
  const egUrl = `http://127.0.0.1:${egPort}`;
  let eg: ChildProcess | undefined;
  if (withExpressGateway) {
    ensureExpressGateway();
    writeExpressGatewayConfig(join(tmp, 'eg'), egPort, upstreamUrl);
    eg = spawn(process.execPath, [join(EG_FILES, 'server.cjs')], {
      env: {
        ...process.env,
        NODE_ENV: 'production',
        LOG_LEVEL: 'error',
        EG_DIR,
        EG_CONFIG: join(tmp, 'eg'),
        EG_IOREDIS: join(EG_DIR, 'node_modules', 'ioredis'),
        REDIS_URL: process.env.REDIS_URL ?? storeUrls().REDIS_URL,
        RATE_LIMIT_PREFIX: `bench:${randomBytes(4).toString('hex')}:`,
        JWT_ACCESS_SECRET: secret,
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    children.push(eg);
  }
  // a bare proxy (node:http server + undici Pool.dispatch, no policies, no logging: bare-proxy.ts; BENCH_BARE_PROXY=0 leaves it out)
  // in its own process with the gateway's V8 flags, measured in the same rounds: the floor of a single-process Node proxy
  const barePort = await freePort();
  const bareUrl = `http://127.0.0.1:${barePort}`;
  const bare =
    process.env.BENCH_BARE_PROXY !== '0'
      ? spawn(process.execPath, [...NODE_FLAGS.filter((flag) => !flag.startsWith('--import')), '-e', BARE_PROXY_SOURCE], {
          env: { ...process.env, PORT: String(barePort), UPSTREAM: upstreamUrl },
          stdio: ['ignore', 'ignore', 'inherit'],
        })
      : undefined;
  if (bare) children.push(bare);
  await waitUntilUp(`${upstreamUrl}/`);
  if (bare) await waitUntilUp(`${bareUrl}/bench/proxy`);
  await waitUntilUp(`${gatewayUrl}/bench/proxy`);
  if (withExpressGateway) await waitUntilUp(`${egUrl}/bench/full`);
  if (baseline) await waitUntilUp(`${baselineUrl}/bench/proxy`);
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
    ...(withExpressGateway ? ([[`${egUrl}/bench/full`, auth]] as const) : []),
    ...(bare ? ([[`${bareUrl}/bench/proxy`, {}]] as const) : []),
    ...(baseline
      ? ([
          [`${baselineUrl}/bench/full`, auth],
          [`${baselineUrl}/bench/proxy`, {}],
        ] as const)
      : []),
  ] as const)
    await load(url, headers, 2);

  const upstreamPid = children[0]?.pid;
  // the upstream alone in every round too: one run of it measured whatever the machine did in those seconds
  const directRuns: Figures[] = [];
  const runDirect = async () => directRuns.push(await load(`${upstreamUrl}/`, {}, SECONDS, upstreamPid));
  const proxyRuns: Figures[] = [];
  const fullRuns: Figures[] = [];
  const runProxy = async () => proxyRuns.push(await load(`${gatewayUrl}/bench/proxy`, {}, SECONDS, gateway.pid));
  const runFull = async () => fullRuns.push(await load(`${gatewayUrl}/bench/full`, auth, SECONDS, gateway.pid));
  const egRuns: Figures[] = [];
  const runEg = async () => egRuns.push(await load(`${egUrl}/bench/full`, auth, SECONDS, eg?.pid));
  const baselineRuns: Figures[] = [];
  const baselineProxyRuns: Figures[] = [];
  const runBaseline = async () => baselineRuns.push(await load(`${baselineUrl}/bench/full`, auth, SECONDS, baseline?.pid));
  // the baseline gets both routes too: a gateway that sits idle for most of a round (its heap shrunk, its
  // caches cold) measured ~1.3x the CPU per request of the same code measured twice as often
  const runBaselineProxy = async () => baselineProxyRuns.push(await load(`${baselineUrl}/bench/proxy`, {}, SECONDS, baseline?.pid));
  const bareRuns: Figures[] = [];
  const runBare = async () => bareRuns.push(await load(`${bareUrl}/bench/proxy`, {}, SECONDS, bare?.pid));
  const cases = [
    runDirect,
    runProxy,
    runFull,
    ...(withExpressGateway ? [runEg] : []),
    ...(baseline ? [runBaseline, runBaselineProxy] : []),
    ...(bare ? [runBare] : []),
  ];
  for (let round = 0; round < ROUNDS; round++) {
    // rotate (and reverse every other round) which case goes first, so none always runs on the warmer (or busier) part of a round
    const order = cases.map((_, i) => cases[(i + round) % cases.length] as () => Promise<number>);
    for (const run of round % 2 === 0 ? order : order.reverse()) await run();
  }
  const rss = memoryMb(gateway.pid as number);
  const list = (values: number[], digits: number) => values.map((v) => v.toFixed(digits)).join(', ');
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
  const report = [
    '## gateway',
    '',
    `autocannon, ${CONNECTIONS} connections, ${SECONDS} s per case after a 2 s warm-up of each case, loopback; gateway cases: ${ROUNDS} rounds measuring the upstream directly, proxy-only, full policy${withExpressGateway ? ' and Express Gateway 1.16 with the equivalent policy (bench/gateway/express-gateway/plugin.cjs; BENCH_EXPRESS_GATEWAY=0 leaves it out)' : ''} back to back, the order rotated and reversed every other round; figures are medians of the rounds (min-max in brackets). Gateway (\`${['node', ...NODE_FLAGS, 'src/main.ts'].join(' ')}\`, as \`npm start\` runs it; BENCH_NODE_FLAGS overrides) and upstream are child processes; access log on.`,
    '',
    '| case | req/s | p50 ms | p99 ms | server CPU us/request | errors + non-2xx |',
    '|---|---|---|---|---|---|',
    row('upstream directly', medianOf(directRuns), directRuns),
    row('gateway, proxy-only route', proxy, proxyRuns),
    row('gateway, full policy route', full, fullRuns),
    ...(withExpressGateway ? [row('Express Gateway 1.16, equivalent full policy (plugin)', medianOf(egRuns), egRuns)] : []),
    ...(bare ? [row('bare proxy (node:http + undici Pool.dispatch, no policies)', medianOf(bareRuns), bareRuns)] : []),
    ...(baseline
      ? [
          row(
            `baseline gateway (${baselineDir}${baselineFlags ? `, flags: ${baselineFlags.join(' ') || 'none'}` : ''}), proxy-only route`,
            medianOf(baselineProxyRuns),
            baselineProxyRuns,
          ),
          row(`baseline gateway, full policy route`, medianOf(baselineRuns), baselineRuns),
        ]
      : []),
    '',
    ...(baseline
      ? [
          `- proxy-only, this gateway / baseline: req/s ${median(proxyRuns.map((f, i) => f.rps / (baselineProxyRuns[i] as Figures).rps)).toFixed(2)}, CPU per request ${median(
            proxyRuns.map((f, i) => f.cpuUs / (baselineProxyRuns[i] as Figures).cpuUs),
          ).toFixed(
            2,
          )}; baseline full / proxy-only req/s ${median(baselineRuns.map((f, i) => f.rps / (baselineProxyRuns[i] as Figures).rps)).toFixed(2)}, p99 gap ${median(
            baselineRuns.map((f, i) => f.p99 - (baselineProxyRuns[i] as Figures).p99),
          ).toFixed(1)} ms`,
          `- full policy, this gateway / baseline: req/s ${median(fullRuns.map((f, i) => f.rps / (baselineRuns[i] as Figures).rps)).toFixed(2)}, CPU per request ${median(
            fullRuns.map((f, i) => f.cpuUs / (baselineRuns[i] as Figures).cpuUs),
          ).toFixed(2)} (medians of the rounds; baseline RSS after the run ${memoryMb(baseline.pid as number).toFixed(0)} MB)`,
        ]
      : []),
    ...(withExpressGateway
      ? [
          `- ours full policy / Express Gateway full policy req/s: ${median(fullRuns.map((f, i) => f.rps / (egRuns[i] as Figures).rps)).toFixed(2)}, median of the rounds (${list(
            fullRuns.map((f, i) => f.rps / (egRuns[i] as Figures).rps),
            2,
          )}) (target >= 3.0: ${verdict(median(fullRuns.map((f, i) => f.rps / (egRuns[i] as Figures).rps)) >= 3)}); Express Gateway RSS after the run ${memoryMb(eg?.pid as number).toFixed(0)} MB`,
        ]
      : []),
    `- proxy-only / direct req/s: ${median(proxyRuns.map((p, i) => p.rps / (directRuns[i] as Figures).rps)).toFixed(2)}, median of the rounds (${list(
      proxyRuns.map((p, i) => p.rps / (directRuns[i] as Figures).rps),
      2,
    )}) (target >= 0.30: ${verdict(median(proxyRuns.map((p, i) => p.rps / (directRuns[i] as Figures).rps)) >= 0.3)})`,
    ...(bare
      ? [
          `- proxy-only / bare proxy: req/s ${roundRatio(proxyRuns, bareRuns, 'rps').toFixed(2)}, CPU per request ${roundRatio(proxyRuns, bareRuns, 'cpuUs').toFixed(2)}; bare proxy / direct req/s ${roundRatio(bareRuns, directRuns, 'rps').toFixed(2)} (${list(
            bareRuns.map((f, i) => f.rps / (directRuns[i] as Figures).rps),
            2,
          )}); medians of the rounds; bare proxy RSS after the run ${memoryMb(bare.pid as number).toFixed(0)} MB`,
        ]
      : []),
    `- full policy / proxy-only req/s: ${ratio.toFixed(2)}, median of the rounds (${list(roundRatios, 2)}) (target >= 0.85: ${verdict(ratio >= 0.85)})`,
    `- full policy p99 - proxy-only p99: ${p99Gap.toFixed(1)} ms, median of the rounds (${list(roundGaps, 1)}) (target <= 2 ms: ${verdict(p99Gap <= 2)})`,
    `- gateway CPU per request, full policy / proxy-only: ${cpuRatio.toFixed(2)}, median of the rounds (${list(roundCpu, 2)}) (its inverse, ${(1 / cpuRatio).toFixed(2)}, is the req/s ratio a CPU-bound gateway would reach)`,
    `- load average when the run ended: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(', ')} on ${availableParallelism()} cores (the machine is shared: req/s and p99 move with it)`,
    `- gateway RSS: ${idleRss.toFixed(0)} MB idle before traffic, ${rss.toFixed(0)} MB after the run (target <= 150 MB: ${verdict(rss <= 150)}), peak ${peakRss.toFixed(0)} MB`,
    '',
  ].join('\n');
  process.stdout.write(`<!-- report -->\n${report}<!-- /report -->\n`);
} finally {
  for (const child of children) {
    child.removeAllListeners('exit');
    child.kill('SIGTERM');
  }
  rmSync(tmp, { recursive: true, force: true });
}
