import type { Migration } from '@platform/shared-types/stores/postgres';

/**
 * API-key credit limits (DESIGN 5b, issue 13). `api_keys` holds what accounting learned from auth about a key (its
 * owner and limit, asked on the key's first reservation); `reservations.api_key_id` names the key a reservation was
 * made through. A key's spend is what its reservations hold (open) or charged (settled). acc_reserve_key checks the
 * limit with the key's row locked (so two reservations through one key cannot both pass), then reserves with
 * acc_reserve unchanged, in the same transaction.
 */
export const API_KEY_LIMITS_UP = `
CREATE TABLE api_keys (
  id text PRIMARY KEY,
  user_id text NOT NULL,
  credit_limit bigint CHECK (credit_limit IS NULL OR credit_limit >= 0),
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_keys_user_idx ON api_keys (user_id);
ALTER TABLE reservations ADD COLUMN api_key_id text REFERENCES api_keys (id);
CREATE INDEX reservations_api_key_idx ON reservations (api_key_id) WHERE api_key_id IS NOT NULL;

-- credits a key has used: the hold of its open reservations (or more, if already charged beyond it), the charge of settled ones
CREATE FUNCTION acc_key_spend(p_key text) RETURNS bigint LANGUAGE sql STABLE AS $$
  SELECT coalesce(sum(CASE WHEN status = 'open' THEN greatest(reserved, charged) ELSE charged END), 0)::bigint
    FROM reservations WHERE api_key_id = p_key
$$;

CREATE FUNCTION acc_reserve_key(p_id uuid, p_user text, p_username text, p_email text, p_role text,
                                p_session text, p_model text, p_input_tokens integer, p_max_output_tokens integer,
                                p_ttl_seconds integer, p_key text)
RETURNS TABLE (reservation reservations, available_after bigint) LANGUAGE plpgsql AS $$
DECLARE
  v_key api_keys;
  v_price record;
  v_amount bigint;
  v_spent bigint;
  r record;
BEGIN
  -- the key's row is the lock that serialises its reservations (nothing else locks it: no deadlock with acc_settle)
  SELECT * INTO v_key FROM api_keys WHERE id = p_key FOR UPDATE;
  IF NOT FOUND THEN RAISE EXCEPTION 'api key' USING ERRCODE = 'P0404'; END IF;
  IF v_key.user_id <> p_user THEN RAISE EXCEPTION 'api key belongs to another user' USING ERRCODE = 'P0403'; END IF;
  IF v_key.credit_limit IS NOT NULL AND NOT EXISTS (SELECT 1 FROM reservations WHERE id = p_id) THEN
    SELECT input_per_1k, output_per_1k INTO v_price FROM model_prices WHERE model_id = p_model;
    IF NOT FOUND THEN RAISE EXCEPTION 'model' USING ERRCODE = 'P0404'; END IF;
    v_amount := ceil(p_input_tokens::numeric * v_price.input_per_1k / 1000)
              + ceil(p_max_output_tokens::numeric * v_price.output_per_1k / 1000);
    v_spent := acc_key_spend(p_key);
    IF v_spent + v_amount > v_key.credit_limit THEN
      RAISE EXCEPTION 'api key credit limit reached' USING ERRCODE = 'P0402',
        DETAIL = greatest(v_key.credit_limit - v_spent, 0)::text, HINT = 'api-key-limit';
    END IF;
  END IF;
  SELECT * INTO r FROM acc_reserve(p_id, p_user, p_username, p_email, p_role, p_session, p_model, p_input_tokens,
                                   p_max_output_tokens, p_ttl_seconds);
  UPDATE reservations SET api_key_id = p_key WHERE id = p_id AND api_key_id IS NULL;
  SELECT * INTO reservation FROM reservations WHERE id = p_id;
  available_after := r.available_after;
  RETURN NEXT;
END $$;
`;

export const apiKeyLimits006: Migration = {
  name: '006-api-key-limits',
  async up(db) {
    await db.raw(API_KEY_LIMITS_UP);
  },
  async down(db) {
    await db.raw('DROP FUNCTION IF EXISTS acc_reserve_key(uuid, text, text, text, text, text, text, integer, integer, integer, text)');
    await db.raw('DROP FUNCTION IF EXISTS acc_key_spend(text)');
    await db.raw('ALTER TABLE reservations DROP COLUMN IF EXISTS api_key_id');
    await db.raw('DROP TABLE IF EXISTS api_keys');
  },
};
