import type { Migration } from '@platform/shared-types/stores/postgres';

/**
 * Group commit for a hot account: `acc_batch` runs several reserve/settle calls (the functions of migration 003,
 * unchanged) in order, in one transaction and one round trip. Each call still locks the account row and makes its
 * whole change inside that transaction. There are no subtransactions (they would turn the row locks into
 * multixacts): any error rolls the whole batch back, and the caller then runs the calls one by one, so each
 * gets its own answer. Calls are JSON objects: {op: 'reserve', reservationId, userId, username, email, role,
 * sessionId, modelId, inputTokens, maxOutputTokens, ttlSeconds} or {op: 'settle', reservationId, status,
 * inputTokens, outputTokens, expectUserId}. One row per call, in order: the reservation with available_after.
 */
const FUNCTIONS = `
CREATE FUNCTION acc_batch(p_calls jsonb) RETURNS SETOF jsonb LANGUAGE plpgsql AS $$
DECLARE
  c jsonb;
  v_result jsonb;
BEGIN
  FOR c IN SELECT e.value FROM jsonb_array_elements(p_calls) WITH ORDINALITY AS e(value, n) ORDER BY e.n LOOP
    IF c->>'op' = 'reserve' THEN
      SELECT to_jsonb(x) INTO v_result FROM (
        SELECT (r.reservation).*, r.available_after
          FROM acc_reserve((c->>'reservationId')::uuid, c->>'userId', c->>'username', c->>'email', c->>'role',
                           c->>'sessionId', c->>'modelId', (c->>'inputTokens')::integer, (c->>'maxOutputTokens')::integer,
                           (c->>'ttlSeconds')::integer) r) x;
    ELSIF c->>'op' = 'settle' THEN
      SELECT to_jsonb(x) INTO v_result FROM (
        SELECT (r.reservation).*, r.available_after
          FROM acc_settle((c->>'reservationId')::uuid, c->>'status', (c->>'inputTokens')::integer,
                          (c->>'outputTokens')::integer, c->>'expectUserId') r) x;
    ELSE
      RAISE EXCEPTION 'unknown batch call %', c->>'op';
    END IF;
    RETURN NEXT v_result;
  END LOOP;
END $$;
`;

export const moneyBatch004: Migration = {
  name: '004-money-batch',
  async up(db) {
    await db.raw(FUNCTIONS);
  },
  async down(db) {
    await db.raw('DROP FUNCTION IF EXISTS acc_batch(jsonb)');
  },
};
