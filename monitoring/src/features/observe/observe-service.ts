import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import {
  type AccessClaims,
  type Actor,
  ApiError,
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
import { monitoringMetrics } from '../../metrics.ts';
import { type Pair, pairKey, type RelationshipChanges } from '../relationships/relationship-changes.ts';
import type { RelationshipService } from '../relationships/relationships-service.ts';

/** What the observer asked for and the credentials it asked with. */
export interface ObserveRequest {
  studentId: string;
  sessionId: string;
  /** the observer's access token: chat is opened on its behalf, and the relay ends when it dies */
  userToken: string | undefined;
  requestId: string | undefined;
}

export interface ObserveServiceDeps {
  /** opens chat's observe stream (service token, the observer's token, request id) */
  client: Pick<ServiceClient, 'stream'>;
  heartbeatMs: number;
  relationships: Pick<RelationshipService, 'authorizeObserve' | 'isSupervisorOf'>;
  changes: Pick<RelationshipChanges, 'onChange'>;
  logger: Logger;
  accessKeyring: Keyring;
  revocations: RevocationMirror;
}

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
export function observeService(deps: ObserveServiceDeps) {
  const { client, relationships, logger } = deps;
  const open = new Set<OpenRelay>();

  async function openUpstream(request: ObserveRequest, signal: AbortSignal) {
    try {
      return await client.stream('chat', `/internal/sessions/${encodeURIComponent(request.sessionId)}/observe`, {
        accept: 'text/event-stream',
        query: { userId: request.studentId },
        userToken: request.userToken,
        requestId: request.requestId,
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

  /** Copies the upstream's events to the observer until either side ends or `relay.end` is called. */
  async function pump(relay: OpenRelay, body: AsyncIterable<Buffer> & { destroy(): void }, res: ServerResponse, controller: AbortController) {
    const send = (text: string) => {
      if (!res.destroyed && !res.writableEnded) res.write(text);
    };
    const heartbeat = setInterval(() => send(': heartbeat\n\n'), deps.heartbeatMs);
    const parser = createParser({ onEvent: (message: EventSourceMessage) => send(sseFrame(message)) });
    const decoder = new TextDecoder();
    try {
      for await (const chunk of body) {
        parser.feed(decoder.decode(chunk, { stream: true }));
        if (res.writableNeedDrain) await once(res, 'drain', { signal: controller.signal });
      }
    } catch (error) {
      if (!controller.signal.aborted) {
        logger.warn({ err: { message: (error as Error).message } }, 'observe upstream failed');
        monitoringMetrics.relayErrors.inc({ kind: 'broken' });
        relay.end({ code: 'UPSTREAM_UNAVAILABLE', detail: 'The observed stream broke off' });
      }
    } finally {
      clearInterval(heartbeat);
    }
  }

  /** Opens the observer's event stream and relays until the end; the terminal error event says why, when it was not the end of the stream. */
  async function relayTo(
    actor: Actor,
    studentId: string,
    claims: AccessClaims,
    body: AsyncIterable<Buffer> & { destroy(): void },
    res: ServerResponse,
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
    let endedBy: ErrorEventData | undefined;
    const relay: OpenRelay = {
      pair: actor.role === 'admin' ? undefined : { supervisorId: actor.userId, studentId },
      end: (reason) => {
        endedBy ??= reason;
        controller.abort();
      },
    };
    open.add(relay);
    monitoringMetrics.observersOpen.inc();
    const unwatch = watchStreamToken({ claims, revocations: deps.revocations, onEnd: (reason) => relay.end(reason) });
    try {
      await pump(relay, body, res, controller);
    } finally {
      unwatch();
      open.delete(relay);
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
  async function recheck(pairs: Pair[]): Promise<void> {
    const keys = new Set(pairs.map(pairKey));
    for (const relay of [...open]) {
      if (!relay.pair || !keys.has(pairKey(relay.pair))) continue;
      try {
        if (!(await relationships.isSupervisorOf(relay.pair.supervisorId, relay.pair.studentId))) {
          relay.end({ code: 'FORBIDDEN', detail: 'The supervision of this student ended' });
        }
      } catch (error) {
        logger.warn({ err: error }, 'could not recheck an observed relationship');
      }
    }
  }
  deps.changes.onChange((pairs) => void recheck(pairs));

  return {
    /** relays currently open (for tests and metrics) */
    get openCount(): number {
      return open.size;
    },

    /** Relays the session to the observer on `res` (the observer's response, which closes when it leaves). */
    async observe(actor: Actor, request: ObserveRequest, res: ServerResponse): Promise<void> {
      await relationships.authorizeObserve(actor, request.studentId);
      const controller = new AbortController();
      const clientGone = () => controller.abort();
      // the response closes when the observer disconnects (req's close fires as soon as its empty body is read)
      res.once('close', clientGone);
      try {
        const upstream = await openUpstream(request, controller.signal);
        if (controller.signal.aborted) {
          upstream.body.destroy();
          return;
        }
        let claims: AccessClaims;
        try {
          claims = streamToken(deps.accessKeyring, request.userToken ? `Bearer ${request.userToken}` : undefined, actor);
        } catch (error) {
          upstream.body.destroy();
          throw error;
        }
        await relayTo(actor, request.studentId, claims, upstream.body, res, controller);
      } finally {
        res.off('close', clientGone);
      }
    },

    /** Ends every relay (shutdown); the client's owner closes its connections. */
    async close(): Promise<void> {
      for (const relay of [...open]) relay.end();
    },
  };
}

export type ObserveService = ReturnType<typeof observeService>;
