import type { Knex } from 'knex';
import { BATCH_DISPATCH, LEDGER_BATCH_V1 } from './20261130120000_create_ledger_functions.ts';

/**
 * Group commit across accounts (issue 11): `ledger_batch` may now carry the operations of several
 * accounts in one transaction, so uncontended operations share a commit too, not only those of a
 * hot account (src/ledger/group-commit.ts, "lanes"). Three ways to wait for locks, chosen by the
 * caller in `"wait"` (every operation carrying the same `key`):
 *
 * - **`until-free`** (one account's own queue): as before, the operations wait for the account lock
 *   in turn.
 * - **`briefly`** (a lane's batch of one account): the same, but a lock wait longer than 50 ms
 *   (`lock_timeout`, this transaction only) fails the batch, and the caller moves the operations to
 *   their own queue; a lane is never held up long by a lock taken elsewhere.
 * - **never** (no `wait`, or operations of several keys: a lane's batch of several accounts): each
 *   operation's account is looked up first, the owner's (grant, reserve, debit: a user's or a
 *   team's account) or the hold's (post, void). The batch locks, in id order, the accounts nobody
 *   else holds (`FOR UPDATE SKIP LOCKED`) and applies nothing for the others: the operations of an
 *   account locked elsewhere, and the grants, reserves and debits of an owner with no account yet
 *   (creating it could wait on another transaction creating it), come back `{"deferred": true}`,
 *   and the caller applies them in their own queue. So such a batch never waits for an account
 *   lock while holding another: lanes of two processes cannot deadlock on accounts, and one busy
 *   account does not hold up the other accounts of its batch. (A new id that another open
 *   transaction has just inserted still makes its insert wait; PostgreSQL detects the rare
 *   deadlock that can follow, and the caller applies the batch's operations again in their own
 *   queues.)
 * - An operation sent with `"watch": true` (a post or a debit of the app's ledger) gets the
 *   `watch` of `ledger_watched` (migration 20261130232000), as an autocommit one does.
 * The rules of each operation are untouched: every one is still the same `ledger_*_op` function.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE OR REPLACE FUNCTION ledger_batch(p_ops jsonb, p_now timestamptz) RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $$
    DECLARE o jsonb; r jsonb; out_ jsonb[] := '{}'; accs uuid[]; locked uuid[]; wait_ text; nowait boolean; i int := 0;
    BEGIN
      SELECT CASE WHEN bool_and(e.value \\? 'key') AND count(DISTINCT e.value->>'key') = 1 THEN p_ops->0->>'wait' END
        INTO wait_ FROM jsonb_array_elements(p_ops) e(value);
      nowait := wait_ IS NULL;
      IF wait_ = 'briefly' THEN PERFORM set_config('lock_timeout', '50ms', true); END IF;
      IF nowait THEN
        SELECT array_agg(CASE WHEN e.value->>'op' IN ('post', 'void')
                              THEN (SELECT h.account_id FROM holds h WHERE h.id = e.value->>'id')
                              ELSE (SELECT a.id FROM accounts a WHERE a.user_id = (e.value->>'userId')::uuid OR a.team_id = (e.value->>'userId')::uuid) END
                         ORDER BY e.ord)
          INTO accs FROM jsonb_array_elements(p_ops) WITH ORDINALITY e(value, ord);
        SELECT coalesce(array_agg(s.id), '{}') INTO locked
          FROM (SELECT a.id FROM accounts a WHERE a.id = ANY(accs) ORDER BY a.id FOR UPDATE SKIP LOCKED) s;
      END IF;
      FOR o IN SELECT value FROM jsonb_array_elements(p_ops) LOOP
        i := i + 1;
        IF nowait AND (CASE WHEN accs[i] IS NULL THEN o->>'op' IN ('grant', 'reserve', 'debit') ELSE NOT (accs[i] = ANY(locked)) END) THEN
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
