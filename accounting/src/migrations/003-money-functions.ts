import type { Migration } from '@platform/shared-types/stores/postgres';

/**
 * The money core, one PL/pgSQL function per balance change, so each change is one round trip and one
 * transaction: it locks the user's account row (SELECT ... FOR UPDATE) before reading anything else; in READ
 * COMMITTED every later statement of the function takes a fresh snapshot, so it sees what the previous lock
 * holder committed. Allocations and holds of a user are only ever changed under that lock.
 *
 * Errors carry our own SQLSTATEs, mapped to problem codes in src/db.ts:
 * P0402 insufficient credits (DETAIL = available), P0403 forbidden, P0404 not found (MESSAGE names what), P0409 conflict.
 */
/**
 * Gives a settled reservation's holds back, less the charge `v_left` they pay (soonest-expiring first); notes in
 * `v_into_expired` whether credits went back into an expired allocation. Migration 005 nests it one level deeper.
 */
export const RETURN_HOLDS = `  FOR h IN SELECT rh.allocation_id, rh.amount, a.expires_at <= now() AS expired
           FROM reservation_holds rh JOIN allocations a ON a.id = rh.allocation_id
           WHERE rh.reservation_id = p_id ORDER BY a.expires_at NULLS LAST, a.id LOOP
    v_take := least(h.amount, v_left);
    v_left := v_left - v_take;
    IF h.amount > v_take THEN
      UPDATE allocations SET remaining = remaining + (h.amount - v_take) WHERE id = h.allocation_id;
      v_into_expired := v_into_expired OR coalesce(h.expired, false);
    END IF;
  END LOOP;
  DELETE FROM reservation_holds WHERE reservation_id = p_id;`;

const FUNCTIONS = `
-- Expires the due allocations of an account the caller has locked; returns available credits after expiry.
CREATE FUNCTION acc_expire_due(p_user text, p_available bigint) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  v_available bigint := p_available;
  r record;
BEGIN
  FOR r IN SELECT id, remaining FROM allocations
           WHERE user_id = p_user AND remaining > 0 AND expires_at <= now() ORDER BY expires_at, id LOOP
    UPDATE allocations SET remaining = 0, expired_at = coalesce(expired_at, now()) WHERE id = r.id;
    v_available := v_available - r.remaining;
    INSERT INTO ledger (user_id, type, amount, balance_after, reference, allocation_id)
    VALUES (p_user, 'expiry', -r.remaining, v_available, 'allocation:' || r.id, r.id);
  END LOOP;
  IF v_available <> p_available THEN
    UPDATE accounts SET available = v_available WHERE user_id = p_user;
  END IF;
  RETURN v_available;
END $$;

-- Locks the account and expires its due allocations; returns available credits after expiry.
CREATE FUNCTION acc_lock(p_user text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  v_available bigint;
BEGIN
  SELECT available INTO v_available FROM accounts WHERE user_id = p_user FOR UPDATE;
  IF NOT FOUND THEN RAISE EXCEPTION 'account' USING ERRCODE = 'P0404'; END IF;
  RETURN acc_expire_due(p_user, v_available);
END $$;

-- Takes credits from live allocations, soonest-expiring first (never-expiring last). The caller holds the lock
-- and has checked the amount is available. With a reservation id the parts taken are recorded as its holds.
CREATE FUNCTION acc_take(p_user text, p_amount bigint, p_reservation uuid) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  v_left bigint := p_amount;
  v_take bigint;
  r record;
BEGIN
  FOR r IN SELECT id, remaining FROM allocations
           WHERE user_id = p_user AND remaining > 0 AND (expires_at IS NULL OR expires_at > now())
           ORDER BY expires_at NULLS LAST, id LOOP
    EXIT WHEN v_left = 0;
    v_take := least(r.remaining, v_left);
    UPDATE allocations SET remaining = remaining - v_take WHERE id = r.id;
    IF p_reservation IS NOT NULL THEN
      INSERT INTO reservation_holds (reservation_id, allocation_id, amount) VALUES (p_reservation, r.id, v_take);
    END IF;
    v_left := v_left - v_take;
  END LOOP;
  -- cannot happen while the invariant holds; a plain error (500), never a silent partial spend
  IF v_left > 0 THEN RAISE EXCEPTION 'allocations do not cover the balance of %', p_user; END IF;
END $$;

CREATE FUNCTION acc_allocate(p_user text, p_credits bigint, p_expires_at timestamptz, p_notes text, p_by text,
                             OUT allocation_id bigint, OUT available bigint) LANGUAGE plpgsql AS $$
BEGIN
  available := acc_lock(p_user);
  INSERT INTO allocations (user_id, credits, remaining, expires_at, notes, allocated_by)
  VALUES (p_user, p_credits, p_credits, p_expires_at, p_notes, p_by) RETURNING id INTO allocation_id;
  available := available + p_credits;
  UPDATE accounts SET available = acc_allocate.available, updated_at = now() WHERE user_id = p_user;
  INSERT INTO ledger (user_id, type, amount, balance_after, reference, allocation_id, created_by)
  VALUES (p_user, 'allocation', p_credits, available, 'allocation:' || allocation_id, allocation_id, p_by);
END $$;

CREATE FUNCTION acc_deduct(p_user text, p_credits bigint, p_reference text, p_by text,
                           OUT ledger_id bigint, OUT available bigint) LANGUAGE plpgsql AS $$
BEGIN
  available := acc_lock(p_user);
  IF available < p_credits THEN
    RAISE EXCEPTION 'insufficient credits' USING ERRCODE = 'P0402', DETAIL = available::text;
  END IF;
  PERFORM acc_take(p_user, p_credits, NULL);
  available := available - p_credits;
  UPDATE accounts SET available = acc_deduct.available, updated_at = now() WHERE user_id = p_user;
  INSERT INTO ledger (user_id, type, amount, balance_after, reference, created_by)
  VALUES (p_user, 'deduction', -p_credits, available, p_reference, p_by) RETURNING id INTO ledger_id;
END $$;

-- Reserves the worst case for a stream; idempotent on the reservation id (a repeat returns the reservation as is).
-- Creates the account just in time from the caller's verified identity.
CREATE FUNCTION acc_reserve(p_id uuid, p_user text, p_username text, p_email text, p_role text,
                            p_session text, p_model text, p_input_tokens integer, p_max_output_tokens integer,
                            p_ttl_seconds integer)
RETURNS TABLE (reservation reservations, available_after bigint) LANGUAGE plpgsql AS $$
DECLARE
  v_available bigint;
  v_price record;
  v_amount bigint;
  v_disabled boolean;
  v_existing reservations;
BEGIN
  SELECT available, disabled INTO v_available, v_disabled FROM accounts WHERE user_id = p_user FOR UPDATE;
  IF NOT FOUND THEN
    INSERT INTO accounts (user_id, username, email, role) VALUES (p_user, p_username, p_email, p_role)
    ON CONFLICT (user_id) DO NOTHING;
    SELECT available, disabled INTO v_available, v_disabled FROM accounts WHERE user_id = p_user FOR UPDATE;
  END IF;
  IF v_disabled THEN RAISE EXCEPTION 'account is disabled' USING ERRCODE = 'P0403'; END IF;
  v_available := acc_expire_due(p_user, v_available);
  SELECT * INTO v_existing FROM reservations WHERE id = p_id;
  IF FOUND THEN
    IF v_existing.user_id <> p_user OR v_existing.session_id <> p_session OR v_existing.model_id <> p_model THEN
      RAISE EXCEPTION 'reservation id already used for another stream' USING ERRCODE = 'P0409';
    END IF;
    reservation := v_existing;
    available_after := v_available;
    RETURN NEXT;
    RETURN;
  END IF;
  SELECT input_per_1k, output_per_1k INTO v_price FROM model_prices WHERE model_id = p_model;
  IF NOT FOUND THEN RAISE EXCEPTION 'model' USING ERRCODE = 'P0404'; END IF;
  v_amount := ceil(p_input_tokens::numeric * v_price.input_per_1k / 1000)
            + ceil(p_max_output_tokens::numeric * v_price.output_per_1k / 1000);
  IF v_available < v_amount THEN
    RAISE EXCEPTION 'insufficient credits' USING ERRCODE = 'P0402', DETAIL = v_available::text;
  END IF;
  INSERT INTO reservations (id, user_id, session_id, model_id, input_per_1k, output_per_1k, input_tokens,
                            max_output_tokens, reserved, expires_at)
  VALUES (p_id, p_user, p_session, p_model, v_price.input_per_1k, v_price.output_per_1k, p_input_tokens,
          p_max_output_tokens, v_amount, now() + make_interval(secs => p_ttl_seconds))
  RETURNING * INTO v_existing;
  PERFORM acc_take(p_user, v_amount, p_id);
  v_available := v_available - v_amount;
  UPDATE accounts SET available = v_available, reserved = reserved + v_amount WHERE user_id = p_user;
  INSERT INTO ledger (user_id, type, amount, balance_after, reference, reservation_id)
  VALUES (p_user, 'reservation', -v_amount, v_available, 'reservation:' || p_id, p_id);
  reservation := v_existing;
  available_after := v_available;
  RETURN NEXT;
END $$;

-- Settles an open reservation: 'finalized' or 'aborted' charge the cost of the given tokens at the reservation's
-- prices, capped at what was reserved, and release the rest; 'expired' (the sweeper) charges nothing and only
-- applies when the reservation is past its expiry. A settled reservation is returned unchanged (idempotent).
-- Input tokens default to the reservation's estimate.
CREATE FUNCTION acc_settle(p_id uuid, p_status text, p_input_tokens integer, p_output_tokens integer, p_expect_user text)
RETURNS TABLE (reservation reservations, available_after bigint) LANGUAGE plpgsql AS $$
DECLARE
  v_user text;
  v_available bigint;
  v_res reservations;
  v_charge bigint := 0;
  v_left bigint;
  v_take bigint;
  v_input integer;
  v_into_expired boolean := false;
  h record;
BEGIN
  SELECT user_id INTO v_user FROM reservations WHERE id = p_id;
  IF NOT FOUND THEN RAISE EXCEPTION 'reservation' USING ERRCODE = 'P0404'; END IF;
  IF p_expect_user IS NOT NULL AND p_expect_user <> v_user THEN
    RAISE EXCEPTION 'reservation belongs to another user' USING ERRCODE = 'P0403';
  END IF;
  v_available := acc_lock(v_user);
  SELECT * INTO v_res FROM reservations WHERE id = p_id;
  IF v_res.status <> 'open' OR (p_status = 'expired' AND v_res.expires_at > now()) THEN
    reservation := v_res;
    available_after := v_available;
    RETURN NEXT;
    RETURN;
  END IF;
  IF p_status <> 'expired' THEN
    v_input := coalesce(p_input_tokens, v_res.input_tokens);
    v_charge := least(v_res.reserved,
                      ceil(v_input::numeric * v_res.input_per_1k / 1000)
                      + ceil(p_output_tokens::numeric * v_res.output_per_1k / 1000));
  END IF;
  -- the charge consumes the holds soonest-expiring first; what is left goes back to its allocation
  v_left := v_charge;
${RETURN_HOLDS}
  -- the whole hold comes back (release), then the actual cost goes (charge), both in one statement
  INSERT INTO ledger (user_id, type, amount, balance_after, reference, reservation_id)
  SELECT v_user, e.type, e.amount, e.balance_after, 'reservation:' || p_id, p_id
    FROM (VALUES (1, 'release', v_res.reserved, v_available + v_res.reserved),
                 (2, 'charge', -v_charge, v_available + v_res.reserved - v_charge)) AS e(seq, type, amount, balance_after)
   WHERE e.seq = 1 OR v_charge > 0
   ORDER BY e.seq;
  v_available := v_available + v_res.reserved - v_charge;
  UPDATE accounts SET available = v_available, reserved = reserved - v_res.reserved WHERE user_id = v_user;
  UPDATE reservations SET status = p_status, charged = v_charge, settled_at = now() WHERE id = p_id
  RETURNING * INTO v_res;
  IF p_status <> 'expired' THEN
    INSERT INTO usage (user_id, model_id, session_id, reservation_id, input_tokens, output_tokens, credits)
    VALUES (v_user, v_res.model_id, v_res.session_id, p_id, v_input, p_output_tokens, v_charge)
    ON CONFLICT (reservation_id) DO NOTHING;
  END IF;
  -- credits released into an allocation that expired meanwhile expire now
  IF v_into_expired THEN v_available := acc_expire_due(v_user, v_available); END IF;
  reservation := v_res;
  available_after := v_available;
  RETURN NEXT;
END $$;
`;

const NAMES = [
  'acc_settle(uuid, text, integer, integer, text)',
  'acc_reserve(uuid, text, text, text, text, text, text, integer, integer, integer)',
  'acc_deduct(text, bigint, text, text)',
  'acc_allocate(text, bigint, timestamptz, text, text)',
  'acc_take(text, bigint, uuid)',
  'acc_lock(text)',
  'acc_expire_due(text, bigint)',
];

export const moneyFunctions003: Migration = {
  name: '003-money-functions',
  async up(db) {
    await db.raw(FUNCTIONS);
  },
  async down(db) {
    for (const name of NAMES) await db.raw(`DROP FUNCTION IF EXISTS ${name}`);
  },
};
