import type { ServiceName } from '../../src/claims.ts';
import { type ApiRouter, createServiceApp, listen, type RunningServer } from '../../src/express/index.ts';
import { createLogger } from '../../src/logger.ts';
import type { TestAuth } from '../../src/testing/index.ts';

/** A real service app named `name` (service tokens must be for its audience) with these routers, on port 0. */
export function listenServiceApp(name: ServiceName, auth: TestAuth, routers: ApiRouter[]): Promise<RunningServer> {
  const app = createServiceApp({
    name,
    logger: createLogger('test', { level: 'silent' }),
    internalSecret: auth.secrets.INTERNAL_SECRET,
    internalKeyring: auth.internalKeyring,
    accessKeyring: auth.accessKeyring,
    ready: async () => ({ ok: true }),
    routers,
  });
  return listen(app, 0);
}
