import type { Knex } from 'knex';

/**
 * `ledger_expire_lot_op(lot, actor, reason)`: ends one lot now, ahead of its `expires_at`. Its
 * unheld remainder goes to the `expired` account in one `expiry` transfer, exactly as the sweeper's
 * `ledger_expire_lots_op` does for lots past their expiry (same transfer id scheme, so a lot is
 * expired at most once per remainder). Used when a period ends by an event rather than by the
 * clock: a subscription's renewal invoice (Stripe test clocks run ahead of real time).
 * Returns the millicredits expired now (0 when nothing was free).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE FUNCTION ledger_expire_lot_op(p_lot uuid, p_actor text, p_reason text)
    RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
    DECLARE l record; amt bigint; bal bigint; tid text;
    BEGIN
      SELECT account_id INTO l FROM lots WHERE id = p_lot;
      IF NOT FOUND THEN RAISE EXCEPTION 'lot % not found', p_lot USING ERRCODE = 'TL404'; END IF;
      PERFORM 1 FROM accounts WHERE id = l.account_id FOR UPDATE;
      SELECT id, account_id, source, remaining, held INTO l FROM lots WHERE id = p_lot;
      amt := l.remaining - l.held;
      IF amt <= 0 THEN RETURN 0; END IF;
      UPDATE accounts SET debits_posted = debits_posted + amt WHERE id = l.account_id RETURNING credits_posted - debits_posted INTO bal;
      tid := 'expiry:' || l.id || ':' || l.remaining;
      INSERT INTO transfers (id, debit_account_id, credit_account_id, amount, kind, reason, actor, reference_type, reference_id, debit_balance_after)
      VALUES (tid, l.account_id, ledger_counterparty('expiry'), amt, 'expiry', coalesce(p_reason, l.source || ' credits expired'), p_actor, 'lot', l.id::text, bal);
      UPDATE lots SET remaining = remaining - amt WHERE id = l.id;
      INSERT INTO transfer_allocations (transfer_id, lot_id, amount) VALUES (tid, l.id, amt);
      RETURN amt;
    END $$`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP FUNCTION ledger_expire_lot_op(uuid, text, text)`);
}
