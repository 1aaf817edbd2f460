import { randomUUID } from 'node:crypto';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { PROBLEM_CONTENT_TYPE, problem } from '@platform/shared-types';
import type { Metrics } from './engine/metrics.ts';

/**
 * The private ops listener (DESIGN 7): Prometheus `/metrics` of this gateway, on its own port (`OPS_PORT`,
 * bound to `OPS_HOST`, 127.0.0.1 unless set), never on the public one. Nothing else is served here.
 */
export function createOpsHandler(metrics: Metrics): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': PROBLEM_CONTENT_TYPE, 'cache-control': 'no-store' });
      res.end(JSON.stringify(problem('NOT_FOUND', 'The ops listener serves GET /metrics only', randomUUID())));
      return;
    }
    metrics.registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store' });
        res.end(text);
      },
      () => {
        res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable');
      },
    );
  };
}
