// Which upstream HTTP client a proxy should use (issue 12): one node:http front end per candidate, forwarding
// every request to the same echo upstream through (a) node:http's keep-alive Agent (the gateway's client), (b)
// undici's Pool with `request` (a body stream per answer), (c) undici's Pool with `dispatch` and a raw handler
// (no stream objects; the lowest-level API undici offers). Each candidate runs in its own child process; every
// round loads each once (autocannon, 50 connections), the order rotated and reversed every other round; the
// figure that decides is each process's CPU time per request (from /proc), the req/s ratio and RSS beside it.
// Usage: node bench/gateway/upstream-client.ts (BENCH_SECONDS, BENCH_ROUNDS)
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import autocannon from 'autocannon';
import { DISPATCH_FORWARD, frontSource, UPSTREAM_SOURCE } from './bare-proxy.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

const CANDIDATES: Record<string, string> = {
  'node:http Agent': `
const agent = new http.Agent({ keepAlive: true, maxSockets: 64, maxFreeSockets: 64, scheduling: 'lifo' });
function forward(req, res) {
  const up = http.request({ agent, host, port, path: req.url, method: req.method, headers: copyHeaders(req.headers) }, (answer) => {
    res.writeHead(answer.statusCode, copyHeaders(answer.headers));
    answer.on('data', (chunk) => res.write(chunk));
    answer.on('end', () => res.end());
  });
  up.on('error', () => { res.statusCode = 502; res.end(); });
  req.pipe(up);
}`,
  'undici Pool.request': `
const pool = new Pool(target, { connections: 64, pipelining: 1 });
function forward(req, res) {
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  pool.request({ path: req.url, method: req.method, headers: copyHeaders(req.headers), body: hasBody ? req : undefined }).then((answer) => {
    res.writeHead(answer.statusCode, copyHeaders(answer.headers));
    answer.body.on('data', (chunk) => res.write(chunk));
    answer.body.on('end', () => res.end());
  }, () => { res.statusCode = 502; res.end(); });
  if (!hasBody) req.resume();
}`,
  'undici Pool.dispatch': DISPATCH_FORWARD,
};

const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

function cpuTimeUs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

const children: ChildProcess[] = [];
async function startNode(source: string, env: Record<string, string> = {}): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['-e', source], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const port = await new Promise<string>((resolve) => child.stdout?.once('data', (chunk: Buffer) => resolve(chunk.toString().trim())));
  return { child, url: `http://127.0.0.1:${port}` };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};

try {
  const upstream = await startNode(UPSTREAM_SOURCE);
  const fronts = await Promise.all(
    Object.entries(CANDIDATES).map(async ([name, forward]) => ({ name, ...(await startNode(frontSource(forward), { UPSTREAM: upstream.url })) })),
  );
  const runs = new Map(fronts.map((f) => [f.name, [] as Array<{ rps: number; cpuUs: number; p99: number }>]));
  const load = async (front: (typeof fronts)[number], seconds: number) => {
    const before = cpuTimeUs(front.child.pid as number);
    const result = await autocannon({ url: `${front.url}/bench`, connections: 50, duration: seconds });
    const cpuUs = (cpuTimeUs(front.child.pid as number) - before) / Math.max(1, result.requests.total);
    if (result.non2xx + result.errors > 0) throw new Error(`${front.name}: ${result.non2xx} non-2xx, ${result.errors} errors`);
    return { rps: result.requests.average, cpuUs, p99: result.latency.p99 };
  };
  const idle = new Map(fronts.map((f) => [f.name, rssMb(f.child.pid as number)]));
  for (const front of fronts) await load(front, 2); // warm-up
  const loadBefore = loadavg()[0] ?? 0;
  for (let round = 0; round < ROUNDS; round++) {
    const order = fronts.map((_, i) => fronts[(i + round) % fronts.length] as (typeof fronts)[number]);
    for (const front of round % 2 === 0 ? order : order.reverse()) runs.get(front.name)?.push(await load(front, SECONDS));
  }
  const base = runs.get('node:http Agent') ?? [];
  console.log(
    `| upstream client | req/s (median, min-max) | CPU us/request (median, min-max) | CPU / node:http (median of rounds) | req/s / node:http | RSS idle / after the run |`,
  );
  console.log('|---|---|---|---|---|---|');
  for (const [name, list] of runs) {
    const rps = list.map((r) => r.rps);
    const cpu = list.map((r) => r.cpuUs);
    const cpuRatio = median(list.map((r, i) => r.cpuUs / (base[i]?.cpuUs ?? Number.NaN)));
    const rpsRatio = median(list.map((r, i) => r.rps / (base[i]?.rps ?? Number.NaN)));
    console.log(
      `| ${name} | ${Math.round(median(rps))} (${Math.round(Math.min(...rps))}-${Math.round(Math.max(...rps))}) | ${Math.round(median(cpu))} (${Math.round(Math.min(...cpu))}-${Math.round(Math.max(...cpu))}) | ${cpuRatio.toFixed(2)} | ${rpsRatio.toFixed(2)} | ${(idle.get(name) ?? 0).toFixed(0)} / ${rssMb(fronts.find((f) => f.name === name)?.child.pid as number).toFixed(0)} MB |`,
    );
  }
  console.log(
    `\n${ROUNDS} rounds of ${SECONDS} s, 50 connections; 1-minute load average ${loadBefore.toFixed(1)} before, ${(loadavg()[0] ?? 0).toFixed(1)} after.`,
  );
} finally {
  for (const child of children) child.kill('SIGTERM');
}
