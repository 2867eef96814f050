import type { Knex } from 'knex';
import { BATCH_DISPATCH, LEDGER_BATCH_V1 } from './20261130120000_create_ledger_functions.ts';

/**
 * Group commit across accounts (issue 11): `ledger_batch` may now carry the operations of several
 * accounts in one transaction, so uncontended operations share a commit too, not only those of a
 * hot account (src/ledger/group-commit.ts, "lanes").
 *
 * - Each operation's account is looked up first: the owner's (grant, reserve, debit: a user's or a
 *   team's account) or the hold's (post, void). An account that does not exist yet is created by
 *   its operation, as before.
 * - One account in the batch (every operation carries the same `key`, as the ledger queues them, or
 *   the lookup finds one account): nothing changes; its operations wait for the account lock in turn.
 * - Several accounts: the batch locks, in id order, those nobody else holds (`FOR UPDATE SKIP
 *   LOCKED`) and never waits for the others. The operations of an account locked elsewhere (an
 *   open one-commit debit, another process's batch) come back as `{"deferred": true}`, applied
 *   nothing, and the caller applies them on their own (waiting as usual). So a batch never waits
 *   for an account lock while holding another: batches cannot deadlock each other, and one busy
 *   account does not stall the other accounts' operations.
 * - An operation sent with `"watch": true` (a post or a debit of the app's ledger) gets the
 *   `watch` of `ledger_watched` (migration 20261130232000), as an autocommit one does.
 * The rules of each operation are untouched: every one is still the same `ledger_*_op` function.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE OR REPLACE FUNCTION ledger_batch(p_ops jsonb, p_now timestamptz) RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $$
    DECLARE o jsonb; r jsonb; out_ jsonb[] := '{}'; accs uuid[]; locked uuid[]; several boolean; i int := 0;
    BEGIN
      IF (SELECT bool_and(e.value \\? 'key') AND count(DISTINCT e.value->>'key') = 1 FROM jsonb_array_elements(p_ops) e(value)) THEN
        several := false; -- one account (the caller's key says so): no lookup
      ELSE
        SELECT array_agg(CASE WHEN e.value->>'op' IN ('post', 'void')
                              THEN (SELECT h.account_id FROM holds h WHERE h.id = e.value->>'id')
                              ELSE (SELECT a.id FROM accounts a WHERE a.user_id = (e.value->>'userId')::uuid OR a.team_id = (e.value->>'userId')::uuid) END
                         ORDER BY e.ord)
          INTO accs FROM jsonb_array_elements(p_ops) WITH ORDINALITY e(value, ord);
        several := (SELECT count(DISTINCT x) FROM unnest(accs) x) > 1;
      END IF;
      IF several THEN
        SELECT coalesce(array_agg(s.id), '{}') INTO locked
          FROM (SELECT a.id FROM accounts a WHERE a.id = ANY(accs) ORDER BY a.id FOR UPDATE SKIP LOCKED) s;
      END IF;
      FOR o IN SELECT value FROM jsonb_array_elements(p_ops) LOOP
        i := i + 1;
        IF several AND accs[i] IS NOT NULL AND NOT (accs[i] = ANY(locked)) THEN
          out_ := out_ || '{"deferred": true}'::jsonb;
          CONTINUE;
        END IF;
        r := ${BATCH_DISPATCH};
        IF r IS NULL THEN RAISE EXCEPTION 'ledger_batch: unknown operation %', o->>'op'; END IF;
        IF (o->>'watch')::boolean THEN r := ledger_watched(r); END IF;
        out_ := out_ || r;
      END LOOP;
      RETURN to_jsonb(out_);
    END $$`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(LEDGER_BATCH_V1);
}
