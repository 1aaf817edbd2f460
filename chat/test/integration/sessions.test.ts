import { expectProblem, testActor } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { createSession, fetch, type Platform, startPlatform } from '../support/harness.ts';

describe('chat models and sessions (real MongoDB-compatible server and Redis)', () => {
  let platform: Platform;
  const url = (path: string) => `${platform.instances[0]?.url}${path}`;
  const alice = testActor('enduser');
  const bob = testActor('enduser');

  before(async () => {
    platform = await startPlatform();
  });
  after(async () => {
    await platform.stop();
  });

  it('lists only the models the caller may use (public, by role, by user), and only configured providers', async () => {
    const ids = async (actor: ReturnType<typeof testActor>) =>
      ((await (await fetch(url('/api/chat/models'), { headers: platform.headers(actor) })).json()) as { models: Array<{ id: string }> }).models.map(
        (m) => m.id,
      );
    expect(await ids(alice)).to.have.members(['local-dev', 'local-tiny']);
    expect(await ids(testActor('supervisor'))).to.have.members(['local-dev', 'local-tiny', 'local-staff']);
    expect(await ids(testActor('enduser', { userId: 'vip-user-id' }))).to.have.members(['local-dev', 'local-tiny', 'local-vip']);
    expect(await ids(testActor('admin'))).to.have.members(['local-dev', 'local-tiny', 'local-staff', 'local-vip']);
    await expectProblem(await fetch(url('/api/chat/models')), 401, 'UNAUTHENTICATED');
  });

  it('answers an admin chatflow sync without Flowise configured with 409 CONFLICT, not a 5xx', async () => {
    const res = await fetch(url('/api/chat/chatflows/sync'), { method: 'POST', headers: platform.json(testActor('admin')) });
    const body = await expectProblem(res, 409, 'CONFLICT');
    expect(String(body.detail)).to.include('FLOWISE_URL');
  });

  it('documents its public routes, the stream as text/event-stream, in OpenAPI', async () => {
    const doc = (await (await fetch(url('/openapi.json'))).json()) as {
      paths: Record<string, Record<string, { responses: Record<string, { content?: object }> }>>;
    };
    for (const path of [
      '/api/chat/models',
      '/api/chat/sessions',
      '/api/chat/sessions/{id}',
      '/api/chat/files',
      '/api/sessions/{id}/interrupt',
      '/api/v1/chat/predict',
    ])
      expect(doc.paths).to.have.property(path);
    expect(doc.paths['/api/chat/sessions/{id}/stream']?.post?.responses['200']?.content).to.have.property('text/event-stream');
    expect(doc.paths).to.not.have.property('/internal/sessions/{id}/observe');
  });

  it('creates sessions only for usable models: unknown is NOT_FOUND, not allowed is FORBIDDEN', async () => {
    const post = (body: unknown) => fetch(url('/api/chat/sessions'), { method: 'POST', headers: platform.json(alice), body: JSON.stringify(body) });
    const created = await post({ modelId: 'local-dev', title: 'Homework' });
    expect(created.status).to.equal(201);
    const { session } = (await created.json()) as { session: { id: string; title: string; userId: string } };
    expect(session.title).to.equal('Homework');
    expect(session.userId).to.equal(alice.userId);
    await expectProblem(await post({ modelId: 'no-such-model' }), 404, 'NOT_FOUND');
    await expectProblem(await post({ modelId: 'local-staff' }), 403, 'FORBIDDEN');
    await expectProblem(await post({ modelId: 'claude-3-5-haiku' }), 404, 'NOT_FOUND'); // bedrock is not configured here
    await expectProblem(await post({ modelId: 'local-dev', extra: 1 }), 400, 'VALIDATION_FAILED');
    await expectProblem(
      await fetch(url('/api/chat/sessions'), { method: 'POST', headers: { ...platform.headers(alice), 'content-type': 'text/plain' }, body: 'x' }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    );
  });

  it('a rename racing a delete answers 200 or 404, never 500 (fuzzer finding)', async () => {
    for (let round = 0; round < 5; round++) {
      const id = await createSession(platform, alice);
      const renames = Array.from({ length: 10 }, (_, i) =>
        fetch(url(`/api/chat/sessions/${id}`), { method: 'PATCH', headers: platform.json(alice), body: JSON.stringify({ title: `t${i}` }) }),
      );
      const removal = fetch(url(`/api/chat/sessions/${id}`), { method: 'DELETE', headers: platform.headers(alice) });
      const statuses = (await Promise.all([...renames, removal])).map((response) => response.status);
      for (const status of statuses.slice(0, -1)) expect([200, 404]).to.include(status);
      expect(statuses.at(-1)).to.equal(204);
    }
  });

  it('lists own sessions newest first with paging; renames; deletes; another user gets NOT_FOUND', async () => {
    const carol = testActor('enduser');
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await createSession(platform, carol));
    const page1 = (await (await fetch(url('/api/chat/sessions?limit=2'), { headers: platform.headers(carol) })).json()) as {
      sessions: Array<{ id: string }>;
      total: number;
    };
    expect(page1.total).to.equal(3);
    expect(page1.sessions.map((s) => s.id)).to.deep.equal([ids[2], ids[1]]);
    const page2 = (await (await fetch(url('/api/chat/sessions?limit=2&page=2'), { headers: platform.headers(carol) })).json()) as {
      sessions: Array<{ id: string }>;
    };
    expect(page2.sessions.map((s) => s.id)).to.deep.equal([ids[0]]);

    const renamed = await fetch(url(`/api/chat/sessions/${ids[0]}`), {
      method: 'PATCH',
      headers: platform.json(carol),
      body: JSON.stringify({ title: 'Renamed' }),
    });
    expect(((await renamed.json()) as { session: { title: string } }).session.title).to.equal('Renamed');
    await expectProblem(
      await fetch(url(`/api/chat/sessions/${ids[0]}`), { method: 'PATCH', headers: platform.json(carol), body: JSON.stringify({}) }),
      400,
      'VALIDATION_FAILED',
    );

    // someone else's session does not exist for bob, whatever he tries
    await expectProblem(await fetch(url(`/api/chat/sessions/${ids[0]}`), { headers: platform.headers(bob) }), 404, 'NOT_FOUND');
    await expectProblem(
      await fetch(url(`/api/chat/sessions/${ids[0]}`), { method: 'PATCH', headers: platform.json(bob), body: JSON.stringify({ title: 'mine' }) }),
      404,
      'NOT_FOUND',
    );
    await expectProblem(await fetch(url(`/api/chat/sessions/${ids[0]}`), { method: 'DELETE', headers: platform.headers(bob) }), 404, 'NOT_FOUND');
    await expectProblem(
      await fetch(url(`/api/chat/sessions/${ids[0]}/stream`), { method: 'POST', headers: platform.json(bob), body: JSON.stringify({ message: 'hi' }) }),
      404,
      'NOT_FOUND',
    );
    await expectProblem(await fetch(url('/api/chat/sessions/not-an-id'), { headers: platform.headers(carol) }), 404, 'NOT_FOUND');

    const deleted = await fetch(url(`/api/chat/sessions/${ids[0]}`), { method: 'DELETE', headers: platform.headers(carol) });
    expect(deleted.status).to.equal(204);
    await expectProblem(await fetch(url(`/api/chat/sessions/${ids[0]}`), { headers: platform.headers(carol) }), 404, 'NOT_FOUND');
  });
});
