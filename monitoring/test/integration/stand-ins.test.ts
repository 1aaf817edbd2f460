// The stand-ins monitoring's tests talk to answer what the real services answer (the real sides are pinned in
// accounting/test/integration/access.test.ts and chat/test/integration/supervision.test.ts), in the shapes of
// the shared contract (shared-types/src/internal-api.ts).
import { internalActiveResponse, internalBalancesResponse } from '@platform/shared-types';
import { createTestAuth, testActor } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { type FakeAccounting, type FakeChat, startFakeAccounting, startFakeChat } from '../support/fake-services.ts';

describe('monitoring test stand-ins follow the real contracts', () => {
  const auth = createTestAuth();
  let accounting: FakeAccounting;
  let chat: FakeChat;
  before(async () => {
    accounting = await startFakeAccounting(auth);
    chat = await startFakeChat(auth);
  });
  after(async () => {
    await accounting.close();
    await chat.close();
  });

  const internal = async (path: string) => {
    const response = await fetch(`${accounting.url}${path}`, { headers: auth.serviceHeaders('monitoring', 'accounting') });
    expect(response.status).to.equal(200);
    return response.json();
  };

  it('accounting: every asked user gets a balance, zeros for one without an account (as the real one answers)', async () => {
    const known = testActor('enduser');
    accounting.balances.set(known.userId, { available: 7, reserved: 3 });
    const body = internalBalancesResponse.parse(await internal(`/internal/credits/balances?userIds=${known.userId},nobody`));
    expect(body.balances).to.deep.equal([
      { userId: known.userId, available: 7, reserved: 3 },
      { userId: 'nobody', available: 0, reserved: 0 },
    ]);
    expect(internalActiveResponse.parse(await internal('/internal/streaming-sessions/active?userIds=nobody'))).to.deep.equal({ sessions: [] });
  });

  it('chat: refuses to emit a terminal event chat would not send (interrupted names the interrupter by username and id)', () => {
    const supervisor = testActor('supervisor');
    chat.open('s1', 'owner');
    const usage = { inputTokens: 1, outputTokens: 1 };
    expect(() => chat.emit('s1', 'interrupted', { by: supervisor.userId, reason: 'stop', usage, credits: 1 })).to.throw();
    expect(() => chat.emit('s1', 'interrupted', { messageId: 'm', by: supervisor.userId, reason: 'stop', usage, credits: 1 })).to.throw();
    expect(() => chat.emit('s1', 'done', { messageId: 'm', usage: {}, credits: 1 })).to.throw();
    chat.emit('s1', 'interrupted', { messageId: 'm', by: supervisor.username, byUserId: supervisor.userId, reason: 'stop', usage, credits: 1 });
    expect(chat.sessions.get('s1')?.ended).to.equal(true);
  });
});
