import { Agent, type ClientRequest, request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { createRequire } from 'node:module';
import type { Readable } from 'node:stream';
import type { Dispatcher, Pool as UndiciPool } from 'undici';
import type { ServiceEndpointConfig } from './gateway-config.ts';

/**
 * Upstream HTTP: ordinary requests whose body is read whole (or absent) go through an undici `Pool` per instance
 * (`dispatch` with a raw handler: a quarter to a third less CPU per request than node's client, measured
 * side by side in the bench); streamed uploads, long-lived answers and health checks stay on node:http
 * keep-alive agents (a body node pipes keeps our own framing, DESIGN 10). https service URLs load node:https
 * only when used.
 */
type RequestFunction = typeof httpRequest;

// undici's Pool module alone: the package index also loads fetch, WebSocket, caches and mocks (~15 MB more RSS)
const require = createRequire(import.meta.url);
const Pool = require('undici/lib/dispatcher/pool.js') as typeof UndiciPool;
type Pool = UndiciPool;

/**
 * Which sockets a request uses. Long-lived answers (event streams, relays, downloads, model runs) hold a socket
 * for as long as the client reads: they get a pool of their own so they can never take the sockets ordinary
 * requests need (DESIGN 10); per-user caps in the pipelines keep one user from filling that pool.
 */
export type UpstreamPool = 'ordinary' | 'long-lived';

/** What the last look at an instance found: its readyPath answered 200, answered otherwise, or not at all. */
export type InstanceState = 'ready' | 'unavailable' | 'unreachable' | 'unknown';

const EJECT_MIN_MS = 1_000;
const EJECT_MAX_MS = 30_000;

/**
 * One instance of a service (one URL of its `urls`): its two socket pools, the requests it has in flight
 * (least-outstanding balancing) and whether it takes requests. An instance that refuses a connection is
 * ejected for 1 s, doubling to 30 s while it keeps refusing; one whose health check fails is ejected until a
 * check passes. Either way a passing health check brings it back at once.
 */
export class ServiceInstance {
  readonly origin: string;
  readonly hostname: string;
  readonly port: number;
  readonly send: RequestFunction;
  /** the ordinary pool, for streamed uploads and health checks */
  readonly agent: Agent;
  readonly longLivedAgent: Agent;
  readonly #connections: number;
  readonly #connectTimeoutMs: number;
  #dispatcher: Pool | undefined;
  #retired = false;
  outstanding = 0;
  state: InstanceState = 'unknown';
  /** takes no requests before this (performance.now() ms); Infinity: until a health check passes */
  ejectedUntil = 0;
  #refusals = 0;
  lastProbeAt = Number.NEGATIVE_INFINITY;
  probing = false;

  constructor(origin: string, agent: Agent, longLivedAgent: Agent, limits: { connections: number; connectTimeoutMs: number }) {
    const url = new URL(origin);
    const secure = url.protocol === 'https:';
    this.origin = url.origin;
    this.hostname = url.hostname.replace(/^\[|\]$/g, '');
    this.port = Number(url.port) || (secure ? 443 : 80);
    this.send = secure ? process.getBuiltinModule('node:https').request : httpRequest;
    this.agent = agent;
    this.longLivedAgent = longLivedAgent;
    this.#connections = limits.connections;
    this.#connectTimeoutMs = limits.connectTimeoutMs;
  }

  /** the ordinary pool for requests with a body read whole or none (made on first use; one per call once retired) */
  dispatcher(): Pool {
    if (this.#retired) return this.#newPool();
    this.#dispatcher ??= this.#newPool();
    return this.#dispatcher;
  }

  #newPool(): Pool {
    return new Pool(this.origin, {
      connections: this.#connections,
      connect: { timeout: this.#connectTimeoutMs },
      // the header deadline is ours (from the request's start, like node:http's); no idle cut-off of a body
      headersTimeout: 0,
      bodyTimeout: 0,
      // idle kept-alive sockets close after 30 s, or earlier when the service's Keep-Alive header says so
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 30_000,
    });
  }

  /**
   * No config refers to the instance any more: its pool closes once its requests are done (destroy: at once).
   * A request still under way on the old config (a retry) gets a pool of its own that closes after it.
   */
  closeDispatcher(destroy: boolean): void {
    const pool = this.#dispatcher;
    this.#dispatcher = undefined;
    this.#retired = true;
    if (pool) void (destroy ? pool.destroy() : pool.close()).catch(() => undefined);
  }

  get retired(): boolean {
    return this.#retired;
  }

  available(now = performance.now()): boolean {
    return now >= this.ejectedUntil;
  }

  /** the instance refused a connection (or did not accept one in time) */
  refused(): void {
    // refusals of requests already under way when it was ejected do not lengthen the back-off
    if (!this.available()) return;
    const backoff = Math.min(EJECT_MIN_MS * 2 ** this.#refusals, EJECT_MAX_MS);
    this.#refusals += 1;
    this.state = 'unreachable';
    this.ejectedUntil = Math.max(this.ejectedUntil, performance.now() + backoff);
  }

  /** a health check's finding: a failing instance stays out until a check passes (or, with no periodic checks, for a back-off) */
  checked(state: InstanceState, periodicChecks: boolean): void {
    if (state === 'ready') {
      this.state = state;
      this.#refusals = 0;
      this.ejectedUntil = 0;
    } else if (periodicChecks) {
      this.state = state;
      this.ejectedUntil = Number.POSITIVE_INFINITY;
    } else {
      this.refused();
      this.state = state;
    }
  }
}

export interface ServiceRuntime {
  name: string;
  config: ServiceEndpointConfig;
  instances: ServiceInstance[];
  /** the instance for the next request: the available one with the fewest in flight (ties in turn) */
  pick(exclude?: ServiceInstance): ServiceInstance | undefined;
}

function createRuntime(name: string, config: ServiceEndpointConfig, instances: ServiceInstance[]): ServiceRuntime {
  let turn = 0;
  return {
    name,
    config,
    instances,
    pick(exclude) {
      if (instances.length === 1) return exclude === instances[0] ? undefined : instances[0];
      const now = performance.now();
      let best: ServiceInstance | undefined;
      let fallback: ServiceInstance | undefined;
      turn = (turn + 1) % instances.length;
      for (let i = 0; i < instances.length; i++) {
        const instance = instances[(turn + i) % instances.length] as ServiceInstance;
        if (instance === exclude) continue;
        if (instance.available(now)) {
          if (!best || instance.outstanding < best.outstanding) best = instance;
        } else if (!fallback || instance.ejectedUntil < fallback.ejectedUntil) fallback = instance;
      }
      // every instance ejected: still try the one due back first rather than refuse outright
      return best ?? fallback;
    },
  };
}

/** Upstream failures the proxy maps to problems: cannot connect in time, no response headers in time. */
export class UpstreamTimeout extends Error {
  readonly code: 'UPSTREAM_CONNECT_TIMEOUT' | 'UPSTREAM_HEADERS_TIMEOUT';
  constructor(code: 'UPSTREAM_CONNECT_TIMEOUT' | 'UPSTREAM_HEADERS_TIMEOUT', message: string) {
    super(message);
    this.code = code;
  }
}

export interface UpstreamCall {
  /** the response once its headers arrived; rejects on connect/header timeouts and socket errors */
  response: Promise<IncomingMessage>;
  /** closes the upstream connection (the service sees the client leave) */
  abort(): void;
  /** the instance of the latest attempt, as `host:port` (a bounded metric label) */
  instance(): string;
}

/**
 * When a failed request may go again to another instance of the service:
 * - `none`: never (a streamed body was read, or a long-lived answer);
 * - `refused`: the connection was refused or not accepted in time, so nothing was sent (buffered bodies);
 * - `idempotent`: also when a kept-alive connection broke before any response (GET/HEAD/OPTIONS without a body).
 */
export type RetryMode = 'none' | 'refused' | 'idempotent';

const REFUSALS = new Set(['ECONNREFUSED', 'UPSTREAM_CONNECT_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH']);
// UND_ERR_SOCKET: undici's "other side closed" (a kept-alive socket the service closed or lost)
const BROKEN = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);

interface Attempt {
  request?: ClientRequest;
  response: Promise<IncomingMessage>;
}

export interface UpstreamOptions {
  path: string;
  method: string;
  headers: OutgoingHttpHeaders;
  body?: Buffer | Readable;
  headersTimeoutMs: number;
  pool?: UpstreamPool;
  retry?: RetryMode;
  /** send to this instance (health probes); otherwise the service picks one */
  instance?: ServiceInstance;
}

/**
 * Sends one request to a service instance: connect timeout (new sockets only), header timeout, and no idle
 * cut-off afterwards (event streams may stay quiet). The body is a buffer or a stream (its errors abort the
 * request). A refused connection ejects the instance; the request goes once to another when `retry` allows.
 */
export function sendUpstream(service: ServiceRuntime, options: UpstreamOptions): UpstreamCall {
  const first = options.instance ?? service.pick();
  if (!first) {
    const response = Promise.reject(new UpstreamTimeout('UPSTREAM_CONNECT_TIMEOUT', `${service.name} has no instance`));
    return { response, abort: () => undefined, instance: () => 'none' };
  }
  let current = attempt(service, first, options);
  let target = first;
  const retry = options.retry ?? 'none';
  const response =
    retry === 'none' || options.instance
      ? current.response
      : current.response.catch((error: Error & { code?: string; reusedSocket?: boolean }) => {
          const code = error.code ?? '';
          const again = REFUSALS.has(code) || (retry === 'idempotent' && BROKEN.has(code));
          const other = again ? service.pick(first) : undefined;
          if (!other) throw error;
          target = other;
          current = attempt(service, other, options);
          return current.response;
        });
  // request is unset only when node:http refused the options synchronously (the promise rejected then)
  return { response, abort: () => current.request?.destroy(), instance: () => `${target.hostname}:${target.port}` };
}

function attempt(service: ServiceRuntime, instance: ServiceInstance, options: UpstreamOptions): Attempt {
  const agent = options.pool === 'long-lived' ? instance.longLivedAgent : instance.agent;
  const out: Attempt = { response: undefined as unknown as Promise<IncomingMessage> };
  let settled = false;
  let connectTimer: NodeJS.Timeout | undefined;
  let headersTimer: NodeJS.Timeout | undefined;
  let inFlight = false;
  const release = () => {
    if (!inFlight) return;
    inFlight = false;
    instance.outstanding -= 1;
  };
  out.response = new Promise<IncomingMessage>((resolve, reject) => {
    const fail = (error: Error & { code?: string }) => {
      if (settled) return;
      settled = true;
      release();
      clearTimeout(connectTimer);
      clearTimeout(headersTimer);
      if (REFUSALS.has(error.code ?? '')) instance.refused();
      reject(error);
      request.destroy();
    };
    const request = instance.send(
      { agent, host: instance.hostname, port: instance.port, path: options.path, method: options.method, headers: options.headers },
      (res) => {
        if (settled) {
          res.destroy();
          return;
        }
        settled = true;
        clearTimeout(connectTimer);
        clearTimeout(headersTimer);
        resolve(res);
      },
    );
    out.request = request;
    inFlight = true;
    instance.outstanding += 1;
    request.once('close', release);
    request.on('error', fail); // also after the response: socket errors then end the response body (see relay)
    request.once('socket', (socket) => {
      if (!socket.connecting) return; // a kept-alive socket: already connected
      connectTimer = setTimeout(
        () => fail(new UpstreamTimeout('UPSTREAM_CONNECT_TIMEOUT', `no connection within ${service.config.connectTimeoutMs} ms`)),
        service.config.connectTimeoutMs,
      );
      socket.once('connect', () => clearTimeout(connectTimer));
    });
    headersTimer = setTimeout(
      () => fail(new UpstreamTimeout('UPSTREAM_HEADERS_TIMEOUT', `no response headers within ${options.headersTimeoutMs} ms`)),
      options.headersTimeoutMs,
    );
    const { body } = options;
    if (body === undefined) request.end();
    else if (Buffer.isBuffer(body)) request.end(body);
    else {
      body.on('error', fail);
      body.pipe(request);
    }
  });
  return out;
}

/** Where a dispatched response goes (the proxy writes it into the client response as it arrives). */
export interface ResponseSink {
  /** the response head; `false` pauses the body until `resume` is called */
  head(status: number, rawHeaders: Buffer[], resume: () => void): boolean;
  /** a body chunk; `false` pauses until `resume` */
  data(chunk: Buffer): boolean;
  end(): void;
  /** the response broke after its head (the service closed or the call was aborted) */
  broken(error: Error): void;
}

export interface DispatchCall {
  /** resolves once the response ended or broke after its head; rejects when no head came (after the retry) */
  done: Promise<void>;
  /** closes the upstream connection (the service sees the client leave) */
  abort(): void;
  /** the instance of the latest attempt, as `host:port` (a bounded metric label) */
  instance(): string;
}

export interface DispatchOptions {
  path: string;
  method: string;
  headers: Record<string, string | string[]>;
  /** read whole (undici writes its Content-Length) or none */
  body?: Buffer;
  headersTimeoutMs: number;
  retry: RetryMode;
}

/**
 * `sendUpstream` for the ordinary pool when the body is read whole or absent, on undici's `Pool.dispatch`:
 * the same instance choice, header deadline (from the start), refusal ejection and one retry on another
 * instance, but the response goes straight into `sink` (no IncomingMessage) with undici's backpressure.
 */
export function dispatchUpstream(service: ServiceRuntime, options: DispatchOptions, sink: ResponseSink): DispatchCall {
  const first = service.pick();
  if (!first) {
    const done = Promise.reject(new UpstreamTimeout('UPSTREAM_CONNECT_TIMEOUT', `${service.name} has no instance`));
    return { done, abort: () => undefined, instance: () => 'none' };
  }
  let target = first;
  let current = new DispatchAttempt(first, options, sink);
  const done =
    options.retry === 'none'
      ? current.done
      : current.done.catch((error: Error & { code?: string }) => {
          const code = error.code ?? '';
          const again = !current.aborted && (REFUSALS.has(code) || (options.retry === 'idempotent' && BROKEN.has(code)));
          const other = again ? service.pick(first) : undefined;
          if (!other) throw error;
          target = other;
          current = new DispatchAttempt(other, options, sink);
          return current.done;
        });
  return { done, abort: () => current.abort(), instance: () => `${target.hostname}:${target.port}` };
}

class UpstreamAborted extends Error {
  readonly code = 'UPSTREAM_ABORTED';
}

/** One try on one instance: an undici dispatch handler (the raw-header form: no header parsing by undici). */
class DispatchAttempt implements Dispatcher.DispatchHandler {
  readonly done: Promise<void>;
  aborted = false;
  readonly #instance: ServiceInstance;
  readonly #sink: ResponseSink;
  #abortSocket: ((error?: Error) => void) | undefined;
  /** set when the call ended before undici handed it a socket: abort it as soon as it does */
  #cancel: Error | undefined;
  #headed = false;
  #settled = false;
  #resolve!: () => void;
  #reject!: (error: Error) => void;
  readonly #timer: NodeJS.Timeout;

  constructor(instance: ServiceInstance, options: DispatchOptions, sink: ResponseSink) {
    this.#instance = instance;
    this.#sink = sink;
    this.done = new Promise<void>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    instance.outstanding += 1;
    const { headersTimeoutMs } = options;
    this.#timer = setTimeout(
      () => this.#stop(new UpstreamTimeout('UPSTREAM_HEADERS_TIMEOUT', `no response headers within ${headersTimeoutMs} ms`)),
      headersTimeoutMs,
    );
    const pool = instance.dispatcher();
    pool.dispatch({ path: options.path, method: options.method, headers: options.headers, body: options.body ?? null }, this);
    if (instance.retired) void pool.close().catch(() => undefined); // waits for this request
  }

  abort(): void {
    this.aborted = true;
    this.#stop(new UpstreamAborted('the client left'));
  }

  /** ends the call from our side: the socket (if any) is closed, the error goes where the call stands */
  #stop(error: Error): void {
    if (this.#settled) return;
    if (this.#abortSocket) this.#abortSocket(error);
    else {
      this.#cancel = error;
      this.onError(error);
    }
  }

  #settle(): boolean {
    if (this.#settled) return false;
    this.#settled = true;
    this.#instance.outstanding -= 1;
    clearTimeout(this.#timer);
    return true;
  }

  onConnect(abort: (error?: Error) => void): void {
    if (this.#cancel) abort(this.#cancel);
    else this.#abortSocket = abort;
  }

  onHeaders(status: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (this.#settled) return false;
    this.#headed = true;
    clearTimeout(this.#timer);
    return this.#sink.head(status, rawHeaders, resume);
  }

  onData(chunk: Buffer): boolean {
    return this.#settled ? false : this.#sink.data(chunk);
  }

  onComplete(): void {
    if (!this.#settle()) return;
    this.#sink.end();
    this.#resolve();
  }

  onError(error: Error & { code?: string }): void {
    if (!this.#settle()) return;
    if (this.#headed) {
      this.#sink.broken(error);
      this.#resolve();
      return;
    }
    if (REFUSALS.has(error.code ?? '')) this.#instance.refused();
    this.#reject(error);
  }
}

/** GETs an instance's readyPath (the whole answer within timeoutMs) and says what it found. */
export async function checkInstance(service: ServiceRuntime, instance: ServiceInstance, timeoutMs: number): Promise<InstanceState> {
  const call = sendUpstream(service, {
    path: service.config.readyPath,
    method: 'GET',
    headers: { accept: 'application/json' },
    headersTimeoutMs: timeoutMs,
    instance,
  });
  const timer = setTimeout(call.abort, timeoutMs);
  try {
    const response = await call.response;
    response.resume();
    await new Promise<void>((resolve) => response.once('close', resolve));
    return response.statusCode === 200 && response.complete ? 'ready' : 'unavailable';
  } catch (error) {
    // a refusal is unreachable; an answer that did not come in time is unavailable
    return REFUSALS.has((error as { code?: string }).code ?? '') || BROKEN.has((error as { code?: string }).code ?? '') ? 'unreachable' : 'unavailable';
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Instances of every service endpoint, each with an ordinary pool (`connections`: undici's, plus a node:http
 * agent for streamed uploads and health checks) and a long-lived one (`longLivedConnections`). Reloads reuse an instance whose settings did not change
 * (its health state and sockets too), and close the idle sockets of instances no config refers to any more
 * (in-flight requests finish). A ticker runs each service's health checks.
 */
export class ServicePools {
  readonly #instances = new Map<string, ServiceInstance>();
  #active: ServiceRuntime[] = [];
  #ticker: NodeJS.Timeout | undefined;

  #agent(origin: string, maxSockets: number): Agent {
    const AgentClass = origin.startsWith('https:') ? process.getBuiltinModule('node:https').Agent : Agent;
    return new AgentClass({
      keepAlive: true,
      maxSockets,
      maxFreeSockets: maxSockets,
      scheduling: 'lifo',
      // idle kept-alive sockets close after 30 s, or earlier when the service's Keep-Alive header says so;
      // sockets in use only get a 'timeout' event nobody acts on (no idle cut-off on event streams)
      timeout: 30_000,
    });
  }

  #instance(url: string, config: ServiceEndpointConfig): ServiceInstance {
    const origin = new URL(url).origin;
    const key = JSON.stringify([origin, config.connections, config.longLivedConnections, config.connectTimeoutMs]);
    let instance = this.#instances.get(key);
    if (!instance) {
      instance = new ServiceInstance(origin, this.#agent(origin, config.connections), this.#agent(origin, config.longLivedConnections), config);
      this.#instances.set(key, instance);
    }
    return instance;
  }

  resolve(services: Record<string, ServiceEndpointConfig>): Map<string, ServiceRuntime> {
    const out = new Map<string, ServiceRuntime>();
    for (const [name, config] of Object.entries(services)) {
      out.set(
        name,
        createRuntime(
          name,
          config,
          config.urls.map((url) => this.#instance(url, config)),
        ),
      );
    }
    return out;
  }

  /** Makes `inUse` the services health-checked, and closes the idle sockets of the instances they do not use. */
  retain(inUse: Iterable<ServiceRuntime>): void {
    this.#active = [...inUse];
    const keep = new Set(this.#active.flatMap((s) => s.instances));
    for (const [key, instance] of this.#instances) {
      if (keep.has(instance)) continue;
      this.#instances.delete(key);
      instance.closeDispatcher(false);
      for (const agent of [instance.agent, instance.longLivedAgent]) {
        // sockets still serving a request close when it is done instead of going back to the pool
        agent.keepSocketAlive = () => false;
        for (const sockets of Object.values(agent.freeSockets)) for (const socket of sockets ?? []) socket.destroy();
      }
    }
    this.#ticker ??= setInterval(() => this.#checkDue(), 250).unref();
  }

  #checkDue(): void {
    const now = performance.now();
    for (const service of this.#active) {
      const { healthCheckIntervalMs: every, healthCheckTimeoutMs: timeoutMs } = service.config;
      if (every === 0) continue;
      for (const instance of service.instances) {
        if (instance.probing || now - instance.lastProbeAt < every) continue;
        instance.probing = true;
        instance.lastProbeAt = now;
        void checkInstance(service, instance, timeoutMs).then((state) => {
          instance.probing = false;
          instance.checked(state, true);
        });
      }
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#ticker);
    this.#ticker = undefined;
    this.#active = [];
    const instances = [...this.#instances.values()];
    this.#instances.clear();
    for (const instance of instances) {
      instance.closeDispatcher(true);
      instance.agent.destroy();
      instance.longLivedAgent.destroy();
    }
  }
}
