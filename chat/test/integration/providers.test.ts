import { PassThrough } from 'node:stream';
import { expectProblem, testActor } from '@platform/shared-types/testing';
import { EventStreamCodec } from '@smithy/eventstream-codec';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { fromUtf8, toUtf8 } from '@smithy/util-utf8';
import { expect } from 'chai';
import nock from 'nock';
import { createSession, fetch, type Platform, type SseEvent, startPlatform, streamMessage, waitFor } from '../support/harness.ts';
import { interceptThirdParties } from '../support/third-parties.ts';

const BEDROCK = 'https://bedrock-runtime.us-east-1.amazonaws.com';
const OPENAI = 'http://openai.test';
const FLOWISE = 'http://flowise.test';
const CHATFLOW = '00000000-0000-4000-8000-000000000001';

const codec = new EventStreamCodec(toUtf8, fromUtf8);
const header = (value: string) => ({ type: 'string' as const, value });
/** one AWS event-stream frame, as Bedrock sends it */
function frame(eventType: string, body: unknown): Uint8Array {
  return codec.encode({
    headers: { ':message-type': header('event'), ':event-type': header(eventType), ':content-type': header('application/json') },
    body: fromUtf8(JSON.stringify(body)),
  });
}
function exceptionFrame(exceptionType: string, message: string): Uint8Array {
  return codec.encode({
    headers: { ':message-type': header('exception'), ':exception-type': header(exceptionType), ':content-type': header('application/json') },
    body: fromUtf8(JSON.stringify({ message })),
  });
}
const eventStream = (...frames: Uint8Array[]) => Buffer.concat(frames.map((f) => Buffer.from(f)));
const sse = (...items: unknown[]) => items.map((item) => `data: ${typeof item === 'string' ? item : JSON.stringify(item)}\n\n`).join('');

describe('cloud providers through one streaming interface (nock for Bedrock, OpenAI-compatible, Flowise)', () => {
  interceptThirdParties();
  let platform: Platform;
  const url = (path: string) => `${platform.instances[0]?.url}${path}`;
  const user = testActor('enduser');
  const reservationOf = (stream: { events: SseEvent[] }) => (stream.events[0] as SseEvent).data.reservationId as string;

  before(async () => {
    platform = await startPlatform({
      env: { AWS_REGION: 'us-east-1', OPENAI_BASE_URL: OPENAI, OPENAI_API_KEY: 'sk-test', FLOWISE_URL: FLOWISE, FLOWISE_API_KEY: 'fw-test' },
      providers: {
        // the default HTTP/2 handler is invisible to nock; one attempt, so an HTTP error is not retried
        bedrock: { requestHandler: new NodeHttpHandler(), maxAttempts: 1, credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret' } },
      },
    });
  });
  after(async () => {
    await platform.stop();
  });

  it('bedrock: streams ConverseStream deltas and charges the usage from the metadata event', async () => {
    let sent: { messages: Array<{ role: string; content: Array<{ text: string }> }>; inferenceConfig: { maxTokens: number } } | undefined;
    const scope = nock(BEDROCK)
      .post(/\/model\/.+\/converse-stream$/, (body) => {
        sent = body;
        return true;
      })
      .reply(
        200,
        () =>
          eventStream(
            frame('messageStart', { role: 'assistant' }),
            frame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'Hello' } }),
            frame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: ' from Bedrock' } }),
            frame('contentBlockStop', { contentBlockIndex: 0 }),
            frame('messageStop', { stopReason: 'end_turn' }),
            frame('metadata', { usage: { inputTokens: 11, outputTokens: 4, totalTokens: 15 }, metrics: { latencyMs: 5 } }),
          ),
        { 'content-type': 'application/vnd.amazon.eventstream' },
      );
    const sessionId = await createSession(platform, user, 'claude-3-5-haiku');
    const stream = await streamMessage(platform, user, sessionId, 'Hi Bedrock');
    await stream.waitForEnd();
    expect(scope.isDone()).to.equal(true);
    expect(sent?.messages).to.deep.equal([{ role: 'user', content: [{ text: 'Hi Bedrock' }] }]);
    expect(sent?.inferenceConfig.maxTokens).to.equal(1024);
    expect(stream.text()).to.equal('Hello from Bedrock');
    const done = stream.terminal() as SseEvent;
    expect(done.event).to.equal('done');
    expect(done.data.usage).to.deep.equal({ inputTokens: 11, outputTokens: 4 });
    expect(done.data.stopReason).to.equal('end_turn');
    const charges = platform.accounting.chargesOf(reservationOf(stream));
    expect(charges).to.have.length(1);
    expect(charges[0]?.body).to.include({ inputTokens: 11, outputTokens: 4 });
  });

  it('bedrock: an exception frame mid-stream ends with an error event, stores the partial reply and charges it once', async () => {
    nock(BEDROCK)
      .post(/converse-stream$/)
      .reply(
        200,
        () =>
          eventStream(
            frame('messageStart', { role: 'assistant' }),
            frame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'Partial answer' } }),
            exceptionFrame('modelStreamErrorException', 'the model broke'),
          ),
        { 'content-type': 'application/vnd.amazon.eventstream' },
      );
    const sessionId = await createSession(platform, user, 'claude-3-5-haiku');
    const stream = await streamMessage(platform, user, sessionId, 'Break please');
    await stream.waitForEnd();
    expect(stream.text()).to.equal('Partial answer');
    const error = stream.terminal() as SseEvent;
    expect(error.event).to.equal('error');
    expect(error.data.code).to.equal('UPSTREAM_UNAVAILABLE');
    expect(String(error.data.detail)).to.match(/ModelStreamError/i);
    const charges = platform.accounting.chargesOf(reservationOf(stream));
    expect(charges).to.have.length(1);
    expect(charges[0]?.path).to.equal('/internal/streaming-sessions/abort');
    expect(charges[0]?.body.outputTokens).to.be.greaterThan(0);
    const stored = (await (await fetch(url(`/api/chat/sessions/${sessionId}`), { headers: platform.headers(user) })).json()) as {
      messages: Array<{ role: string; status: string; content: string }>;
    };
    expect(stored.messages.find((m) => m.role === 'assistant')).to.include({ status: 'error', content: 'Partial answer' });
  });

  it('bedrock: an HTTP error before the stream is an error event, and nothing produced means nothing charged', async () => {
    nock(BEDROCK)
      .post(/converse-stream$/)
      .reply(429, { message: 'slow down' }, { 'x-amzn-errortype': 'ThrottlingException:http://internal.amazon.com/' });
    const sessionId = await createSession(platform, user, 'claude-3-5-haiku');
    const stream = await streamMessage(platform, user, sessionId, 'Too fast');
    await stream.waitForEnd();
    expect(stream.terminal()?.event).to.equal('error');
    expect(stream.named('delta')).to.have.length(0);
    const charges = platform.accounting.chargesOf(reservationOf(stream));
    expect(charges).to.have.length(1);
    expect(charges[0]?.body).to.include({ inputTokens: 0, outputTokens: 0 });
    expect(stream.terminal()?.data.credits).to.equal(0);
  });

  it('bedrock: a client disconnect mid-stream aborts the upstream request and charges the partial reply once', async () => {
    const upstream = new PassThrough();
    nock(BEDROCK)
      .post(/converse-stream$/)
      .reply(200, () => upstream, { 'content-type': 'application/vnd.amazon.eventstream' });
    upstream.write(Buffer.from(frame('messageStart', { role: 'assistant' })));
    upstream.write(Buffer.from(frame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'Slow and partial' } })));
    const sessionId = await createSession(platform, user, 'claude-3-5-haiku');
    const stream = await streamMessage(platform, user, sessionId, 'Take your time');
    await stream.waitForEvent('delta');
    stream.abort(); // the upstream never finishes by itself
    const reservationId = reservationOf(stream);

    const [charge] = await waitFor(() => {
      const charges = platform.accounting.chargesOf(reservationId);
      return charges.length > 0 ? charges : undefined;
    }, 'the abort charge');
    // the upstream body never ended: only aborting the request could end the provider's read
    expect(upstream.writableEnded).to.equal(false);
    upstream.destroy();
    expect(charge?.path).to.equal('/internal/streaming-sessions/abort');
    expect(charge?.body.outputTokens).to.equal(3); // 'Slow and partial' is 3 tokens to the tokenizer
    await waitFor(async () => !(await platform.instances[0]?.stores.runtime.streams.isStreaming(sessionId)), 'the stream to end');
    expect(platform.accounting.chargesOf(reservationId)).to.have.length(1);
  });

  it('openai: streams chat completion chunks with stream_options.include_usage and charges the reported usage', async () => {
    let sent: Record<string, unknown> | undefined;
    const scope = nock(OPENAI)
      .matchHeader('authorization', 'Bearer sk-test')
      .post('/v1/chat/completions', (body) => {
        sent = body;
        return true;
      })
      .reply(
        200,
        sse(
          { choices: [{ index: 0, delta: { role: 'assistant', content: '' } }] },
          { choices: [{ index: 0, delta: { content: 'Hi' } }] },
          { choices: [{ index: 0, delta: { content: ' there' }, finish_reason: 'stop' }] },
          { choices: [], usage: { prompt_tokens: 9, completion_tokens: 2, total_tokens: 11 } },
          '[DONE]',
        ),
        { 'content-type': 'text/event-stream' },
      );
    const sessionId = await createSession(platform, user, 'openai-compatible');
    const stream = await streamMessage(platform, user, sessionId, 'Hello OpenAI');
    await stream.waitForEnd();
    expect(scope.isDone()).to.equal(true);
    expect(sent).to.deep.include({ model: 'gpt-4o-mini', stream: true, stream_options: { include_usage: true } });
    expect(stream.text()).to.equal('Hi there');
    expect(stream.terminal()?.data).to.deep.include({ usage: { inputTokens: 9, outputTokens: 2 }, stopReason: 'stop' });
    expect(platform.accounting.chargesOf(reservationOf(stream))[0]?.body).to.include({ inputTokens: 9, outputTokens: 2 });
  });

  it('openai: an HTTP error is an error event and the reservation is settled once', async () => {
    nock(OPENAI)
      .post('/v1/chat/completions')
      .reply(500, { error: { message: 'overloaded' } });
    const sessionId = await createSession(platform, user, 'openai-compatible');
    const stream = await streamMessage(platform, user, sessionId, 'Hello?');
    await stream.waitForEnd();
    expect(stream.terminal()?.event).to.equal('error');
    expect(String(stream.terminal()?.data.detail)).to.match(/500/);
    expect(platform.accounting.chargesOf(reservationOf(stream))).to.have.length(1);
  });

  it('openai: an error chunk mid-stream stores and charges the partial reply; the non-streaming route answers 502 with it', async () => {
    nock(OPENAI)
      .post('/v1/chat/completions')
      .times(2)
      .reply(200, () => sse({ choices: [{ index: 0, delta: { content: 'Half an answer' } }] }, { error: { message: 'context overflow' } }), {
        'content-type': 'text/event-stream',
      });
    const sessionId = await createSession(platform, user, 'openai-compatible');
    const stream = await streamMessage(platform, user, sessionId, 'Go');
    await stream.waitForEnd();
    expect(stream.text()).to.equal('Half an answer');
    expect(stream.terminal()?.data).to.include({ code: 'UPSTREAM_UNAVAILABLE', detail: 'OpenAI-compatible server failed: context overflow' });
    expect(platform.accounting.chargesOf(reservationOf(stream))[0]?.body.outputTokens).to.equal(3); // 'Half an answer': 3 tokens

    const response = await fetch(url(`/api/chat/sessions/${sessionId}/messages`), {
      method: 'POST',
      headers: platform.json(user),
      body: JSON.stringify({ message: 'Again' }),
    });
    const problem = await expectProblem(response, 502, 'UPSTREAM_UNAVAILABLE');
    expect(problem.credits).to.be.greaterThan(0);
    expect(problem.messageId).to.be.a('string');
  });

  it('flowise: streams prediction tokens (history sent along) and charges reported usage', async () => {
    const bodies: Array<Record<string, unknown>> = [];
    const reply = () =>
      sse(
        { event: 'start', data: '' },
        { event: 'token', data: 'Flow' },
        { event: 'token', data: 'ise says hi' },
        { event: 'usageMetadata', data: { input_tokens: 7, output_tokens: 3, total_tokens: 10 } },
        { event: 'end', data: '[DONE]' },
      );
    nock(FLOWISE)
      .post(`/api/v1/prediction/${CHATFLOW}`, (body) => {
        bodies.push(body);
        return true;
      })
      .times(2)
      .reply(200, reply, { 'content-type': 'text/event-stream' });
    const sessionId = await createSession(platform, user, 'flowise-assistant');
    const first = await streamMessage(platform, user, sessionId, 'Hello Flowise');
    await first.waitForEnd();
    expect(first.text()).to.equal('Flowise says hi');
    expect(first.terminal()?.data.usage).to.deep.equal({ inputTokens: 7, outputTokens: 3 });
    const second = await streamMessage(platform, user, sessionId, 'And again');
    await second.waitForEnd();
    expect(bodies[0]).to.deep.include({ question: 'Hello Flowise', streaming: true, history: [] });
    expect(bodies[1]).to.deep.include({
      question: 'And again',
      history: [
        { role: 'userMessage', content: 'Hello Flowise' },
        { role: 'apiMessage', content: 'Flowise says hi' },
      ],
    });
    expect(platform.accounting.chargesOf(reservationOf(second))).to.have.length(1);
  });

  it('flowise-compatible POST /api/v1/chat/predict answers JSON, continues a session, and streams on request', async () => {
    nock(FLOWISE)
      .post(`/api/v1/prediction/${CHATFLOW}`)
      .times(2)
      .reply(200, () => sse({ event: 'token', data: 'Answer' }, { event: 'end', data: '[DONE]' }), { 'content-type': 'text/event-stream' });
    const predict = (body: unknown) => fetch(url('/api/v1/chat/predict'), { method: 'POST', headers: platform.json(user), body: JSON.stringify(body) });
    const response = await predict({ chatflow_id: CHATFLOW, question: 'What is 2+2?' });
    expect(response.status).to.equal(200);
    const json = (await response.json()) as { text: string; sessionId: string; chatMessageId: string; credits: number };
    expect(json.text).to.equal('Answer');
    expect(json.credits).to.be.greaterThan(0);
    const again = await predict({ chatflow_id: 'flowise-assistant', question: 'And 3+3?', session_id: json.sessionId, streaming: true });
    expect(again.headers.get('content-type')).to.match(/event-stream/);
    const lines = (await again.text())
      .split('\n')
      .filter((line) => line.startsWith('data: '))
      .map((line) => JSON.parse(line.slice(6)) as { event: string; data: unknown });
    expect(lines.map((l) => l.event)).to.deep.equal(['start', 'metadata', 'token', 'usageMetadata', 'end']);
    expect(lines[1]?.data).to.include({ sessionId: json.sessionId });
    expect(lines[2]?.data).to.equal('Answer');
    const stored = (await (await fetch(url(`/api/chat/sessions/${json.sessionId}`), { headers: platform.headers(user) })).json()) as { messages: unknown[] };
    expect(stored.messages).to.have.length(4);
    const unknown = await predict({ chatflow_id: 'nope', question: 'x' });
    expect(unknown.status).to.equal(404);
  });
});
