import type { Knex } from 'knex';

/**
 * What watches a spend (issue 11, "the HTTP hot path"): after a spend commits, the low-balance
 * alerts (issue 13) and auto-recharge (issue 14) each read one row to learn whether this owner has
 * anything to check (a baseline or a floor; auto-recharge on with a saved card). On this machine a
 * round trip costs the app more CPU than the statement it carries, and most owners have neither,
 * so those two reads were two of the five round trips of a priced request.
 *
 * - `spend_watch(account)`: `{lowBalance, autoRecharge}`, the same two questions the checks' own
 *   pre-reads ask (src/notifications/alerts-store.ts `lowBalanceConfig`,
 *   src/recharge/auto-recharge-service.ts `afterSpend`), for the account's owner.
 * - `ledger_watched(outcome)`: a ledger function's outcome with `watch` added (when it has an
 *   account and no error). The app's ledger (`createLedger(db, { watchSpends: true })`,
 *   src/ledger/ledger-store.ts) wraps its autocommit debits and posts in it, so the answer comes
 *   back in the operation's own round trip, microseconds before its commit; a one-commit debit
 *   (requireCredits), whose transaction stays open during the work, reads `spend_watch` in its
 *   COMMIT's round trip instead. The checks skip their read when it says no; spends in a caller's
 *   transaction carry no `watch`, and the checks read as before. (Group-commit batches carry it
 *   since migration 20261130233000.)
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE FUNCTION spend_watch(p_account uuid) RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $$
    DECLARE owner uuid; lb boolean; ar boolean;
    BEGIN
      SELECT coalesce(user_id, team_id) INTO owner FROM accounts WHERE id = p_account;
      IF owner IS NULL THEN RETURN jsonb_build_object('lowBalance', false, 'autoRecharge', false); END IF;
      SELECT EXISTS (SELECT 1 FROM low_balance_state WHERE user_id = owner AND baseline_millicredits IS NOT NULL)
          OR EXISTS (SELECT 1 FROM notification_settings WHERE user_id = owner AND low_balance_floor_millicredits IS NOT NULL)
        INTO lb;
      SELECT EXISTS (SELECT 1 FROM auto_recharge_settings WHERE user_id = owner AND enabled AND payment_method_id IS NOT NULL) INTO ar;
      RETURN jsonb_build_object('lowBalance', lb, 'autoRecharge', ar);
    END $$`);
  await knex.raw(`
    CREATE FUNCTION ledger_watched(p_outcome jsonb) RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $$
    DECLARE acc uuid;
    BEGIN
      IF p_outcome \\? 'error' THEN RETURN p_outcome; END IF;
      acc := coalesce((p_outcome->'hold'->>'account_id')::uuid, (p_outcome->'transfer'->>'debit_account_id')::uuid);
      IF acc IS NULL THEN RETURN p_outcome; END IF;
      RETURN p_outcome || jsonb_build_object('watch', spend_watch(acc));
    END $$`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP FUNCTION ledger_watched(jsonb)');
  await knex.raw('DROP FUNCTION spend_watch(uuid)');
}
