import { randomBytes, randomUUID } from 'node:crypto';
import type { UserEvent } from '@platform/shared-types';
import { USER_EVENT_FIELD } from '@platform/shared-types';
import { expect } from 'chai';
import { eventually, type Harness, startAccounting } from '../helpers.ts';

describe('accounting user events consumer (real Redis stream, real PostgreSQL)', () => {
  let h: Harness;
  before(async () => {
    h = await startAccounting();
  });
  after(async () => {
    await h.stop();
  });

  const event = (userId: string, type: UserEvent['type'], occurredAt: Date, patch: Partial<UserEvent['user']> = {}): UserEvent => ({
    eventId: randomUUID(),
    type,
    occurredAt: occurredAt.toISOString(),
    user: { id: userId, username: 'ada', email: 'ada@example.test', role: 'enduser', status: 'active', ...patch },
  });
  const publish = (e: UserEvent | string) => h.redis.xadd(h.stream, '*', USER_EVENT_FIELD, typeof e === 'string' ? e : JSON.stringify(e));
  const pending = async () => Number(((await h.redis.xpending(h.stream, h.config.USER_EVENTS_GROUP)) as [number])[0]);

  const accountRow = (userId: string) => h.db('accounts').where({ user_id: userId }).first();
  /** Entries are applied in stream order: once an account for a fresh user appears, everything before it was handled. */
  const drained = async () => {
    const marker = randomBytes(12).toString('hex');
    await publish(event(marker, 'user.registered', new Date()));
    await eventually(async () => accountRow(marker));
  };

  it('creates and updates accounts from events, applies a duplicate once, never an older event, and acknowledges every entry', async () => {
    const userId = randomBytes(12).toString('hex');
    const t0 = new Date(Date.now() - 60_000);
    const registered = event(userId, 'user.registered', t0);
    await publish(registered);
    const created = await eventually(async () => accountRow(userId));
    expect(created).to.include({ username: 'ada', role: 'enduser', disabled: false });

    const promoted = event(userId, 'user.role_changed', new Date(t0.getTime() + 2_000), { role: 'supervisor', email: 'ada@new.test' });
    await publish(promoted);
    const afterPromotion = await eventually(async () => {
      const row = await accountRow(userId);
      return row?.role === 'supervisor' ? row : undefined;
    });
    expect(afterPromotion).to.include({ email: 'ada@new.test' });
    // delivered a second time: applied once, the row is not written again (updated_at included)
    await publish(promoted);
    await drained();
    expect(await accountRow(userId)).to.deep.equal(afterPromotion);

    await publish(event(userId, 'user.disabled', new Date(t0.getTime() + 3_000), { role: 'supervisor', email: 'ada@new.test', status: 'disabled' }));
    const disabled = await eventually(async () => {
      const row = await accountRow(userId);
      return row?.disabled ? row : undefined;
    });
    expect(disabled).to.include({ role: 'supervisor', email: 'ada@new.test', disabled: true });
    // older events replayed last (nothing newer follows to mask them) and a malformed entry: nothing changes
    await publish(registered);
    await publish(promoted);
    await publish('{not json');
    await drained();
    expect(await accountRow(userId)).to.deep.equal(disabled);
    await eventually(async () => (await pending()) === 0);
    // an allocation keeps working for an account that came from events (no request made yet)
    const res = await h.api.as({ userId: 'admin-1', username: 'root', email: 'root@example.test', role: 'admin' }, 'POST', '/api/credits/allocate', {
      userId,
      credits: 10,
    });
    expect(res.status).to.equal(201);
    // a disabled account cannot start a stream, whatever its token says
    const token = h.auth.token({ userId, username: 'ada', email: 'ada@new.test', role: 'supervisor' });
    const init = await h.api.internal(
      'POST',
      '/internal/streaming-sessions/initialize',
      { reservationId: randomUUID(), sessionId: 's', modelId: 'local-dev', inputTokens: 1, maxOutputTokens: 1 },
      { token },
    );
    expect(init.status).to.equal(403);
  });

  it('sets its group up again when the stream was deleted', async () => {
    await h.redis.del(h.stream);
    const userId = randomBytes(12).toString('hex');
    await publish(event(userId, 'user.registered', new Date()));
    await eventually(async () => h.db('accounts').where({ user_id: userId }).first(), 10_000);
  });

  it('takes over entries a consumer that went away read but never acknowledged', async () => {
    const stream = `test:events:users:${randomUUID()}`;
    const userId = randomBytes(12).toString('hex');
    await h.redis.xgroup('CREATE', stream, h.config.USER_EVENTS_GROUP, '0', 'MKSTREAM');
    await h.redis.xadd(stream, '*', USER_EVENT_FIELD, JSON.stringify(event(userId, 'user.registered', new Date())));
    await h.redis.xreadgroup('GROUP', h.config.USER_EVENTS_GROUP, 'crashed-consumer', 'COUNT', 10, 'STREAMS', stream, '>');
    const second = await startAccounting({ USER_EVENTS_STREAM: stream, USER_EVENTS_CLAIM_IDLE_MS: '0' });
    try {
      await eventually(async () => second.db('accounts').where({ user_id: userId }).first());
      await eventually(async () => Number(((await second.redis.xpending(stream, second.config.USER_EVENTS_GROUP)) as [number])[0]) === 0);
    } finally {
      await second.stop();
    }
  });
});
