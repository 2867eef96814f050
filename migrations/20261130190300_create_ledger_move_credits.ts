import type { Knex } from 'knex';

/**
 * `growth_move_credits_op`: moves credits from one owned account to another (or, with no
 * recipient, to the system account of the kind: a gift waiting to be claimed) in ONE transfer, as
 * the other ledger functions do (migrations/20261130120000_create_ledger_functions.ts): both
 * accounts locked (in owner-id order, so two moves between the same pair cannot deadlock), the
 * sender's lots drawn in spending order (soonest expiry first, then oldest) and allocated, and the
 * recipient given ONE lot whose source is the transfer's kind and whose expiry is the SOONEST of
 * the lots drawn (never expires only when none of them does). `p_sources` limits which lots may be
 * drawn (e.g. only `purchase` credits can be given away; only `trial` credits move from a lead);
 * NULL = any. What holds earmark is never moved. The sender's debt counts: it cannot give away
 * what a refund took back. `p_amount` NULL moves all that may be drawn (0 → nothing, no transfer).
 * The transfer id is the idempotency key (replay → the first result; other parameters → TL409).
 * Refusals are returned as values like the other operations: TL402 (not enough movable credits),
 * TL409, TL413 (the recipient's balance limit).
 */
const MAX = '9007199254740991';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE FUNCTION growth_move_credits_op(p_transfer_id text, p_from uuid, p_to uuid, p_amount bigint, p_sources text[], p_kind text,
                                           p_now timestamptz, p_reason text, p_actor text, p_ref_type text, p_ref_id text)
    RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $$
    DECLARE a_from accounts; a_to accounts; to_id uuid; t transfers; l lots; have bigint; amt bigint; left_ bigint; take bigint;
            lot record; soonest timestamptz; first_ boolean := true; repay bigint; part bigint; c record;
    BEGIN
      IF p_to IS NULL THEN
        a_from := ledger_user_account(p_from);
        to_id := ledger_counterparty(p_kind);
      ELSIF p_from < p_to THEN
        a_from := ledger_user_account(p_from); a_to := ledger_user_account(p_to); to_id := a_to.id;
      ELSE
        a_to := ledger_user_account(p_to); a_from := ledger_user_account(p_from); to_id := a_to.id;
      END IF;
      SELECT * INTO t FROM transfers WHERE id = p_transfer_id;
      IF FOUND THEN
        IF t.kind <> p_kind OR t.debit_account_id <> a_from.id OR t.credit_account_id <> to_id OR (p_amount IS NOT NULL AND t.amount <> p_amount) THEN
          RETURN jsonb_build_object('error', 'TL409', 'what', 'Transfer', 'id', p_transfer_id);
        END IF;
        SELECT * INTO l FROM lots WHERE transfer_id = t.id;
        RETURN jsonb_build_object('transfer', to_jsonb(t), 'lot', CASE WHEN l.id IS NULL THEN NULL ELSE to_jsonb(l) END, 'replayed', true);
      END IF;
      SELECT COALESCE(SUM(remaining - held), 0) INTO have FROM lots
       WHERE account_id = a_from.id AND spendable AND (expires_at IS NULL OR expires_at > p_now)
         AND (p_sources IS NULL OR source = ANY (p_sources));
      have := greatest(0, least(have, ledger_available(a_from.id, a_from.debt, p_now)));
      amt := COALESCE(p_amount, have);
      IF amt = 0 AND p_amount IS NULL THEN RETURN jsonb_build_object('transfer', NULL, 'lot', NULL, 'replayed', false); END IF;
      IF amt <= 0 OR amt > have THEN RETURN jsonb_build_object('error', 'TL402', 'required', amt, 'available', have); END IF;
      IF a_to.id IS NOT NULL AND a_to.credits_posted + amt > ${MAX} THEN
        RETURN jsonb_build_object('error', 'TL413', 'limit', ${MAX}::bigint, 'credited', a_to.credits_posted, 'amount', amt);
      END IF;
      INSERT INTO transfers (id, debit_account_id, credit_account_id, amount, kind, reason, actor, reference_type, reference_id,
                             debit_balance_after, credit_balance_after)
      VALUES (p_transfer_id, a_from.id, to_id, amt, p_kind, p_reason, p_actor, p_ref_type, p_ref_id,
              a_from.credits_posted - a_from.debits_posted - amt,
              CASE WHEN a_to.id IS NULL THEN NULL ELSE a_to.credits_posted + amt - a_to.debits_posted END)
      RETURNING * INTO t;
      left_ := amt;
      FOR lot IN
        SELECT id, remaining - held AS free, expires_at FROM lots
         WHERE account_id = a_from.id AND spendable AND (expires_at IS NULL OR expires_at > p_now)
           AND (p_sources IS NULL OR source = ANY (p_sources))
         ORDER BY expires_at ASC NULLS LAST, created_at ASC, id ASC
      LOOP
        -- Spending order puts the soonest expiry first: the first lot drawn sets the new lot's expiry.
        IF first_ THEN soonest := lot.expires_at; first_ := false; END IF;
        take := least(left_, lot.free);
        UPDATE lots SET remaining = remaining - take WHERE id = lot.id;
        INSERT INTO transfer_allocations (transfer_id, lot_id, amount) VALUES (t.id, lot.id, take);
        left_ := left_ - take;
        EXIT WHEN left_ = 0;
      END LOOP;
      IF left_ <> 0 THEN RAISE EXCEPTION 'growth_move_credits_op: lots do not cover a checked amount'; END IF;
      UPDATE accounts SET debits_posted = debits_posted + amt WHERE id = a_from.id;
      IF a_to.id IS NULL THEN
        RETURN jsonb_build_object('transfer', to_jsonb(t), 'lot', NULL, 'replayed', false, 'expiresAt', soonest);
      END IF;
      UPDATE accounts SET credits_posted = credits_posted + amt WHERE id = a_to.id;
      INSERT INTO lots (account_id, transfer_id, source, amount, remaining, expires_at, created_at)
      VALUES (a_to.id, t.id, p_kind, amt, amt, soonest, clock_timestamp()) RETURNING * INTO l;
      IF a_to.debt > 0 THEN
        -- As ledger_grant_op: repay the recipient's refund debt from the new lot first.
        repay := least(a_to.debt, amt);
        UPDATE lots SET remaining = remaining - repay WHERE id = l.id RETURNING * INTO l;
        UPDATE accounts SET debt = debt - repay WHERE id = a_to.id;
        FOR c IN
          SELECT ct.id, ct.amount - COALESCE(SUM(x.amount), 0) AS outstanding
            FROM transfers ct LEFT JOIN transfer_allocations x ON x.transfer_id = ct.id
           WHERE ct.debit_account_id = a_to.id AND ct.kind = 'refund_clawback'
           GROUP BY ct.id, ct.amount, ct.created_at
          HAVING ct.amount - COALESCE(SUM(x.amount), 0) > 0
           ORDER BY ct.created_at, ct.id
        LOOP
          EXIT WHEN repay = 0;
          part := least(repay, c.outstanding);
          INSERT INTO transfer_allocations (transfer_id, lot_id, amount) VALUES (c.id, l.id, part);
          repay := repay - part;
        END LOOP;
      END IF;
      RETURN jsonb_build_object('transfer', to_jsonb(t), 'lot', to_jsonb(l), 'replayed', false, 'expiresAt', soonest);
    END $$`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP FUNCTION growth_move_credits_op(text, uuid, uuid, bigint, text[], text, timestamptz, text, text, text, text)`);
}
