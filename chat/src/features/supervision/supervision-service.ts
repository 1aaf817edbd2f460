import { type Actor, ApiError, authorize, monitoringSupervisorCheck, type ServiceClient, type SupervisorCheck } from '@platform/shared-types';
import type { SessionDoc, SessionsDal } from '../sessions/sessions-dal.ts';
import type { SessionsService } from '../sessions/sessions-service.ts';
import type { ChatBus } from '../stream/chat-bus.ts';
import type { StreamService } from '../stream/stream-service.ts';

/** Supervisors (of the session's owner, per monitoring) and admins acting on a student's session. */
export interface SupervisionDeps {
  sessions: SessionsService;
  dal: SessionsDal;
  streams: StreamService;
  bus: ChatBus;
  client: ServiceClient;
}

export class SupervisionService {
  readonly #deps: SupervisionDeps;
  /** asks monitoring, on the supervisor's behalf, whether they supervise the student */
  readonly #supervises: SupervisorCheck;

  constructor(deps: SupervisionDeps) {
    this.#deps = deps;
    this.#supervises = monitoringSupervisorCheck(deps.client);
  }

  /** the session when the actor may act on it; sessions the actor may not know about are NOT_FOUND */
  async #authorized(actor: Actor, sessionId: string, action: 'chat:interrupt' | 'chat:feedback', userToken: string | undefined): Promise<SessionDoc> {
    const session = await this.#deps.sessions.byId(sessionId);
    try {
      await authorize(actor, action, { ownerId: session.userId }, (supervisorId, studentId) => this.#supervises(supervisorId, studentId, userToken));
    } catch (error) {
      if (error instanceof ApiError && error.code === 'FORBIDDEN' && actor.role !== 'supervisor') throw new ApiError('NOT_FOUND', 'No such session');
      throw error;
    }
    return session;
  }

  async interrupt(actor: Actor, sessionId: string, reason: string | undefined, userToken: string | undefined): Promise<void> {
    const session = await this.#authorized(actor, sessionId, 'chat:interrupt', userToken);
    await this.#deps.streams.interrupt(session._id.toHexString(), actor, reason ?? `Stopped by ${actor.role}`);
  }

  async feedback(actor: Actor, sessionId: string, content: string, userToken: string | undefined) {
    const session = await this.#authorized(actor, sessionId, 'chat:feedback', userToken);
    const message = await this.#deps.dal.addMessage({
      sessionId: session._id,
      userId: session.userId,
      role: 'supervisor',
      content,
      status: 'complete',
      authorId: actor.userId,
    });
    const data = {
      sessionId: session._id.toHexString(),
      messageId: message._id.toHexString(),
      from: { userId: actor.userId, username: actor.username, role: actor.role },
      content,
      createdAt: message.createdAt.toISOString(),
    };
    await this.#deps.bus.publishUserEvent(session.userId, { event: 'feedback', data });
    this.#deps.bus.publishSessionEvent(session._id.toHexString(), { event: 'feedback', data }, { replay: false });
    return message;
  }
}
