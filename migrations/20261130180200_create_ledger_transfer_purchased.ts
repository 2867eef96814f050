import type { Knex } from 'knex';

/**
 * `ledger_transfer_purchased_op`: moves PURCHASED credits from one owned account (a user's) to
 * another (a team's pool, or another user's), for team contributions (issue 16) and gifts
 * (issue 17). Only lots with source `purchase` are drawn — never bonus, sign-up, promo, trial or
 * subscription credits — in spending order (soonest expiry first, then oldest), and each drawn
 * part arrives as its own lot (source = the transfer's kind) keeping the expiry of the lot it
 * came from. One transfer per drawn lot (`<id>:1`, `<id>:2`, …; each lot has its own transfer, as
 * `grant_has_matching_lot` requires), all between the two accounts, in one call under both
 * account locks (taken in owner-id order, so two opposite transfers cannot deadlock).
 *
 * Refusals are values, as in the other ledger functions: TL402 `{required, available}` when the
 * sender's unheld, unexpired purchased credits (capped by its available balance, debt counted)
 * are short; TL409 when the id was used with other parameters; TL413 past the recipient's limit.
 * Replaying the id returns the first result (`replayed: true`) and changes nothing.
 *
 * `transfers.kind` gains `contribution` (a member's credits into a team's pool) and `gift`.
 */

const MAX = '9007199254740991';
const KINDS_BEFORE = `'purchase', 'signup_bonus', 'bonus', 'subscription_grant', 'adjustment', 'usage', 'refund_clawback', 'expiry'`;

export async function up(knex: Knex): Promise<void> {
  // Add to whatever kinds the constraint allows now (other migrations may have added theirs).
  const { rows } = await knex.raw(
    `SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conname = 'transfers_kind_check' AND conrelid = 'transfers'::regclass`,
  );
  const current = [...String(rows[0]?.def ?? '').matchAll(/'([a-z_]+)'/g)].map((m) => m[1]!);
  const kinds = [...new Set([...(current.length > 0 ? current : KINDS_BEFORE.replace(/'/g, '').split(', ')), 'contribution', 'gift'])];
  await knex.raw(`ALTER TABLE transfers DROP CONSTRAINT transfers_kind_check`);
  await knex.raw(`ALTER TABLE transfers ADD CONSTRAINT transfers_kind_check CHECK (kind IN (${kinds.map((k) => `'${k}'`).join(', ')}))`);

  await knex.raw(`
    CREATE FUNCTION ledger_transfer_purchased_op(p_transfer_id text, p_from uuid, p_to uuid, p_amount bigint, p_kind text,
                                                 p_now timestamptz, p_reason text, p_actor text, p_ref_type text, p_ref_id text)
    RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $$
    DECLARE src accounts; dst accounts; have bigint; left_ bigint; take bigint; lot record; n integer := 0;
            t transfers; l lots; src_bal bigint; dst_bal bigint; out_t jsonb[] := '{}'; out_l jsonb[] := '{}'; total bigint;
    BEGIN
      IF p_from::text < p_to::text THEN
        src := ledger_user_account(p_from); dst := ledger_user_account(p_to);
      ELSE
        dst := ledger_user_account(p_to); src := ledger_user_account(p_from);
      END IF;
      -- A replay (or a concurrent same-id call that committed first): answer with what it did.
      -- Its transfers are <id>:1, <id>:2, … (each read by its primary key).
      total := 0;
      LOOP
        SELECT * INTO t FROM transfers WHERE id = p_transfer_id || ':' || (n + 1);
        EXIT WHEN NOT FOUND;
        IF t.debit_account_id <> src.id OR t.credit_account_id <> dst.id OR t.kind <> p_kind
           OR t.reference_type IS DISTINCT FROM p_ref_type OR t.reference_id IS DISTINCT FROM p_ref_id THEN
          RETURN jsonb_build_object('error', 'TL409', 'what', 'Transfer', 'id', p_transfer_id);
        END IF;
        SELECT * INTO l FROM lots WHERE transfer_id = t.id;
        out_t := out_t || to_jsonb(t);
        out_l := out_l || to_jsonb(l);
        total := total + t.amount;
        n := n + 1;
      END LOOP;
      IF n > 0 THEN
        IF total <> p_amount THEN RETURN jsonb_build_object('error', 'TL409', 'what', 'Transfer', 'id', p_transfer_id); END IF;
        RETURN jsonb_build_object('transfers', to_jsonb(out_t), 'lots', to_jsonb(out_l), 'replayed', true);
      END IF;
      SELECT COALESCE(SUM(remaining - held), 0) INTO have FROM lots
       WHERE account_id = src.id AND source = 'purchase' AND spendable AND (expires_at IS NULL OR expires_at > p_now);
      have := least(have, ledger_available(src.id, src.debt, p_now));
      IF have < p_amount THEN
        RETURN jsonb_build_object('error', 'TL402', 'required', p_amount, 'available', greatest(have, 0));
      END IF;
      IF dst.credits_posted + p_amount > ${MAX} THEN
        RETURN jsonb_build_object('error', 'TL413', 'limit', ${MAX}::bigint, 'credited', dst.credits_posted, 'amount', p_amount);
      END IF;
      src_bal := src.credits_posted - src.debits_posted;
      dst_bal := dst.credits_posted - dst.debits_posted;
      left_ := p_amount;
      FOR lot IN
        SELECT id, remaining - held AS free, expires_at FROM lots
         WHERE account_id = src.id AND source = 'purchase' AND spendable AND (expires_at IS NULL OR expires_at > p_now)
         ORDER BY expires_at ASC NULLS LAST, created_at ASC, id ASC
      LOOP
        take := least(left_, lot.free);
        n := n + 1;
        src_bal := src_bal - take;
        dst_bal := dst_bal + take;
        INSERT INTO transfers (id, debit_account_id, credit_account_id, amount, kind, reason, actor, reference_type, reference_id,
                               debit_balance_after, credit_balance_after)
        VALUES (p_transfer_id || ':' || n, src.id, dst.id, take, p_kind, p_reason, p_actor, p_ref_type, p_ref_id, src_bal, dst_bal)
        RETURNING * INTO t;
        UPDATE lots SET remaining = remaining - take WHERE id = lot.id;
        INSERT INTO transfer_allocations (transfer_id, lot_id, amount) VALUES (t.id, lot.id, take);
        INSERT INTO lots (account_id, transfer_id, source, amount, remaining, expires_at, created_at)
        VALUES (dst.id, t.id, p_kind, take, take, lot.expires_at, clock_timestamp()) RETURNING * INTO l;
        out_t := out_t || to_jsonb(t);
        out_l := out_l || to_jsonb(l);
        left_ := left_ - take;
        EXIT WHEN left_ = 0;
      END LOOP;
      IF left_ <> 0 THEN RAISE EXCEPTION 'ledger: lots do not cover a checked amount'; END IF;
      UPDATE accounts SET debits_posted = debits_posted + p_amount WHERE id = src.id;
      UPDATE accounts SET credits_posted = credits_posted + p_amount WHERE id = dst.id;
      RETURN jsonb_build_object('transfers', to_jsonb(out_t), 'lots', to_jsonb(out_l), 'replayed', false);
    END $$`);
}

export async function down(knex: Knex): Promise<void> {
  // The ledger is append-only: with contributions or gifts recorded, rolling back would have to
  // delete transfers (and break every balance built on them), so it refuses instead.
  const { rows: used } = await knex.raw(`SELECT count(*)::int AS n FROM transfers WHERE kind IN ('contribution', 'gift')`);
  if (used[0].n > 0) throw new Error(`cannot roll back: ${used[0].n} contribution or gift transfers exist (transfers are never deleted)`);
  await knex.raw(`DROP FUNCTION ledger_transfer_purchased_op(text, uuid, uuid, bigint, text, timestamptz, text, text, text, text)`);
  const { rows } = await knex.raw(
    `SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conname = 'transfers_kind_check' AND conrelid = 'transfers'::regclass`,
  );
  const kinds = [...String(rows[0]?.def ?? '').matchAll(/'([a-z_]+)'/g)].map((m) => m[1]!).filter((k) => k !== 'contribution' && k !== 'gift');
  await knex.raw(`ALTER TABLE transfers DROP CONSTRAINT transfers_kind_check`);
  await knex.raw(`ALTER TABLE transfers ADD CONSTRAINT transfers_kind_check CHECK (kind IN (${kinds.map((k) => `'${k}'`).join(', ')}))`);
}
