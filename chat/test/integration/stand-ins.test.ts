// The stand-ins chat's tests talk to must answer what the real services answer: the same cases as
// accounting/test/integration/credits.test.ts and monitoring's relationship check, against the stand-ins, every
// success parsed with the shared contract's response schema (shared-types/src/internal-api.ts).
import { randomUUID } from 'node:crypto';
import { relationshipCheckResponse, reservationResponse } from '@platform/shared-types';
import { createTestAuth, expectProblem, testActor } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { fetch } from '../support/harness.ts';
import { AccountingStandIn, MonitoringStandIn } from '../support/stand-ins.ts';

describe('stand-ins answer what the real accounting and monitoring answer', () => {
  const auth = createTestAuth();
  let accounting: AccountingStandIn;
  let monitoring: MonitoringStandIn;
  const owner = testActor('enduser');
  const other = testActor('enduser');

  before(async () => {
    accounting = await new AccountingStandIn(auth).start();
    monitoring = await new MonitoringStandIn(auth).start();
  });
  after(async () => {
    await accounting.stop();
    await monitoring.stop();
  });

  const call = (path: string, body: unknown, actor?: typeof owner, raw?: string) =>
    fetch(`${accounting.url}/internal/streaming-sessions/${path}`, {
      method: 'POST',
      headers: {
        ...auth.serviceHeaders('chat', 'accounting'),
        'content-type': 'application/json',
        ...(actor ? { authorization: `Bearer ${auth.token(actor)}` } : {}),
      },
      body: raw ?? JSON.stringify(body),
    });
  const initialize = (reservationId: string, actor = owner, sessionId = 's1') =>
    call('initialize', { reservationId, sessionId, modelId: 'local-dev', inputTokens: 10, maxOutputTokens: 100 }, actor);
  const reservation = async (response: Awaited<ReturnType<typeof fetch>>) => {
    expect(response.status, await response.clone().text()).to.equal(200);
    return reservationResponse.parse(await response.json());
  };

  it('refuses bodies the contract refuses, and malformed JSON, with 400 VALIDATION_FAILED', async () => {
    await expectProblem(await call('initialize', { reservationId: 'not-a-uuid', sessionId: 's', modelId: 'local-dev' }, owner), 400, 'VALIDATION_FAILED');
    await expectProblem(await call('finalize', { reservationId: randomUUID(), inputTokens: -1, outputTokens: 1 }), 400, 'VALIDATION_FAILED');
    await expectProblem(await call('abort', { reservationId: randomUUID() }), 400, 'VALIDATION_FAILED');
    await expectProblem(await call('finalize', undefined, undefined, '{"reservationId":'), 400, 'VALIDATION_FAILED');
  });

  it('answers a repeated initialize with the same reservation, and 409 CONFLICT for an id another user or stream holds', async () => {
    const reservationId = randomUUID();
    const first = await reservation(await initialize(reservationId));
    expect(first).to.include({ reservationId, userId: owner.userId, status: 'open', chargedCredits: 0, releasedCredits: 0 });
    expect(await reservation(await initialize(reservationId))).to.deep.include({ reservationId, reservedCredits: first.reservedCredits });
    await expectProblem(await initialize(reservationId, other), 409, 'CONFLICT');
    await expectProblem(await initialize(reservationId, owner, 'another-session'), 409, 'CONFLICT');
  });

  it('refuses to settle another user’s reservation when a user token is sent (403), settles without one', async () => {
    const reservationId = randomUUID();
    await reservation(await initialize(reservationId));
    await expectProblem(await call('finalize', { reservationId, inputTokens: 1, outputTokens: 1 }, other), 403, 'FORBIDDEN');
    await expectProblem(await call('finalize', { reservationId: randomUUID(), inputTokens: 1, outputTokens: 1 }), 404, 'NOT_FOUND');
    const settled = await reservation(await call('finalize', { reservationId, inputTokens: 10, outputTokens: 20 }));
    expect(settled.status).to.equal('finalized');
    expect(settled.chargedCredits + settled.releasedCredits).to.equal(settled.reservedCredits);
  });

  it('has the expired status: an expired reservation charges nothing and settles no more', async () => {
    const reservationId = randomUUID();
    const before = accounting.balance(owner.userId);
    const opened = await reservation(await initialize(reservationId));
    accounting.expire(reservationId);
    expect(accounting.balance(owner.userId)).to.equal(before);
    const late = await reservation(await call('finalize', { reservationId, inputTokens: 10, outputTokens: 20 }));
    expect(late).to.include({ status: 'expired', chargedCredits: 0, releasedCredits: opened.reservedCredits, availableCredits: before });
  });

  it('answers the relationship check in the contract’s shape, 400 for a bad query', async () => {
    const supervisor = testActor('supervisor');
    monitoring.supervise(supervisor.userId, owner.userId);
    const check = async (query: string) =>
      fetch(`${monitoring.url}/internal/relationships/check?${query}`, { headers: auth.serviceHeaders('chat', 'monitoring') });
    const yes = await check(`supervisorId=${supervisor.userId}&studentId=${owner.userId}`);
    expect(relationshipCheckResponse.parse(await yes.json())).to.include({ supervises: true });
    const no = await check(`supervisorId=${supervisor.userId}&studentId=${other.userId}`);
    expect(relationshipCheckResponse.parse(await no.json())).to.include({ supervises: false });
    await expectProblem(await check(`supervisorId=${supervisor.userId}`), 400, 'VALIDATION_FAILED');
  });
});
