import type { Migration } from '@platform/shared-types/stores/postgres';
import { LATE_CHARGE_FUNCTIONS } from './005-late-charges.ts';
import { API_KEY_LIMITS_UP } from './006-api-key-limits.ts';

/**
 * A key's credit limit also caps what is charged beyond a reservation's hold (usage above the estimate, a settle
 * after an expiry): DESIGN 5b says the credits charged through a key never exceed its limit. What the key has no
 * room for is recorded as shortfall, like an empty balance. The two functions are 005's and 006's with the
 * changes below applied to their text (so the rest of each body stays one copy); the account row is the lock for
 * a key's limit in both (a key belongs to one user), taken before the key's row as in acc_reserve.
 */
function functionText(source: string, name: string): string {
  const start = source.search(new RegExp(`CREATE (OR REPLACE )?FUNCTION ${name}\\(`));
  const end = source.indexOf('END $$;', start);
  if (start < 0 || end < 0) throw new Error(`migration 007: ${name} not found`);
  return source.slice(start, end + 'END $$;'.length).replace(/^CREATE FUNCTION/, 'CREATE OR REPLACE FUNCTION');
}

function patched(text: string, from: string, to: string): string {
  if (!text.includes(from)) throw new Error(`migration 007: expected text not found: ${from}`);
  return text.replace(from, to);
}

const settleOf005 = functionText(LATE_CHARGE_FUNCTIONS, 'acc_settle');
const reserveKeyOf006 = functionText(API_KEY_LIMITS_UP, 'acc_reserve_key');

const SETTLE = patched(
  patched(settleOf005, '  v_shortfall bigint := 0;\n', '  v_shortfall bigint := 0;\n  v_key_room bigint;\n'),
  '  v_extra := least(v_cost - v_from_hold, v_available);\n',
  `  -- through a key with a limit: never beyond what the key has left (its other reservations' spend and this hold)
  IF v_res.api_key_id IS NOT NULL THEN
    SELECT k.credit_limit - (acc_key_spend(k.id) - CASE WHEN v_was_open THEN greatest(v_res.reserved, v_res.charged) ELSE v_res.charged END)
      INTO v_key_room FROM api_keys k WHERE k.id = v_res.api_key_id;
  END IF;
  v_extra := least(v_cost - v_from_hold, v_available, greatest(coalesce(v_key_room - v_from_hold, v_available), 0));
`,
);

const RESERVE_KEY = patched(
  reserveKeyOf006,
  '  SELECT * INTO v_key FROM api_keys WHERE id = p_key FOR UPDATE;\n',
  `  -- the account first (a settle through this key holds it while it reads the key's spend), then the key
  PERFORM 1 FROM accounts WHERE user_id = p_user FOR UPDATE;
  SELECT * INTO v_key FROM api_keys WHERE id = p_key FOR UPDATE;
`,
);

export const apiKeyLateCharges007: Migration = {
  name: '007-api-key-late-charges',
  async up(db) {
    await db.raw(SETTLE);
    await db.raw(RESERVE_KEY);
  },
  async down(db) {
    await db.raw(settleOf005);
    await db.raw(reserveKeyOf006);
  },
};
