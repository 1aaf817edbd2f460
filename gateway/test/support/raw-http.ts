import { connect, type Socket } from 'node:net';

/** One HTTP/1.1 response read off a raw socket. */
export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Splits what a raw socket received into complete responses. `methods` are the requests' methods in order
 * (a HEAD answer has no body whatever its Content-Length says). Stops at the first incomplete one.
 */
export function parseResponses(data: string, methods: string[]): RawResponse[] {
  const out: RawResponse[] = [];
  let rest = data;
  for (;;) {
    const end = rest.indexOf('\r\n\r\n');
    if (end === -1) return out;
    const [statusLine, ...lines] = rest.slice(0, end).split('\r\n');
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine ?? '')?.[1]);
    if (!Number.isInteger(status)) throw new Error(`not an HTTP response: ${JSON.stringify(rest.slice(0, 80))}`);
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const bodyless = methods[out.length] === 'HEAD' || status === 204 || status === 304;
    const bodyStart = end + 4;
    if (!bodyless && headers['transfer-encoding'] === 'chunked') {
      const chunked = readChunked(rest, bodyStart);
      if (!chunked) return out;
      out.push({ status, headers, body: chunked.body });
      rest = rest.slice(chunked.end);
      continue;
    }
    const length = bodyless ? 0 : Number(headers['content-length'] ?? 0);
    if (rest.length < bodyStart + length) return out;
    out.push({ status, headers, body: rest.slice(bodyStart, bodyStart + length) });
    rest = rest.slice(bodyStart + length);
  }
}

/** A chunked body starting at `from`, or undefined while incomplete (no trailers expected). */
function readChunked(data: string, from: number): { body: string; end: number } | undefined {
  let body = '';
  let at = from;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', at);
    if (lineEnd === -1) return undefined;
    const size = Number.parseInt(data.slice(at, lineEnd).split(';')[0] ?? '', 16);
    if (!Number.isInteger(size)) throw new Error(`bad chunk size in a response: ${JSON.stringify(data.slice(at, lineEnd))}`);
    if (size === 0) {
      if (data.length < lineEnd + 4) return undefined;
      return { body, end: lineEnd + 4 };
    }
    if (data.length < lineEnd + 2 + size + 2) return undefined;
    body += data.slice(lineEnd + 2, lineEnd + 2 + size);
    at = lineEnd + 2 + size + 2;
  }
}

export interface RawExchange {
  responses: RawResponse[];
  /** everything received */
  data: string;
  /** the server closed the connection (rather than the test, once it had what it waited for) */
  closedByServer: boolean;
}

/**
 * Sends bytes on a fresh connection and collects what comes back until `expected` responses are complete
 * or the server closes, bounded by `timeoutMs` (then it reports what it has).
 */
export function rawExchange(
  port: number,
  payload: string | Buffer,
  options: { methods: string[]; expected: number; timeoutMs?: number; localAddress?: string },
): Promise<RawExchange> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress: options.localAddress });
    let data = '';
    let done = false;
    const finish = (closedByServer: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ responses: safeParse(data, options.methods), data, closedByServer });
    };
    const timer = setTimeout(() => finish(false), options.timeoutMs ?? 3_000);
    socket.on('connect', () => socket.write(payload));
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString('latin1');
      if (safeParse(data, options.methods).length >= options.expected) finish(false);
    });
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
  });
}

function safeParse(data: string, methods: string[]): RawResponse[] {
  try {
    return parseResponses(data, methods);
  } catch {
    return [];
  }
}

/** A connection that stays open until the test closes it; resolves once connected. */
export function openSocket(port: number, localAddress?: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress }, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Resolves when the socket is closed (by either side); records whether it was the server. */
export function closed(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) resolve();
    else socket.once('close', () => resolve());
  });
}
