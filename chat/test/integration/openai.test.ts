import { testActor } from '@platform/shared-types/testing';
import { expect } from 'chai';
import nock from 'nock';
import { fetch, type Platform, startPlatform } from '../support/harness.ts';
import { interceptThirdParties } from '../support/third-parties.ts';

const OPENAI = 'http://openai.test';
interface Answer {
  object?: string;
  choices: Array<{ finish_reason: string; message: { content: string } }>;
  usage: { completion_tokens: number };
  error: { code: string; param: string | null; type: string };
  requestId?: string;
}
const sse = (...items: unknown[]) => items.map((item) => `data: ${typeof item === 'string' ? item : JSON.stringify(item)}\n\n`).join('');

describe('OpenAI-compatible routes in chat (/v1)', () => {
  interceptThirdParties();
  let platform: Platform;
  const url = (path: string) => `${platform.instances[0]?.url}${path}`;
  const user = testActor('enduser');
  const complete = async (body: Record<string, unknown>) => {
    const res = await fetch(url('/v1/chat/completions'), { method: 'POST', headers: platform.json(user), body: JSON.stringify(body) });
    return { status: res.status, type: res.headers.get('content-type'), body: (await res.json()) as Answer };
  };

  before(async () => {
    platform = await startPlatform({ env: { OPENAI_BASE_URL: OPENAI, OPENAI_API_KEY: 'sk-test' } });
  });
  after(async () => {
    await platform.stop();
  });

  it('passes the caller conversation (system first), temperature and stop to the provider, and answers chat.completion', async () => {
    let sent: Record<string, unknown> | undefined;
    nock(OPENAI)
      .post('/v1/chat/completions', (body) => {
        sent = body;
        return true;
      })
      .reply(
        200,
        sse(
          { choices: [{ index: 0, delta: { content: 'Paris' }, finish_reason: 'stop' }] },
          { choices: [], usage: { prompt_tokens: 21, completion_tokens: 1, total_tokens: 22 } },
          '[DONE]',
        ),
        { 'content-type': 'text/event-stream' },
      );
    const answer = await complete({
      model: 'openai-compatible',
      messages: [
        { role: 'user', content: 'Capital of Italy?' },
        { role: 'assistant', content: 'Rome' },
        { role: 'developer', content: 'One word.' },
        { role: 'user', content: [{ type: 'text', text: 'And France?' }] },
      ],
      temperature: 0.3,
      stop: 'END',
    });
    expect(answer.status, JSON.stringify(answer.body)).to.equal(200);
    expect(sent).to.deep.include({
      temperature: 0.3,
      stop: ['END'],
      messages: [
        { role: 'system', content: 'One word.' },
        { role: 'user', content: 'Capital of Italy?' },
        { role: 'assistant', content: 'Rome' },
        { role: 'user', content: 'And France?' },
      ],
    });
    expect(answer.body).to.deep.include({
      object: 'chat.completion',
      model: 'openai-compatible',
      usage: { prompt_tokens: 21, completion_tokens: 1, total_tokens: 22 },
    });
    expect(answer.body.choices[0]).to.deep.include({ finish_reason: 'stop', message: { role: 'assistant', content: 'Paris', refusal: null } });
    const charge = platform.accounting.calls.filter((c) => c.path.endsWith('/finalize')).at(-1);
    expect(charge?.body).to.include({ inputTokens: 21, outputTokens: 1 });
  });

  it('a stop sequence ends the local model reply before it, and the charge counts only what was written', async () => {
    const messages = [{ role: 'user', content: 'Say some words' }];
    const full = await complete({ model: 'local-dev', messages });
    const words = String(full.body.choices[0]?.message.content).split(' ');
    const stopAt = words.findIndex((w, i) => i > 0 && !words.slice(0, i).some((earlier) => earlier.includes(w)));
    expect(stopAt).to.be.greaterThan(0);
    const stopped = await complete({ model: 'local-dev', messages, stop: [words[stopAt]] });
    expect(stopped.body.choices[0]).to.deep.include({ finish_reason: 'stop' });
    expect(stopped.body.choices[0]?.message.content).to.equal(words.slice(0, stopAt).join(' '));
    expect(stopped.body.usage.completion_tokens).to.equal(stopAt);
  });

  it('answers errors in OpenAI shape on /v1 (validation with param, unknown route, wrong media type), problem+json elsewhere', async () => {
    const tooMany = await complete({ model: 'local-dev', messages: [{ role: 'user', content: 'Hi' }], stop: ['a', 'b', 'c', 'd', 'e'] });
    expect(tooMany.status).to.equal(400);
    expect(tooMany.type).to.match(/^application\/json/);
    expect(tooMany.body.error).to.include({ type: 'invalid_request_error', param: 'stop' });
    expect(tooMany.body.requestId).to.be.a('string');
    const lastNotUser = await complete({
      model: 'local-dev',
      messages: [
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello' },
      ],
    });
    expect(lastNotUser.body.error).to.include({ param: 'messages.1.role' });
    const tool = await complete({ model: 'local-dev', messages: [{ role: 'tool', content: 'x', tool_call_id: '1' }] });
    expect(tool.body.error).to.include({ param: 'messages.0.role' });
    const route = await fetch(url('/v1/embeddings'), { method: 'POST', headers: platform.json(user), body: '{}' });
    expect(route.status).to.equal(404);
    expect(((await route.json()) as { error: { code: string } }).error.code).to.equal('not_found');
    const media = await fetch(url('/v1/chat/completions'), {
      method: 'POST',
      headers: { ...platform.headers(user), 'content-type': 'text/plain' },
      body: 'hi',
    });
    expect(media.status).to.equal(415);
    expect(((await media.json()) as { error: { code: string } }).error.code).to.equal('unsupported_media_type');
    const anonymous = await fetch(url('/v1/models'));
    expect(anonymous.status).to.equal(401);
    expect(((await anonymous.json()) as { error: { code: string } }).error.code).to.equal('invalid_api_key');
    const elsewhere = await fetch(url('/api/chat/nothing'), { headers: platform.headers(user) });
    expect(elsewhere.headers.get('content-type')).to.match(/^application\/problem\+json/);
  });
});
