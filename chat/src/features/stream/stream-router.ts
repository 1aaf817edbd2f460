import { ApiError, type Keyring, type RevocationMirror, streamToken, type UserStreamEvent, watchStreamToken } from '@platform/shared-types';
import { ApiRouter } from '@platform/shared-types/express';
import type { Response } from 'express';
import { z } from 'zod';
import type { SessionsService } from '../sessions/sessions-service.ts';
import type { SupervisionService } from '../supervision/supervision-service.ts';
import type { ChatBus, SessionEvent } from './chat-bus.ts';
import { CollectingSink, openSse, SseSink, writeSse, writeSseComment } from './sse.ts';
import type { StreamService } from './stream-service.ts';

const idParams = z.object({ id: z.string().min(1).max(64) }).strict();
const fileIds = z.array(z.string().min(1).max(64)).max(20).optional();

/** Keeps an SSE response alive with comments and runs `cleanup` once when it closes. */
function keepAlive(res: Response, heartbeatMs: number, cleanup: () => void | Promise<void>): void {
  const timer = setInterval(() => writeSseComment(res, 'heartbeat'), heartbeatMs);
  res.on('close', () => {
    clearInterval(timer);
    void cleanup();
  });
}

export function streamRouter(deps: {
  streams: StreamService;
  sessions: SessionsService;
  supervision: SupervisionService;
  bus: ChatBus;
  revocations: RevocationMirror;
  accessKeyring: Keyring;
  maxMessageChars: number;
  heartbeatMs: number;
}): ApiRouter {
  const { streams, sessions, supervision, bus, heartbeatMs } = deps;
  const messageBody = z
    .object({ message: z.string().trim().min(1).max(deps.maxMessageChars), fileIds, maxOutputTokens: z.number().int().min(1).max(1_000_000).optional() })
    .strict()
    .meta({ id: 'ChatMessageRequest', examples: [{ message: 'Explain photosynthesis in two sentences.', maxOutputTokens: 256 }] });
  const tags = ['chat'];
  return new ApiRouter()
    .route(
      {
        method: 'post',
        path: '/api/chat/sessions/:id/stream',
        summary: 'Send a message and stream the reply (SSE: session, delta, then done | interrupted | error)',
        access: 'user',
        tags,
        params: idParams,
        body: messageBody,
        produces: 'text/event-stream',
        errors: ['NOT_FOUND', 'FORBIDDEN', 'CONFLICT', 'INSUFFICIENT_CREDITS', 'UPSTREAM_UNAVAILABLE'],
      },
      async ({ actor, userToken, params, body, res }) => {
        await streams.run({
          actor,
          userToken,
          sessionId: params.id,
          message: body.message,
          fileIds: body.fileIds,
          maxOutputTokens: body.maxOutputTokens,
          sink: new SseSink(res),
        });
      },
    )
    .route(
      {
        method: 'post',
        path: '/api/chat/sessions/:id/messages',
        summary: 'Send a message and get the whole reply (not streamed, metered the same way)',
        access: 'user',
        tags,
        params: idParams,
        body: messageBody,
        response: z.object({
          messageId: z.string(),
          content: z.string(),
          status: z.string(),
          usage: z.unknown(),
          // absent while the charge waits for accounting (chargePending); accounting is the one source of the number
          credits: z.number().optional(),
          chargePending: z.boolean().optional(),
        }),
        errors: ['NOT_FOUND', 'FORBIDDEN', 'CONFLICT', 'INSUFFICIENT_CREDITS', 'UPSTREAM_UNAVAILABLE'],
      },
      async ({ actor, userToken, params, body, res }) => {
        const sink = new CollectingSink();
        res.on('close', () => {
          if (!res.writableFinished) sink.close();
        });
        await streams.run({
          actor,
          userToken,
          sessionId: params.id,
          message: body.message,
          fileIds: body.fileIds,
          maxOutputTokens: body.maxOutputTokens,
          sink,
        });
        return collectedReply(sink);
      },
    )
    .route(
      {
        method: 'get',
        path: '/api/chat/events',
        summary:
          "The caller's own event stream (SSE): supervisor feedback and interrupts. Ends with an error event (TOKEN_REVOKED, TOKEN_EXPIRED) when its access token dies",
        access: 'user',
        tags,
        produces: 'text/event-stream',
        errors: ['TOKEN_EXPIRED'],
      },
      async ({ actor, req, res }) => {
        const claims = streamToken(deps.accessKeyring, req.headers.authorization, actor);
        openSse(res);
        const unsubscribe = await bus.subscribe(bus.userChannel(actor.userId), (message) => writeSse(res, JSON.parse(message) as UserStreamEvent));
        writeSseComment(res, 'ready');
        let unwatch = () => {};
        keepAlive(res, heartbeatMs, async () => {
          unwatch();
          await unsubscribe();
        });
        // logout, password reset, disable or expiry end the stream: a terminal event, then close
        unwatch = watchStreamToken({
          claims,
          revocations: deps.revocations,
          onEnd: (reason) => {
            writeSse(res, { event: 'error', data: reason });
            res.end();
          },
        });
      },
    )
    .route(
      {
        method: 'get',
        path: '/internal/sessions/:id/observe',
        summary: "Replay and follow a session's stream events, whichever instance holds the stream (monitoring)",
        access: 'service',
        tags: ['internal'],
        params: idParams,
        query: z.object({ userId: z.string().min(1).max(64) }).strict(),
        produces: 'text/event-stream',
        errors: ['NOT_FOUND'],
      },
      async ({ params, query, res }) => {
        const session = await sessions.byId(params.id);
        if (session.userId !== query.userId) throw new ApiError('NOT_FOUND', 'No such session');
        const sessionId = session._id.toHexString();
        const seen = new Map<string, number>();
        const deliver = (event: SessionEvent) => {
          if (event.streamId !== undefined && event.seq !== undefined) {
            const last = seen.get(event.streamId);
            if (last !== undefined && event.seq <= last) return;
            seen.set(event.streamId, event.seq);
          }
          const { streamId: _streamId, seq: _seq, ...observed } = event;
          writeSse(res, observed);
        };
        // subscribe before reading the replay, then drop what both delivered (by stream and sequence)
        let buffered: SessionEvent[] | undefined = [];
        const unsubscribe = await bus.subscribe(bus.sessionChannel(sessionId), (message) => {
          const event = JSON.parse(message) as SessionEvent;
          if (buffered) buffered.push(event);
          else deliver(event);
        });
        let replay: SessionEvent[];
        try {
          replay = await bus.replay(sessionId);
        } catch (error) {
          await unsubscribe();
          throw error;
        }
        openSse(res);
        for (const event of replay) deliver(event);
        for (const event of buffered) deliver(event);
        buffered = undefined;
        writeSseComment(res, 'live');
        keepAlive(res, heartbeatMs, unsubscribe);
      },
    )
    .route(
      {
        method: 'post',
        path: '/api/sessions/:id/interrupt',
        summary: "Stop the reply streaming in a student's session (supervisor of the owner, or admin)",
        access: 'user',
        tags: ['supervision'],
        params: idParams,
        body: z.object({ reason: z.string().trim().min(1).max(500).optional() }).strict(),
        status: 202,
        response: z.object({ status: z.literal('interrupting') }),
        errors: ['NOT_FOUND', 'FORBIDDEN', 'CONFLICT'],
      },
      async ({ actor, userToken, params, body }) => {
        await supervision.interrupt(actor, params.id, body.reason, userToken);
        return { status: 'interrupting' as const };
      },
    )
    .route(
      {
        method: 'post',
        path: '/api/sessions/:id/feedback',
        summary: "Leave a supervisor message in a student's session; pushed to the student's event stream",
        access: 'user',
        tags: ['supervision'],
        params: idParams,
        body: z.object({ message: z.string().trim().min(1).max(deps.maxMessageChars) }).strict(),
        status: 201,
        response: z.object({ messageId: z.string(), sessionId: z.string(), createdAt: z.string() }),
        errors: ['NOT_FOUND', 'FORBIDDEN'],
      },
      async ({ actor, userToken, params, body }) => {
        const message = await supervision.feedback(actor, params.id, body.message, userToken);
        return { messageId: message._id.toHexString(), sessionId: message.sessionId.toHexString(), createdAt: message.createdAt.toISOString() };
      },
    );
}

/** The reply of a non-streaming call, or the stream's error as a problem. */
export function collectedReply(sink: CollectingSink) {
  const terminal = sink.terminal();
  if (!terminal || terminal.event === 'error') {
    const data = terminal?.data;
    throw new ApiError('UPSTREAM_UNAVAILABLE', data?.detail ?? 'The model failed to answer', {
      status: 502,
      extensions: { messageId: data?.messageId, usage: data?.usage, credits: data?.credits },
    });
  }
  const { data } = terminal;
  return {
    messageId: data.messageId,
    content: sink.text,
    status: terminal.event === 'done' ? 'complete' : 'interrupted',
    usage: data.usage,
    credits: data.credits,
    chargePending: terminal.event === 'done' ? terminal.data.chargePending : undefined,
  };
}
