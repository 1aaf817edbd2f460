// The floor of the 500-at-once figure: the least a metered SSE stream can do in one Node process, measured by the
// same client as chat. `node:http` and the local provider, one reservation call before the first token and one
// finalize after the last (undici pool, one service token for all calls), each event written at once. No
// identity check, no Redis, no store, no session lock, no history, no prompt: everything chat adds on top of it
// is missing here. Started by bench/chat/run.ts as a child process (stdout: one JSON line with its url).
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createKeyring, loadModelCatalog, SERVICE_TOKEN_HEADER, signServiceToken } from '@platform/shared-types';
import { Pool } from 'undici';
import { LocalProvider } from '../../chat/src/providers/local-provider.ts';

const env = (name: string) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};
const keyring = createKeyring(env('INTERNAL_SECRET'));
const serviceToken = signServiceToken(keyring, 'chat', 'accounting');
const accounting = new Pool(env('ACCOUNTING_URL'), { connections: 512 });
const provider = new LocalProvider({ tokens: Number(env('LOCAL_MODEL_TOKENS')), tokenDelayMs: Number(env('LOCAL_MODEL_TOKEN_DELAY_MS')) });
const model = loadModelCatalog().find((m) => m.provider === 'local') as ReturnType<typeof loadModelCatalog>[number];

async function callAccounting(path: string, body: unknown, authorization?: string): Promise<number> {
  const res = await accounting.request({
    method: 'POST',
    path,
    headers: { 'content-type': 'application/json', [SERVICE_TOKEN_HEADER]: serviceToken, ...(authorization ? { authorization } : {}) },
    body: JSON.stringify(body),
  });
  await res.body.dump();
  return res.statusCode;
}

/** written and put on the wire at once (as chat's writeSseNow: a corked socket would wait for the next tick) */
function event(res: ServerResponse, name: string, data: unknown): void {
  res.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
  while (res.socket && res.socket.writableCorked > 0) res.socket.uncork();
}

async function stream(req: IncomingMessage, res: ServerResponse, sessionId: string): Promise<void> {
  let raw = '';
  for await (const chunk of req) raw += chunk;
  const { message } = JSON.parse(raw) as { message: string };
  const reservationId = randomUUID();
  const reserve = { reservationId, sessionId, modelId: model.id, inputTokens: 10, maxOutputTokens: 100 };
  const status = await callAccounting('/internal/streaming-sessions/initialize', reserve, req.headers.authorization);
  if (status !== 200) {
    res.writeHead(status).end();
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  event(res, 'session', { sessionId, messageId: reservationId, reservationId });
  let outputTokens = 0;
  const turns = [{ role: 'user' as const, content: message }];
  for await (const item of provider.stream({ model, turns, maxOutputTokens: 100, sessionId, signal: AbortSignal.timeout(60_000) })) {
    if (item.type === 'delta') event(res, 'delta', { text: item.text });
    if (item.type === 'end') outputTokens = item.usage.outputTokens;
  }
  await callAccounting('/internal/streaming-sessions/finalize', { reservationId, inputTokens: 10, outputTokens });
  event(res, 'done', { messageId: reservationId, usage: { inputTokens: 10, outputTokens }, credits: 1 });
  res.end();
}

const server = createServer((req, res) => {
  const match = /^\/api\/chat\/sessions\/([^/]+)\/stream$/.exec(req.url ?? '');
  if (req.method !== 'POST' || !match) {
    res.writeHead(404).end();
    return;
  }
  stream(req, res, match[1] as string).catch(() => res.destroy());
});
server.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ msg: 'listening', url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }));
});
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
