import {
  ACCESS_TOKEN_TTL_SECONDS,
  CLOCK_TOLERANCE_SECONDS,
  createKeyring,
  followRevocations,
  type Logger,
  RevocationMirror,
  ServiceClient,
  userEventFromEntry,
} from '@platform/shared-types';
import { createServiceApp } from '@platform/shared-types/express';
import { StreamConsumer } from '@platform/shared-types/redis';
import { reportRedisErrors } from '@platform/shared-types/stores/redis';
import type { Express } from 'express';
import type { Config } from './config.ts';
import { dashboardRouter } from './features/dashboard/dashboard-router.ts';
import { observeRouter } from './features/observe/observe-router.ts';
import { type ObserveService, observeService } from './features/observe/observe-service.ts';
import { CheckCache, RelationshipChanges } from './features/relationships/relationship-changes.ts';
import { relationshipsDal } from './features/relationships/relationships-dal.ts';
import { relationshipsRouter } from './features/relationships/relationships-router.ts';
import { type RelationshipService, relationshipService } from './features/relationships/relationships-service.ts';
import { studentsRouter } from './features/students/students-router.ts';
import { studentsService } from './features/students/students-service.ts';
import { webAppRouter } from './features/webapp/webapp-router.ts';
import type { Stores } from './stores.ts';
import { Upstreams } from './upstreams.ts';

/** monitoring's consumer group on the user events stream (DESIGN 9) */
export const USER_EVENTS_GROUP = 'monitoring';

export interface AppDeps {
  config: Config;
  logger: Logger;
  stores: Stores;
}

export interface Monitoring {
  app: Express;
  relationships: RelationshipService;
  relay: ObserveService;
  /** starts the user-events consumer and the cross-instance change subscription; returns their stopper */
  startBackground(): () => Promise<void>;
}

/** Wires the monitoring parts: relationships, student list, observe relay, dashboard, user events. */
export function createMonitoring(deps: AppDeps): Monitoring {
  const { config, logger, stores } = deps;
  const internalKeyring = createKeyring(config.INTERNAL_SECRET);
  const client = new ServiceClient({
    caller: 'monitoring',
    internalKeyring,
    baseUrls: { auth: config.AUTH_URL, accounting: config.ACCOUNTING_URL, chat: config.CHAT_URL },
    logger,
  });
  const upstreams = new Upstreams(client, config.UPSTREAM_TIMEOUT_MS);
  const cache = new CheckCache(config.CHECK_CACHE_TTL_MS);
  const subscriber = reportRedisErrors(stores.redis.duplicate(), logger, 'relationship changes subscriber');
  const changes = new RelationshipChanges({ publisher: stores.redis, subscriber, channel: config.RELATIONSHIP_CHANGES_CHANNEL, logger });
  changes.onChange((pairs) => cache.invalidate(pairs)); // first listener: later ones see the fresh state
  const pairs = relationshipsDal(stores.db);
  const relationships = relationshipService({ relationships: pairs, upstreams, cache, changes });
  const students = studentsService({ pairs, upstreams, relationships, logger });
  const accessKeyring = createKeyring(config.JWT_ACCESS_SECRET, config.JWT_ACCESS_SECRET_PREVIOUS);
  // filled by the revocation feed once the background starts: ends relays whose token is revoked
  const revocations = new RevocationMirror();
  const relay = observeService({
    client,
    heartbeatMs: config.OBSERVE_HEARTBEAT_MS,
    relationships,
    changes,
    logger,
    accessKeyring,
    revocations,
  });

  const app = createServiceApp({
    name: 'monitoring',
    logger,
    internalSecret: config.INTERNAL_SECRET,
    internalKeyring,
    accessKeyring,
    ready: stores.ready,
    routers: [relationshipsRouter(relationships), studentsRouter(students), observeRouter(relay)],
    before: [
      ['/monitoring', dashboardRouter(logger)],
      ['/app', webAppRouter(logger)],
    ],
  });

  return {
    app,
    relationships,
    relay,
    startBackground() {
      // idempotent: an event ends only pairs older than itself, and processed event ids are remembered
      const consumer = new StreamConsumer({
        redis: stores.redis,
        stream: config.USER_EVENTS_STREAM,
        group: USER_EVENTS_GROUP,
        parse: userEventFromEntry,
        apply: (event) => relationships.applyUserEvent(event),
        logger,
        blockMs: config.USER_EVENTS_BLOCK_MS,
      }).start();
      const feed = followRevocations({
        redis: stores.redis,
        windowMs: (ACCESS_TOKEN_TTL_SECONDS + 2 * CLOCK_TOLERANCE_SECONDS) * 1000,
        logger,
        mirror: revocations,
      });
      const prune = setInterval(() => {
        relationships.pruneProcessedEvents().catch((error: unknown) => logger.warn({ err: error }, 'could not prune processed user events'));
      }, 3_600_000);
      prune.unref();
      changes.start().catch((error: unknown) => logger.error({ err: error }, 'could not subscribe to relationship changes'));
      return async () => {
        clearInterval(prune);
        feed.close();
        await consumer.stop();
        await relay.close();
        subscriber.disconnect();
        await client.close();
      };
    },
  };
}

/** Builds the monitoring app, not yet listening. */
export function buildApp(deps: AppDeps): Express {
  return createMonitoring(deps).app;
}
