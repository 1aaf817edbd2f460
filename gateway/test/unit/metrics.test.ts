import { Writable } from 'node:stream';
import { batchedLines, createLogger } from '@platform/shared-types';
import { expect } from 'chai';
import { createMetrics } from '../../src/engine/metrics.ts';

describe('unit: metrics and the access log', () => {
  it('renders the map-kept counters and histogram as Prometheus series (cumulative buckets, sum, count)', async () => {
    const metrics = createMetrics();
    metrics.requests.inc('api', 'GET', '200');
    metrics.requests.inc('api', 'GET', '200');
    metrics.requests.inc('api', 'POST', '429');
    metrics.rateLimit.inc('user', 'limited', 'memory');
    for (const seconds of [0.0005, 0.002, 0.003, 0.2, 60]) metrics.latency.observe('api', seconds);
    const text = await metrics.registry.metrics();
    expect(text).to.include('# TYPE gateway_requests_total counter');
    expect(text).to.include('gateway_requests_total{route="api",method="GET",status="200"} 2');
    expect(text).to.include('gateway_requests_total{route="api",method="POST",status="429"} 1');
    expect(text).to.include('gateway_rate_limit_decisions_total{rule="user",decision="limited",source="memory"} 1');
    expect(text).to.include('# TYPE gateway_request_duration_seconds histogram');
    expect(text).to.include('gateway_request_duration_seconds_bucket{le="0.001",route="api"} 1');
    expect(text).to.include('gateway_request_duration_seconds_bucket{le="0.0025",route="api"} 2');
    expect(text).to.include('gateway_request_duration_seconds_bucket{le="0.005",route="api"} 3');
    expect(text).to.include('gateway_request_duration_seconds_bucket{le="0.25",route="api"} 4');
    expect(text).to.include('gateway_request_duration_seconds_bucket{le="30",route="api"} 4');
    expect(text).to.include('gateway_request_duration_seconds_bucket{le="+Inf",route="api"} 5');
    expect(text).to.include('gateway_request_duration_seconds_count{route="api"} 5');
    expect(Number(/gateway_request_duration_seconds_sum\{route="api"\} ([\d.]+)/.exec(text)?.[1])).to.be.closeTo(60.2055, 1e-9);
    metrics.registry.resetMetrics();
    expect(await metrics.registry.metrics()).not.to.include('gateway_requests_total{');
  });

  it('writes hand-built lines in pino shape, all lines of one turn in one write', async () => {
    const writes: string[] = [];
    const destination = new Writable({
      write(chunk, _encoding, callback) {
        writes.push(String(chunk));
        callback();
      },
    });
    const logger = createLogger('gateway', { level: 'info', destination });
    const lines = batchedLines(logger, 'info');
    if (!lines) throw new Error('info is on');
    lines.write(`${lines.prefix()},"n":1,"msg":"request"}\n`);
    lines.write(`${lines.prefix()},"n":2,"msg":"request"}\n`);
    expect(writes).to.deep.equal([]); // nothing written within the turn
    await new Promise((resolve) => setImmediate(resolve));
    expect(writes).to.have.length(1);
    const parsed = (writes[0] as string)
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(parsed.map((line) => line.n)).to.deep.equal([1, 2]);
    logger.info({ n: 3 }, 'request');
    const fromPino = JSON.parse(writes[1] as string) as Record<string, unknown>;
    expect(Object.keys(parsed[0] as object)).to.deep.equal(Object.keys(fromPino));
    expect(parsed[0]).to.include({ level: fromPino.level, service: 'gateway', name: 'gateway' });
    expect(batchedLines(createLogger('gateway', { level: 'warn', destination }), 'info')).to.equal(undefined);
  });
});
