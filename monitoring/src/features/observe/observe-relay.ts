import { once } from 'node:events';
import {
  type AccessClaims,
  type Actor,
  ApiError,
  bearerToken,
  type ErrorEventData,
  type ErrorStreamEvent,
  type Keyring,
  type Logger,
  type RevocationMirror,
  type ServiceClient,
  streamToken,
  watchStreamToken,
} from '@platform/shared-types';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import type { Request, Response } from 'express';
import { monitoringMetrics } from '../../metrics.ts';
import { type Pair, pairKey, type RelationshipChanges } from '../relationships/relationship-changes.ts';
import type { RelationshipService } from '../relationships/relationships-service.ts';

/** One SSE frame; multi-line data becomes several data lines, as the format requires. */
export function sseFrame(message: { event?: string; data: string; id?: string }): string {
  let frame = '';
  if (message.id) frame += `id: ${message.id.replace(/[\r\n]/g, '')}\n`;
  if (message.event) frame += `event: ${message.event.replace(/[\r\n]/g, '')}\n`;
  for (const line of message.data.split(/\r\n|\r|\n/)) frame += `data: ${line}\n`;
  return `${frame}\n`;
}

interface OpenRelay {
  pair: Pair | undefined;
  end(reason?: ErrorEventData): void;
}

/**
 * Relays chat's observe stream (GET /internal/sessions/:id/observe, SSE) to a supervisor: checks the
 * relationship first, opens the upstream with a service token, re-frames each parsed event, adds heartbeats,
 * and closes the upstream as soon as the supervisor leaves, the relationship ends, or the supervisor's access
 * token is revoked or expires (a terminal error event, then close).
 */
export class ObserveRelay {
  readonly #client: ServiceClient;
  readonly #heartbeatMs: number;
  readonly #relationships: RelationshipService;
  readonly #logger: Logger;
  readonly #accessKeyring: Keyring;
  readonly #revocations: RevocationMirror;
  readonly #open = new Set<OpenRelay>();

  constructor(options: {
    /** opens chat's observe stream (service token, the observer's token, request id) */
    client: ServiceClient;
    heartbeatMs: number;
    relationships: RelationshipService;
    changes: RelationshipChanges;
    logger: Logger;
    accessKeyring: Keyring;
    revocations: RevocationMirror;
  }) {
    this.#accessKeyring = options.accessKeyring;
    this.#revocations = options.revocations;
    this.#client = options.client;
    this.#heartbeatMs = options.heartbeatMs;
    this.#relationships = options.relationships;
    this.#logger = options.logger;
    options.changes.onChange((pairs) => void this.#recheck(pairs));
  }

  /** relays currently open (for tests and metrics) */
  get openCount(): number {
    return this.#open.size;
  }

  async relay(actor: Actor, studentId: string, sessionId: string, req: Request, res: Response): Promise<void> {
    await this.#relationships.authorizeObserve(actor, studentId);
    const controller = new AbortController();
    const clientGone = () => controller.abort();
    // the response closes when the observer disconnects (req's close fires as soon as its empty body is read)
    res.once('close', clientGone);
    try {
      const upstream = await this.#openUpstream(studentId, sessionId, req, controller.signal);
      if (controller.signal.aborted) {
        upstream.body.destroy();
        return;
      }
      let claims: AccessClaims;
      try {
        claims = streamToken(this.#accessKeyring, req.headers.authorization, actor);
      } catch (error) {
        upstream.body.destroy();
        throw error;
      }
      await this.#pump(actor, studentId, claims, upstream.body, res, controller);
    } finally {
      res.off('close', clientGone);
    }
  }

  async #openUpstream(studentId: string, sessionId: string, req: Request, signal: AbortSignal) {
    try {
      return await this.#client.stream('chat', `/internal/sessions/${encodeURIComponent(sessionId)}/observe`, {
        accept: 'text/event-stream',
        query: { userId: studentId },
        userToken: bearerToken(req.headers.authorization),
        requestId: req.requestId,
        signal,
      });
    } catch (error) {
      if (signal.aborted) throw new ApiError('UPSTREAM_UNAVAILABLE', 'The observer left before chat answered', { cause: error });
      // an error with a cause never reached chat; one without is chat's answer
      monitoringMetrics.relayErrors.inc({ kind: error instanceof Error && error.cause !== undefined ? 'connect' : 'refused' });
      // chat refusing our credentials is our fault, not the observer's: not a 401 to them
      if (error instanceof ApiError && error.code === 'UNAUTHENTICATED')
        throw new ApiError('UPSTREAM_UNAVAILABLE', 'chat refused to open the observation', { status: 502 });
      throw error;
    }
  }

  async #pump(
    actor: Actor,
    studentId: string,
    claims: AccessClaims,
    body: AsyncIterable<Buffer> & { destroy(): void },
    res: Response,
    controller: AbortController,
  ) {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.flushHeaders();
    res.write(': observing\n\n');
    const send = (text: string) => {
      if (!res.destroyed && !res.writableEnded) res.write(text);
    };
    const heartbeat = setInterval(() => send(': heartbeat\n\n'), this.#heartbeatMs);
    let endedBy: ErrorEventData | undefined;
    const relay: OpenRelay = {
      pair: actor.role === 'admin' ? undefined : { supervisorId: actor.userId, studentId },
      end: (reason) => {
        endedBy ??= reason;
        controller.abort();
      },
    };
    this.#open.add(relay);
    monitoringMetrics.observersOpen.inc();
    const unwatch = watchStreamToken({ claims, revocations: this.#revocations, onEnd: (reason) => relay.end(reason) });
    const parser = createParser({
      onEvent: (message: EventSourceMessage) => {
        send(sseFrame(message));
      },
    });
    const decoder = new TextDecoder();
    try {
      for await (const chunk of body) {
        parser.feed(decoder.decode(chunk, { stream: true }));
        if (res.writableNeedDrain) await once(res, 'drain', { signal: controller.signal });
      }
    } catch (error) {
      if (!controller.signal.aborted) {
        this.#logger.warn({ err: { message: (error as Error).message } }, 'observe upstream failed');
        monitoringMetrics.relayErrors.inc({ kind: 'broken' });
        endedBy ??= { code: 'UPSTREAM_UNAVAILABLE', detail: 'The observed stream broke off' };
      }
    } finally {
      clearInterval(heartbeat);
      unwatch();
      this.#open.delete(relay);
      monitoringMetrics.observersOpen.dec();
      controller.abort();
      body.destroy();
      if (!res.writableEnded && !res.destroyed) {
        if (endedBy) {
          const terminal: ErrorStreamEvent = { event: 'error', data: endedBy };
          res.write(sseFrame({ event: terminal.event, data: JSON.stringify(terminal.data) }));
        }
        res.end();
      }
    }
  }

  /** A pair changed somewhere: relays whose supervisor no longer supervises the student end now. */
  async #recheck(pairs: Pair[]): Promise<void> {
    const keys = new Set(pairs.map(pairKey));
    for (const relay of [...this.#open]) {
      if (!relay.pair || !keys.has(pairKey(relay.pair))) continue;
      try {
        if (!(await this.#relationships.isSupervisorOf(relay.pair.supervisorId, relay.pair.studentId))) {
          relay.end({ code: 'FORBIDDEN', detail: 'The supervision of this student ended' });
        }
      } catch (error) {
        this.#logger.warn({ err: error }, 'could not recheck an observed relationship');
      }
    }
  }

  /** Ends every relay (shutdown); the client's owner closes its connections. */
  async close(): Promise<void> {
    for (const relay of [...this.#open]) relay.end();
  }
}
