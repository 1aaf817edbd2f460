// GET /internal/replies (issue 14, reconciliation): the metered replies chat stored, for accounting only, paged;
// a deleted session keeps its metered replies as billing receipts without their text.
import { internalRepliesResponse, type StoredReply } from '@platform/shared-types';
import { expectProblem, testActor } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { createSession, fetch, type Platform, type SseEvent, startPlatform, streamMessage } from '../support/harness.ts';

describe('stored replies for reconciliation (real stores, accounting stand-in over HTTP)', () => {
  let platform: Platform;
  const url = (path: string) => `${platform.instances[0]?.url}${path}`;
  const since = new Date(Date.now() - 60_000).toISOString();
  const window = () => `from=${encodeURIComponent(since)}&to=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`;
  const list = (query: string, caller: 'accounting' | 'monitoring' = 'accounting') =>
    fetch(url(`/internal/replies?${query}`), { headers: platform.auth.serviceHeaders(caller, 'chat') });
  const replies = async (query = window()) => {
    const response = await list(query);
    expect(response.status, await response.clone().text()).to.equal(200);
    return internalRepliesResponse.parse(await response.json());
  };
  const streamed = async (user: ReturnType<typeof testActor>) => {
    const sessionId = await createSession(platform, user);
    const stream = await streamMessage(platform, user, sessionId, 'hello there');
    await stream.waitForEnd();
    const { reservationId, messageId } = (stream.events[0] as SseEvent).data as { reservationId: string; messageId: string };
    return { sessionId, reservationId, messageId, done: stream.terminal()?.data as { usage: StoredReply['usage']; credits: number } };
  };

  before(async () => {
    platform = await startPlatform();
  });
  after(async () => {
    await platform.stop();
  });

  it('lists each metered reply with its reservation id, status, usage and the credits accounting answered', async () => {
    const user = testActor('enduser');
    const first = await streamed(user);
    const listed = (await replies()).replies.find((reply) => reply.messageId === first.messageId);
    expect(listed).to.include({
      reservationId: first.reservationId,
      userId: user.userId,
      sessionId: first.sessionId,
      status: 'complete',
      modelId: 'local-dev',
    });
    expect(listed?.usage).to.deep.equal(first.done.usage);
    expect(listed?.credits).to.equal(platform.accounting.reservations.get(first.reservationId)?.charged).and.to.equal(first.done.credits);
    expect(listed).to.not.have.property('deleted');
    // a window that ended before the reply was stored does not list it
    const before = `from=${encodeURIComponent(since)}&to=${encodeURIComponent(new Date(Date.parse(listed?.createdAt ?? '') - 1).toISOString())}`;
    expect((await replies(before)).replies.map((reply) => reply.messageId)).to.not.include(first.messageId);
  });

  it('pages by message id: every reply exactly once across pages', async () => {
    const user = testActor('enduser');
    const mine = [await streamed(user), await streamed(user), await streamed(user)].map((s) => s.messageId);
    const seen: string[] = [];
    let after: string | undefined;
    let pages = 0;
    do {
      const page = await replies(`${window()}&limit=2${after ? `&after=${after}` : ''}`);
      expect(page.replies.length).to.be.at.most(2);
      seen.push(...page.replies.map((reply) => reply.messageId));
      after = page.next;
      pages++;
    } while (after && pages < 50);
    expect(pages).to.be.greaterThan(1);
    expect(new Set(seen).size).to.equal(seen.length);
    expect(seen).to.include.members(mine);
  });

  it('keeps the metered reply of a deleted session as a receipt without its text; the session and the user message are gone', async () => {
    const user = testActor('enduser');
    const { sessionId, messageId, reservationId } = await streamed(user);
    const removed = await fetch(url(`/api/chat/sessions/${sessionId}`), { method: 'DELETE', headers: platform.headers(user) });
    expect(removed.status).to.equal(204);
    await expectProblem(await fetch(url(`/api/chat/sessions/${sessionId}`), { headers: platform.headers(user) }), 404, 'NOT_FOUND');
    const receipt = (await replies()).replies.find((reply) => reply.messageId === messageId);
    expect(receipt).to.include({ reservationId, deleted: true, status: 'complete' });
    const stored = await platform.instances[0]?.stores.mongo
      .collection('messages')
      .find({ sessionId: { $exists: true } })
      .toArray();
    const ofSession = (stored ?? []).filter((doc) => String(doc.sessionId) === sessionId);
    expect(ofSession.map((doc) => [doc.role, doc.content])).to.deep.equal([['assistant', '']]);
  });

  it('answers only accounting: 401 without a service token or with a user identity, 403 for another service, 400 for a bad window', async () => {
    const user = testActor('enduser');
    await expectProblem(await fetch(url(`/internal/replies?${window()}`)), 401, 'UNAUTHENTICATED');
    await expectProblem(await fetch(url(`/internal/replies?${window()}`), { headers: platform.headers(user) }), 401, 'UNAUTHENTICATED');
    await expectProblem(await list(window(), 'monitoring'), 403, 'FORBIDDEN');
    await expectProblem(await list(`from=${encodeURIComponent(new Date().toISOString())}&to=${encodeURIComponent(since)}`), 400, 'VALIDATION_FAILED');
    await expectProblem(await list(`${window()}&limit=100000`), 400, 'VALIDATION_FAILED');
    await expectProblem(await list(`${window()}&after=not-an-id`), 400, 'VALIDATION_FAILED');
  });
});
