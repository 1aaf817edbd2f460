// Sources of the bench's small child processes, shared by run.ts and upstream-client.ts: the echo upstream and
// bare node:http front ends (a proxy with no policies, no logging, no metrics), each run as `node -e SOURCE`.
// They listen on PORT (0: any free port) and print the port on stdout; the front ends forward to UPSTREAM.

const root = new URL('../..', import.meta.url).pathname;

export const UPSTREAM_SOURCE = `
const http = require('node:http');
const body = JSON.stringify({ ok: true });
http.createServer((req, res) => {
  req.resume();
  req.on('end', () => { res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }); res.end(body); });
}).listen(Number(process.env.PORT ?? 0), '127.0.0.1', function () { process.stdout.write(String(this.address().port) + '\\n'); });
`;

/** a bare front end: node:http server, `forward(req, res)` given by the candidate, hop-by-hop headers dropped */
export const frontSource = (forward: string) => `
const http = require('node:http');
// undici's Pool module alone, as the gateway loads it (not the package index)
const Pool = require(${JSON.stringify(`${root}node_modules/undici/lib/dispatcher/pool.js`)});
const target = process.env.UPSTREAM;
const [host, port] = target.replace('http://', '').split(':');
const hop = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'upgrade', 'proxy-connection', 'trailer', 'host']);
const copyHeaders = (raw) => { const out = {}; for (const k in raw) if (!hop.has(k)) out[k] = raw[k]; return out; };
${forward}
http.createServer({ keepAliveTimeout: 30_000 }, (req, res) => forward(req, res)).listen(Number(process.env.PORT ?? 0), '127.0.0.1', function () { process.stdout.write(String(this.address().port) + '\\n'); });
`;

/** undici's `Pool.dispatch` with a raw handler writing into the client response: the gateway's ordinary upstream client */
export const DISPATCH_FORWARD = `
const pool = new Pool(target, { connections: 64, pipelining: 1 });
function forward(req, res) {
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  if (!hasBody) req.resume();
  pool.dispatch({ path: req.url, method: req.method, headers: copyHeaders(req.headers), body: hasBody ? req : undefined }, {
    onConnect() {},
    onHeaders(status, raw, resume) {
      const headers = {};
      for (let i = 0; i < raw.length; i += 2) { const k = raw[i].toString('latin1').toLowerCase(); if (!hop.has(k)) headers[k] = raw[i + 1].toString('latin1'); }
      res.writeHead(status, headers);
      res.on('drain', resume);
      return true;
    },
    onData(chunk) { return res.write(chunk); },
    onComplete() { res.end(); },
    onError() { if (!res.headersSent) res.statusCode = 502; res.end(); },
  });
}`;

/** the bare proxy the gateway bench measures as the floor of a single-process Node proxy (BENCH_BARE_PROXY=1) */
export const BARE_PROXY_SOURCE = frontSource(DISPATCH_FORWARD);
