import { Agent, type ClientRequest, request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { ServiceEndpointConfig } from './gateway-config.ts';

/**
 * Upstream HTTP on node:http keep-alive agents (not the undici package: it measured ~12 MB more RSS at start
 * and ~15-30 MB more after load, at the same throughput). https service URLs load node:https only when used.
 */
type RequestFunction = typeof httpRequest;

/**
 * Which sockets a request uses. Long-lived answers (event streams, relays, downloads, model runs) hold a socket
 * for as long as the client reads: they get a pool of their own so they can never take the sockets ordinary
 * requests need (DESIGN 10); per-user caps in the pipelines keep one user from filling that pool.
 */
export type UpstreamPool = 'ordinary' | 'long-lived';

export interface ServiceRuntime {
  name: string;
  url: string;
  config: ServiceEndpointConfig;
  /** the ordinary pool */
  agent: Agent;
  longLivedAgent: Agent;
  send: RequestFunction;
  hostname: string;
  port: number;
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
}

/**
 * Sends one request to a service: connect timeout (new sockets only), header timeout, and no idle cut-off
 * afterwards (event streams may stay quiet). The body is a buffer or a stream (its errors abort the request).
 */
export function sendUpstream(
  service: ServiceRuntime,
  options: { path: string; method: string; headers: OutgoingHttpHeaders; body?: Buffer | Readable; headersTimeoutMs: number; pool?: UpstreamPool },
): UpstreamCall {
  const agent = options.pool === 'long-lived' ? service.longLivedAgent : service.agent;
  let request!: ClientRequest;
  let settled = false;
  let connectTimer: NodeJS.Timeout | undefined;
  let headersTimer: NodeJS.Timeout | undefined;
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(connectTimer);
      clearTimeout(headersTimer);
      reject(error);
      request.destroy();
    };
    request = service.send(
      { agent, host: service.hostname, port: service.port, path: options.path, method: options.method, headers: options.headers },
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
  return {
    response,
    // request is unset only when node:http refused the options synchronously (the promise rejected then)
    abort: () => request?.destroy(),
  };
}

/**
 * Two keep-alive agents per service endpoint: the ordinary pool (`connections`) and the long-lived pool
 * (`longLivedConnections`). Reloads reuse an agent whose settings did not change, and close the idle sockets
 * of agents no config refers to any more (in-flight requests finish).
 */
export class ServicePools {
  readonly #agents = new Map<string, Agent>();

  #agent(origin: string, pool: UpstreamPool, maxSockets: number): Agent {
    const key = JSON.stringify([origin, pool, maxSockets]);
    let agent = this.#agents.get(key);
    if (!agent) {
      const AgentClass = origin.startsWith('https:') ? process.getBuiltinModule('node:https').Agent : Agent;
      agent = new AgentClass({
        keepAlive: true,
        maxSockets,
        maxFreeSockets: maxSockets,
        scheduling: 'lifo',
        // idle kept-alive sockets close after 30 s, or earlier when the service's Keep-Alive header says so;
        // sockets in use only get a 'timeout' event nobody acts on (no idle cut-off on event streams)
        timeout: 30_000,
      });
      this.#agents.set(key, agent);
    }
    return agent;
  }

  resolve(services: Record<string, ServiceEndpointConfig>): Map<string, ServiceRuntime> {
    const out = new Map<string, ServiceRuntime>();
    for (const [name, config] of Object.entries(services)) {
      const url = new URL(config.url);
      const secure = url.protocol === 'https:';
      out.set(name, {
        name,
        url: url.origin,
        config,
        agent: this.#agent(url.origin, 'ordinary', config.connections),
        longLivedAgent: this.#agent(url.origin, 'long-lived', config.longLivedConnections),
        send: secure ? process.getBuiltinModule('node:https').request : httpRequest,
        hostname: url.hostname.replace(/^\[|\]$/g, ''),
        port: Number(url.port) || (secure ? 443 : 80),
      });
    }
    return out;
  }

  /** Closes the idle sockets of the agents the given runtimes do not use. */
  retain(inUse: Iterable<ServiceRuntime>): void {
    const keep = new Set<Agent>([...inUse].flatMap((s) => [s.agent, s.longLivedAgent]));
    for (const [key, agent] of this.#agents) {
      if (keep.has(agent)) continue;
      this.#agents.delete(key);
      // sockets still serving a request close when it is done instead of going back to the pool
      agent.keepSocketAlive = () => false;
      for (const sockets of Object.values(agent.freeSockets)) for (const socket of sockets ?? []) socket.destroy();
    }
  }

  async close(): Promise<void> {
    const agents = [...this.#agents.values()];
    this.#agents.clear();
    for (const agent of agents) agent.destroy();
  }
}
