import { createKeyring, type Logger } from '@platform/shared-types';
import { createServiceApp } from '@platform/shared-types/express';
import type { Express } from 'express';
import type { Config } from './config.ts';
import { catalogRouter } from './features/catalog/catalog-router.ts';
import { filesRouter } from './features/files/files-router.ts';
import { predictRouter } from './features/flowise/predict-router.ts';
import { predictService } from './features/flowise/predict-service.ts';
import { openAiRouter } from './features/openai/openai-router.ts';
import { OpenAiService } from './features/openai/openai-service.ts';
import { repliesRouter } from './features/sessions/replies-router.ts';
import { sessionsRouter } from './features/sessions/sessions-router.ts';
import { streamRouter } from './features/stream/stream-router.ts';
import { timingRouter } from './features/stream/timing-router.ts';
import type { ChatRuntime } from './runtime.ts';
import type { Stores } from './stores.ts';

export interface AppDeps {
  config: Config;
  logger: Logger;
  stores: Stores;
  runtime: ChatRuntime;
}

/** Builds the chat app, not yet listening. */
export function buildApp(deps: AppDeps): Express {
  const { config, runtime } = deps;
  const shared = { maxMessageChars: config.MAX_MESSAGE_CHARS, heartbeatMs: config.HEARTBEAT_MS };
  const accessKeyring = createKeyring(config.JWT_ACCESS_SECRET, config.JWT_ACCESS_SECRET_PREVIOUS);
  const routers = [
    catalogRouter({ catalog: runtime.catalog }),
    sessionsRouter({ sessions: runtime.sessions, models: runtime.models }),
    repliesRouter({ sessions: runtime.sessions }),
    streamRouter({
      streams: runtime.streams,
      sessions: runtime.sessions,
      supervision: runtime.supervision,
      bus: runtime.bus,
      revocations: runtime.revocations,
      accessKeyring,
      ...shared,
    }),
    timingRouter({ bus: runtime.bus }),
    filesRouter({ files: runtime.files }),
    predictRouter({ predict: predictService({ streams: runtime.streams, sessions: runtime.sessions, models: runtime.models }), ...shared }),
    openAiRouter({
      openai: new OpenAiService({ models: runtime.models, sessions: runtime.sessions, streams: runtime.streams, logger: deps.logger }),
      maxMessageChars: config.MAX_MESSAGE_CHARS,
    }),
  ];
  return createServiceApp({
    name: 'chat',
    logger: deps.logger,
    internalSecret: config.INTERNAL_SECRET,
    internalKeyring: createKeyring(config.INTERNAL_SECRET),
    accessKeyring,
    ready: deps.stores.ready,
    routers,
  });
}
