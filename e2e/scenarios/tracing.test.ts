// Issue 16: one trace follows a chat stream through every hop (gateway -> chat -> accounting, Redis, MongoDB),
// exported over OTLP/HTTP to a receiver in this process.
import { expect } from 'chai';
import { api, createUser, type SseEvent, sse } from '../support/client.ts';
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from '../support/otlp-receiver.ts';
import { type Platform, startPlatform } from '../support/platform.ts';

const SERVER = 2;

/** the path a server span served (old or new HTTP semantic conventions) */
const servedPath = (span: ReceivedSpan): string => String(span.attributes['url.path'] ?? span.attributes['http.target'] ?? '').split('?')[0] ?? '';

async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('tracing: one trace per request across every hop (OTLP/HTTP)', function () {
  this.timeout(180_000);
  let receiver: OtlpReceiver;
  let platform: Platform;

  before(async () => {
    receiver = await startOtlpReceiver();
    platform = await startPlatform({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '100' });
  });
  after(async () => {
    await platform?.stop();
    await receiver?.close();
  });

  it('a chat stream through the gateway is one trace: gateway root, chat, accounting reserve and settle, Redis, MongoDB, all parented', async () => {
    const admin = await createUser(platform, 'admin', 'tradm');
    const student = await createUser(platform, 'enduser', 'trstu');
    const allocate = await api(platform.gatewayUrl, 'POST', '/api/credits/allocate', {
      token: admin.accessToken,
      body: { userId: student.userId, credits: 1000 },
    });
    expect(allocate.status, JSON.stringify(allocate.body)).to.equal(201);
    const session = await api<{ session: { id: string } }>(platform.gatewayUrl, 'POST', '/api/chat/sessions', {
      token: student.accessToken,
      body: { modelId: 'local-dev' },
    });
    expect(session.status, JSON.stringify(session.body)).to.equal(201);
    const streamPath = `/api/chat/sessions/${session.body.session.id}/stream`;
    const events: SseEvent[] = [];
    for await (const event of sse(platform.gatewayUrl, streamPath, { token: student.accessToken, body: { message: 'Trace me' } })) events.push(event);
    expect(events.at(-1)?.event).to.equal('done');

    const root = await waitFor('the gateway server span of the stream', () =>
      receiver.spans.find((span) => span.service === 'gateway' && span.kind === SERVER && servedPath(span) === streamPath),
    );
    const inTrace = () => receiver.spans.filter((span) => span.traceId === root.traceId);
    const has = (predicate: (span: ReceivedSpan) => boolean) => inTrace().some(predicate);
    const accountingServed = (suffix: string) => (span: ReceivedSpan) =>
      span.service === 'accounting' && span.kind === SERVER && servedPath(span).endsWith(suffix);
    // spans arrive in batches from five processes: wait until every hop has reported
    await waitFor('every hop of the stream in one trace', () =>
      has((s) => s.service === 'chat' && s.kind === SERVER && servedPath(s) === streamPath) &&
      has(accountingServed('/initialize')) &&
      has(accountingServed('/finalize')) &&
      has((s) => s.scope.includes('ioredis')) &&
      has((s) => s.scope.includes('mongodb'))
        ? true
        : undefined,
    );
    const spans = inTrace();
    const services = new Set(spans.map((span) => span.service));
    expect([...services]).to.include.members(['gateway', 'chat', 'accounting']);
    // the stores: Redis (ioredis client spans) and the MongoDB-compatible server (mongodb driver spans)
    expect(spans.filter((s) => s.scope.includes('ioredis')).length, 'redis spans').to.be.greaterThan(0);
    expect(spans.filter((s) => s.scope.includes('mongodb')).length, 'mongodb spans').to.be.greaterThan(0);

    // correctly parented: one root (the gateway's server span), every other span's parent is in the trace
    const ids = new Set(spans.map((span) => span.spanId));
    const roots = spans.filter((span) => span.parentSpanId === '');
    expect(roots.map((span) => span.spanId)).to.deep.equal([root.spanId]);
    const orphans = spans.filter((span) => span.parentSpanId !== '' && !ids.has(span.parentSpanId));
    expect(orphans.map((s) => `${s.service} ${s.name}`)).to.deep.equal([]);

    // each hop is a child of the previous one: chat's server span descends from the gateway's client span
    const byId = new Map(spans.map((span) => [span.spanId, span]));
    const ancestors = (span: ReceivedSpan): ReceivedSpan[] => {
      const chain: ReceivedSpan[] = [];
      for (let at = byId.get(span.parentSpanId); at; at = byId.get(at.parentSpanId)) chain.push(at);
      return chain;
    };
    const chatServer = spans.find((s) => s.service === 'chat' && s.kind === SERVER && servedPath(s) === streamPath) as ReceivedSpan;
    expect(ancestors(chatServer).map((s) => s.service)).to.include('gateway');
    expect(ancestors(chatServer).at(-1)?.spanId).to.equal(root.spanId);
    for (const settle of spans.filter(accountingServed('/finalize'))) expect(ancestors(settle).map((s) => s.service)).to.include('chat');

    // the trace id is in the services' log lines of that request
    const chatLogs = platform.logs('chat').filter((line) => line.includes(root.traceId));
    expect(chatLogs.length, 'chat log lines with the trace id').to.be.greaterThan(0);
  });
});
