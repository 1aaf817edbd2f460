import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server, ServerOptions, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { type ErrorCode, type Logger, PROBLEM_CONTENT_TYPE, problem } from '@platform/shared-types';
import type { GatewayConfig } from './gateway-config.ts';
import { SECURITY_HEADERS } from './headers.ts';

/**
 * The client-facing connection rules of DESIGN section 10, in one place: node's strict parser, a head
 * deadline, idle keep-alive close, stalled-body cut-off, connection caps (global and per client address),
 * and problem+json answers (then close) for what the parser refuses.
 */
export type HttpSettings = GatewayConfig['http'];

/**
 * Options for `http.createServer`. `requestTimeout: 0`: bodies and answers (uploads, event streams) may last
 * long, so no whole-request deadline; that alone would also turn off `headersTimeout` (node takes the
 * smaller), so it is set explicitly. The expiry check runs often enough to keep the head deadline tight.
 */
export function serverOptions(http: HttpSettings): ServerOptions {
  return {
    requestTimeout: 0,
    headersTimeout: http.headersTimeoutMs,
    keepAliveTimeout: http.keepAliveTimeoutMs,
    connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(http.headersTimeoutMs / 4))),
    // strict parsing even if NODE_OPTIONS says --insecure-http-parser; duplicates are checked on rawHeaders
    insecureHTTPParser: false,
    requireHostHeader: true,
  };
}

/** Deadlines that take effect on a running server (a reload changes them for new requests). */
export function applyTimeouts(server: Server, http: HttpSettings): void {
  server.headersTimeout = http.headersTimeoutMs;
  server.keepAliveTimeout = http.keepAliveTimeoutMs;
  server.requestTimeout = 0;
}

/** A complete HTTP/1.1 answer written straight to a socket (no request object exists yet), then close. */
function rawProblem(socket: Socket, status: number, code: ErrorCode, detail: string, extra: Record<string, string> = {}): void {
  const body = JSON.stringify({ ...problem(code, detail, randomUUID()), status });
  const headers = { ...SECURITY_HEADERS, ...extra, 'content-type': PROBLEM_CONTENT_TYPE, 'cache-control': 'no-store', connection: 'close' };
  let head = `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\n`;
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
  head += `content-length: ${Buffer.byteLength(body)}\r\n\r\n`;
  socket.end(head + body);
  // a client that never reads or closes must not keep the socket either
  socket.setTimeout(2_000, () => socket.destroy());
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  503: 'Service Unavailable',
};

/** `::ffff:127.0.0.1` and `127.0.0.1` are one client. */
function clientAddress(socket: Socket): string {
  const address = socket.remoteAddress ?? 'unknown';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

/**
 * Admits each new connection against the caps before node's HTTP layer sees it: a refused one gets a
 * problem answer and is closed without a parser ever being attached, so none of its bytes are read as a request.
 */
function capConnections(server: Server, settings: () => HttpSettings, logger: Logger): { open: () => number } {
  const perClient = new Map<string, number>();
  let open = 0;
  const httpListeners = server.listeners('connection') as Array<(socket: Socket) => void>;
  server.removeAllListeners('connection');
  let warned = 0;
  server.on('connection', (socket: Socket) => {
    const http = settings();
    const client = clientAddress(socket);
    const fromClient = perClient.get(client) ?? 0;
    const refusal =
      open >= http.maxConnections
        ? { status: 503, code: 'UPSTREAM_UNAVAILABLE' as const, detail: 'The gateway is at its connection limit' }
        : fromClient >= http.maxConnectionsPerClient
          ? { status: 429, code: 'RATE_LIMITED' as const, detail: `More than ${http.maxConnectionsPerClient} connections from one address` }
          : undefined;
    if (refusal) {
      if (Date.now() - warned > 10_000) {
        warned = Date.now();
        logger.warn({ client, open, fromClient, status: refusal.status }, 'connection refused: cap reached');
      }
      socket.on('error', () => undefined);
      socket.resume(); // read and drop what it sends, so closing does not reset the answer away
      rawProblem(socket, refusal.status, refusal.code, refusal.detail, { 'retry-after': '1' });
      return;
    }
    open++;
    perClient.set(client, fromClient + 1);
    socket.once('close', () => {
      open--;
      const left = (perClient.get(client) ?? 1) - 1;
      if (left === 0) perClient.delete(client);
      else perClient.set(client, left);
    });
    for (const listener of httpListeners) listener.call(server, socket);
  });
  return { open: () => open };
}

/** What node's parser refused (or the head deadline) as problem+json, then close; never inside an answer already under way. */
function answerClientErrors(server: Server): void {
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    // an answer already under way on this socket: a problem written now would corrupt it
    const busy = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage?.headersSent === true;
    if (error.code === 'ECONNRESET' || !socket.writable || busy) {
      socket.destroy();
      return;
    }
    if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') rawProblem(socket, 408, 'VALIDATION_FAILED', 'The request head did not arrive in time');
    else if (error.code === 'HPE_HEADER_OVERFLOW') rawProblem(socket, 431, 'VALIDATION_FAILED', 'Request headers too large');
    else {
      const reason = (error as { reason?: string }).reason ?? 'Malformed request';
      rawProblem(socket, 400, 'VALIDATION_FAILED', `Malformed request: ${reason}`);
    }
  });
}

/** Installs the connection rules on a freshly created server; returns the number of open client connections. */
export function guardServer(server: Server, settings: () => HttpSettings, logger: Logger): { open: () => number } {
  answerClientErrors(server);
  return capConnections(server, settings, logger);
}

/**
 * Stalled-body cut-off for one request with a body: the socket's idle timer runs while the body arrives
 * (reads re-arm it). When it fires with the body still incomplete and the gateway ready to read, the client
 * stalled: the connection closes. It does not count time the gateway itself holds the body back
 * (backpressure from the service), and once the body is complete the answer may take as long as it takes.
 */
export function watchBody(req: IncomingMessage, res: ServerResponse, idleMs: number): void {
  const socket = req.socket;
  req.setTimeout(idleMs, () => {
    if (req.readableFlowing === false || req.readableLength > 0) {
      socket.setTimeout(idleMs); // our side is holding it: look again later
      return;
    }
    socket.destroy();
  });
  keepAnswerOpen(res);
}

/** Once the body is complete node asks the response what an idle timer means: a listener keeps a slow or quiet answer open. */
export function keepAnswerOpen(res: ServerResponse): void {
  res.on('timeout', keepAnswering);
}

function keepAnswering(): void {}
