import type { Migration } from '@platform/shared-types/stores/postgres';
import { moneyFunctions003, RETURN_HOLDS } from './003-money-functions.ts';

/** 003's text one level deeper (inside `IF v_was_open THEN`), so the function source stays as first written. */
const indented = (text: string) => text.replace(/^/gm, '  ');

/**
 * Money exact over time (DESIGN section 8, issue 14): a running stream renews its reservation; the sweeper expires
 * only reservations whose holder stopped renewing; a settle after an expiry, and usage above the reservation, are
 * charged from the balance up to what is left, and what could not be charged is recorded as a shortfall.
 *
 * New columns: `beyond_hold` (the part of `charged` taken from the balance, not from the reservation's hold),
 * `shortfall` (credits the usage cost that could not be charged: the balance was empty), `expired_at` (when the
 * sweeper released the hold; a late settle keeps it), `renewed_at`. `charged - beyond_hold` never exceeds `reserved`.
 * acc_settle keeps its signature (acc_batch of migration 004 calls it unchanged).
 */
export const LATE_CHARGE_FUNCTIONS = `
-- Extends an open reservation's expiry (its holder is alive). Locks only the reservation row, never the account,
-- so it cannot deadlock with acc_settle (account first, then reservation). Idempotent; a settled reservation is
-- returned as is (the caller learns it was expired and settles late).
CREATE FUNCTION acc_renew(p_id uuid, p_ttl_seconds integer, p_expect_user text)
RETURNS TABLE (reservation reservations, available_after bigint) LANGUAGE plpgsql AS $$
DECLARE
  v_res reservations;
BEGIN
  SELECT * INTO v_res FROM reservations WHERE id = p_id FOR UPDATE;
  IF NOT FOUND THEN RAISE EXCEPTION 'reservation' USING ERRCODE = 'P0404'; END IF;
  IF p_expect_user IS NOT NULL AND p_expect_user <> v_res.user_id THEN
    RAISE EXCEPTION 'reservation belongs to another user' USING ERRCODE = 'P0403';
  END IF;
  IF v_res.status = 'open' THEN
    UPDATE reservations SET expires_at = greatest(expires_at, now() + make_interval(secs => p_ttl_seconds)), renewed_at = now()
     WHERE id = p_id RETURNING * INTO v_res;
  END IF;
  reservation := v_res;
  SELECT available INTO available_after FROM accounts WHERE user_id = v_res.user_id;
  RETURN NEXT;
END $$;

-- Settles a reservation.
-- 'expired' (the sweeper): only an open reservation past its expiry; releases the whole hold, charges nothing.
-- 'finalized' / 'aborted': the cost of the given tokens at the reservation's prices (uncapped). From an open
--   reservation the hold pays first and the rest goes back; the part above the hold, and the whole cost after
--   an expiry, is taken from the live balance up to what is left; the remainder is recorded as shortfall.
-- A reservation already finalized or aborted is returned unchanged (idempotent: exactly one charge).
-- Input tokens default to the reservation's estimate.
CREATE OR REPLACE FUNCTION acc_settle(p_id uuid, p_status text, p_input_tokens integer, p_output_tokens integer, p_expect_user text)
RETURNS TABLE (reservation reservations, available_after bigint) LANGUAGE plpgsql AS $$
DECLARE
  v_user text;
  v_available bigint;
  v_res reservations;
  v_was_open boolean;
  v_cost bigint := 0;
  v_from_hold bigint := 0;
  v_extra bigint := 0;
  v_shortfall bigint := 0;
  v_left bigint;
  v_take bigint;
  v_input integer;
  v_into_expired boolean := false;
  v_release bigint := 0;
  h record;
BEGIN
  SELECT user_id INTO v_user FROM reservations WHERE id = p_id;
  IF NOT FOUND THEN RAISE EXCEPTION 'reservation' USING ERRCODE = 'P0404'; END IF;
  IF p_expect_user IS NOT NULL AND p_expect_user <> v_user THEN
    RAISE EXCEPTION 'reservation belongs to another user' USING ERRCODE = 'P0403';
  END IF;
  v_available := acc_lock(v_user);
  -- locked after the account (acc_renew locks only this row): a renewal either lands before and is seen, or after
  SELECT * INTO v_res FROM reservations WHERE id = p_id FOR UPDATE;
  IF v_res.status IN ('finalized', 'aborted')
     OR (p_status = 'expired' AND (v_res.status <> 'open' OR v_res.expires_at > now())) THEN
    reservation := v_res;
    available_after := v_available;
    RETURN NEXT;
    RETURN;
  END IF;
  v_was_open := v_res.status = 'open';
  IF p_status <> 'expired' THEN
    v_input := coalesce(p_input_tokens, v_res.input_tokens);
    v_cost := ceil(v_input::numeric * v_res.input_per_1k / 1000) + ceil(p_output_tokens::numeric * v_res.output_per_1k / 1000);
  END IF;
  IF v_was_open THEN
    v_release := v_res.reserved;
    v_from_hold := least(v_res.reserved, v_cost);
    -- the charge consumes the holds soonest-expiring first; what is left goes back to its allocation
    v_left := v_from_hold;
${indented(RETURN_HOLDS)}
  END IF;
  -- above the hold (or after an expiry released it): from the live balance, never below zero
  v_extra := least(v_cost - v_from_hold, v_available);
  v_shortfall := v_cost - v_from_hold - v_extra;
  IF v_extra > 0 THEN PERFORM acc_take(v_user, v_extra, NULL); END IF;
  -- the whole hold comes back (release), then the actual cost goes (charge), in one statement
  INSERT INTO ledger (user_id, type, amount, balance_after, reference, reservation_id)
  SELECT v_user, e.type, e.amount, e.balance_after, 'reservation:' || p_id, p_id
    FROM (VALUES (1, 'release', v_release, v_available + v_release),
                 (2, 'charge', -(v_from_hold + v_extra), v_available + v_release - v_from_hold - v_extra)) AS e(seq, type, amount, balance_after)
   WHERE (e.seq = 1 AND v_was_open) OR (e.seq = 2 AND v_from_hold + v_extra > 0)
   ORDER BY e.seq;
  v_available := v_available + v_release - v_from_hold - v_extra;
  UPDATE accounts SET available = v_available, reserved = reserved - v_release WHERE user_id = v_user;
  UPDATE reservations
     SET status = p_status, charged = v_from_hold + v_extra, beyond_hold = v_extra, shortfall = v_shortfall, settled_at = now(),
         expired_at = CASE WHEN p_status = 'expired' THEN now() ELSE expired_at END
   WHERE id = p_id
  RETURNING * INTO v_res;
  IF p_status <> 'expired' THEN
    INSERT INTO usage (user_id, model_id, session_id, reservation_id, input_tokens, output_tokens, credits, shortfall)
    VALUES (v_user, v_res.model_id, v_res.session_id, p_id, v_input, p_output_tokens, v_from_hold + v_extra, v_shortfall)
    ON CONFLICT (reservation_id) DO NOTHING;
  END IF;
  -- credits released into an allocation that expired meanwhile expire now
  IF v_into_expired THEN v_available := acc_expire_due(v_user, v_available); END IF;
  reservation := v_res;
  available_after := v_available;
  RETURN NEXT;
END $$;
`;

export const lateCharges005: Migration = {
  name: '005-late-charges',
  async up(db) {
    await db.raw(`
      ALTER TABLE reservations
        ADD COLUMN beyond_hold bigint NOT NULL DEFAULT 0,
        ADD COLUMN shortfall bigint NOT NULL DEFAULT 0,
        ADD COLUMN expired_at timestamptz NULL,
        ADD COLUMN renewed_at timestamptz NULL`);
    await db.raw('ALTER TABLE reservations DROP CONSTRAINT reservations_amounts');
    await db.raw(`ALTER TABLE reservations ADD CONSTRAINT reservations_amounts
      CHECK (reserved >= 1 AND charged >= 0 AND beyond_hold >= 0 AND beyond_hold <= charged AND shortfall >= 0 AND charged - beyond_hold <= reserved)`);
    await db.raw('ALTER TABLE usage ADD COLUMN shortfall bigint NOT NULL DEFAULT 0');
    await db.raw('ALTER TABLE usage ADD CONSTRAINT usage_shortfall_nonnegative CHECK (shortfall >= 0)');
    await db.raw('CREATE INDEX reservations_shortfall ON reservations (user_id) WHERE shortfall > 0');
    await db.raw(LATE_CHARGE_FUNCTIONS);
  },
  async down(db) {
    await db.raw('DROP FUNCTION IF EXISTS acc_renew(uuid, integer, text)');
    // back to migration 003's functions (acc_batch of 004 calls acc_settle by name, so it needs no change)
    await moneyFunctions003.down(db);
    await moneyFunctions003.up(db);
    await db.raw('DROP INDEX IF EXISTS reservations_shortfall');
    await db.raw('ALTER TABLE usage DROP CONSTRAINT usage_shortfall_nonnegative, DROP COLUMN shortfall');
    await db.raw('ALTER TABLE reservations DROP CONSTRAINT reservations_amounts');
    await db.raw('ALTER TABLE reservations DROP COLUMN beyond_hold, DROP COLUMN shortfall, DROP COLUMN expired_at, DROP COLUMN renewed_at');
    await db.raw('ALTER TABLE reservations ADD CONSTRAINT reservations_amounts CHECK (reserved >= 1 AND charged >= 0 AND charged <= reserved)');
  },
};
