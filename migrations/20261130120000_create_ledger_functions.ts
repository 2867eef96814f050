import type { Knex } from 'knex';

/**
 * The ledger's operations as PL/pgSQL functions: each grant, reserve, post, void, debit, clawback
 * and lot expiry is ONE statement (one round trip) instead of 7–10 statements that each wait for
 * Node while the account row is locked. The rules are the ones src/ledger/ledger-service.ts had in
 * TypeScript (DESIGN.md, "The ledger"); the TypeScript API calls these and keeps its types and errors.
 *
 * - Every function is VOLATILE: under READ COMMITTED each statement inside takes a fresh snapshot,
 *   so everything read after the account lock (`FOR UPDATE`) sees what the previous lock holder
 *   committed. (A single CTE would read the lots in the snapshot taken before the lock wait.)
 * - Domain refusals are returned as values, `{"error": "TL402", …}`, never raised, so a caller's
 *   transaction stays usable after a refusal (the task runner marks a task failed in the same
 *   transaction after a 409) and `ledger_batch` can apply many operations of one account in one
 *   transaction, each with its own outcome, without savepoints. `ledger_raise(result)` (used when an
 *   operation runs alone, in autocommit) turns such a value into an error with that custom SQLSTATE
 *   (class `TL`) and the details as JSON in DETAIL; src/ledger/ledger-service.ts maps both forms:
 *     TL402 not enough credits · TL404 no such hold/lot · TL409 idempotency conflict ·
 *     TL410 hold not active (or over-post, or clawback above the lot) · TL413 balance limit.
 * - The clock is a parameter (`p_now`) wherever expiry is decided, so tests inject time.
 * - Ids are idempotency keys. The insert of a new id is tried first (`ON CONFLICT DO NOTHING`, which
 *   waits for a concurrent insert of the same id to commit); when the id exists, the committed row
 *   is read and the answer is a replay or a conflict, never a unique violation (so one id sent for
 *   two users at once is one success and one conflict, issue 9 defect 6).
 *
 * HOT updates: the lot indexes no longer name `remaining`/`held` in their predicates (every reserve
 * and post changed them, so no lot update was HOT). Stored generated flags `spendable`
 * (remaining > held) and `open` (remaining > 0) carry the predicates instead; PostgreSQL compares
 * old and new values of indexed columns, so an update is HOT unless a flag actually flips.
 * Fill factors leave room on each page for the new row versions of lots and accounts.
 */

const MAX = '9007199254740991'; // 2^53 − 1: JS numbers are exact up to there (src/ledger/credits.ts)

const FUNCTIONS = [
  'ledger_raise(jsonb)',
  'ledger_batch(jsonb, timestamptz)',
  'ledger_expire_lots_op(uuid, timestamptz)',
  'ledger_clawback_op(text, uuid, bigint, text, text, text, text)',
  'ledger_debit_op(text, uuid, bigint, text, timestamptz, text, text, text, text)',
  'ledger_void_op(text, text, text)',
  'ledger_post_op(text, bigint, text, text)',
  'ledger_reserve_op(text, uuid, bigint, timestamptz, bigint, text, text, text, text)',
  'ledger_grant_op(text, uuid, bigint, text, timestamptz, text, text, text, text)',
  'ledger_available(uuid, bigint, timestamptz)',
  'ledger_counterparty(text)',
  'ledger_user_account(uuid)',
];

/**
 * The call of one batched operation `o` (jsonb, as src/ledger/ledger-store.ts `applyBatch` sends it)
 * at `p_now`: NULL for an unknown `op`. Shared by every version of `ledger_batch` (this migration's
 * and 20261130233000's, whose `down` restores this one): change neither; a new version of the
 * dispatch belongs in a new migration.
 */
export const BATCH_DISPATCH = `CASE o->>'op'
          WHEN 'reserve' THEN ledger_reserve_op(o->>'id', (o->>'userId')::uuid, (o->>'amount')::bigint, p_now, (o->>'timeoutMs')::bigint,
                                                o->>'reason', o->>'actor', o->>'refType', o->>'refId')
          WHEN 'post' THEN ledger_post_op(o->>'id', (o->>'amount')::bigint, o->>'actor', o->>'reason')
          WHEN 'void' THEN ledger_void_op(o->>'id', o->>'actor', 'voided')
          WHEN 'debit' THEN ledger_debit_op(o->>'id', (o->>'userId')::uuid, (o->>'amount')::bigint, o->>'kind', p_now,
                                            o->>'reason', o->>'actor', o->>'refType', o->>'refId')
          WHEN 'grant' THEN ledger_grant_op(o->>'id', (o->>'userId')::uuid, (o->>'amount')::bigint, o->>'kind', (o->>'expiresAt')::timestamptz,
                                            o->>'reason', o->>'actor', o->>'refType', o->>'refId')
        END`;

/** `ledger_batch` as this migration creates it: the operations of ONE account, in order, one outcome each. */
export const LEDGER_BATCH_V1 = `
    CREATE OR REPLACE FUNCTION ledger_batch(p_ops jsonb, p_now timestamptz) RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $$
    DECLARE o jsonb; r jsonb; out_ jsonb[] := '{}';
    BEGIN
      FOR o IN SELECT value FROM jsonb_array_elements(p_ops) LOOP
        r := ${BATCH_DISPATCH};
        IF r IS NULL THEN RAISE EXCEPTION 'ledger_batch: unknown operation %', o->>'op'; END IF;
        out_ := out_ || r;
      END LOOP;
      RETURN to_jsonb(out_);
    END $$`;

export async function up(knex: Knex): Promise<void> {
  // ---- HOT-friendly lots ----
  await knex.raw(`
    ALTER TABLE lots
      ADD COLUMN spendable boolean GENERATED ALWAYS AS (remaining > held) STORED,
      ADD COLUMN open boolean GENERATED ALWAYS AS (remaining > 0) STORED`);
  await knex.raw(`DROP INDEX lots_open`);
  await knex.raw(`DROP INDEX lots_expiring`);
  await knex.raw(`CREATE INDEX lots_open ON lots (account_id) WHERE open`);
  await knex.raw(`CREATE INDEX lots_spendable ON lots (account_id, expires_at, created_at) WHERE spendable`);
  await knex.raw(`CREATE INDEX lots_expiring ON lots (expires_at) WHERE spendable AND expires_at IS NOT NULL`);
  await knex.raw(`ALTER TABLE lots SET (fillfactor = 70)`);
  await knex.raw(`ALTER TABLE accounts SET (fillfactor = 70)`);
  await knex.raw(`ALTER TABLE holds SET (fillfactor = 90)`);
  // Holds without a reference (a priced route's) need no entry in the reference index.
  await knex.raw(`DROP INDEX holds_reference`);
  await knex.raw(`CREATE INDEX holds_reference ON holds (reference_type, reference_id) WHERE reference_id IS NOT NULL`);

  // ---- helpers ----
  await knex.raw(`
    CREATE FUNCTION ledger_user_account(p_user uuid) RETURNS accounts LANGUAGE plpgsql VOLATILE AS $$
    DECLARE a accounts;
    BEGIN
      SELECT * INTO a FROM accounts WHERE user_id = p_user FOR UPDATE;
      IF NOT FOUND THEN
        INSERT INTO accounts (user_id) VALUES (p_user) ON CONFLICT (user_id) DO NOTHING;
        SELECT * INTO a FROM accounts WHERE user_id = p_user FOR UPDATE;
      END IF;
      RETURN a;
    END $$`);
  // The system account on the other side of each kind (COUNTERPARTY in ledger-types.ts). PL/pgSQL,
  // not SQL, for these helpers: PL/pgSQL keeps its plans per session, a SQL function called from
  // PL/pgSQL is planned again on every call.
  await knex.raw(`
    CREATE FUNCTION ledger_counterparty(p_kind text) RETURNS uuid LANGUAGE plpgsql STABLE AS $$
    DECLARE r uuid;
    BEGIN
      SELECT id INTO r FROM accounts WHERE code = CASE p_kind
        WHEN 'purchase' THEN 'sales' WHEN 'signup_bonus' THEN 'promotions' WHEN 'bonus' THEN 'promotions'
        WHEN 'subscription_grant' THEN 'subscriptions' WHEN 'adjustment' THEN 'adjustments'
        WHEN 'usage' THEN 'usage' WHEN 'refund_clawback' THEN 'refunds' WHEN 'expiry' THEN 'expired' END;
      RETURN r;
    END $$`);
  // Unheld credits of unexpired lots at p_now, minus debt. The caller holds the account lock.
  await knex.raw(`
    CREATE FUNCTION ledger_available(p_account uuid, p_debt bigint, p_now timestamptz) RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
    DECLARE r bigint;
    BEGIN
      SELECT COALESCE(SUM(remaining - held), 0) - p_debt INTO r FROM lots
       WHERE account_id = p_account AND spendable AND (expires_at IS NULL OR expires_at > p_now);
      RETURN r;
    END $$`);

  // ---- grant ----
  await knex.raw(`
    CREATE FUNCTION ledger_grant_op(p_transfer_id text, p_user_id uuid, p_amount bigint, p_kind text, p_expires_at timestamptz,
                                    p_reason text, p_actor text, p_ref_type text, p_ref_id text)
    RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $$
    DECLARE a accounts; t transfers; l lots; c record; repay bigint; part bigint;
    BEGIN
      a := ledger_user_account(p_user_id);
      -- The common case first: a new id. A replay meets the id in ON CONFLICT and is answered below.
      IF a.credits_posted + p_amount <= ${MAX} THEN
        INSERT INTO transfers (id, debit_account_id, credit_account_id, amount, kind, reason, actor, reference_type, reference_id, credit_balance_after)
        VALUES (p_transfer_id, ledger_counterparty(p_kind), a.id, p_amount, p_kind, p_reason, p_actor, p_ref_type, p_ref_id,
                a.credits_posted + p_amount - a.debits_posted)
        ON CONFLICT (id) DO NOTHING RETURNING * INTO t;
        IF FOUND THEN
          UPDATE accounts SET credits_posted = credits_posted + p_amount WHERE id = a.id;
          INSERT INTO lots (account_id, transfer_id, source, amount, remaining, expires_at, created_at)
          VALUES (a.id, t.id, p_kind, p_amount, p_amount, p_expires_at, clock_timestamp()) RETURNING * INTO l;
          IF a.debt > 0 THEN
            -- Repay refund debt from the new lot: the clawback already moved the credits, so this
            -- only records which lot finally covered it (balance unchanged).
            repay := least(a.debt, p_amount);
            UPDATE lots SET remaining = remaining - repay WHERE id = l.id RETURNING * INTO l;
            UPDATE accounts SET debt = debt - repay WHERE id = a.id;
            FOR c IN
              SELECT ct.id, ct.amount - COALESCE(SUM(x.amount), 0) AS outstanding
                FROM transfers ct LEFT JOIN transfer_allocations x ON x.transfer_id = ct.id
               WHERE ct.debit_account_id = a.id AND ct.kind = 'refund_clawback'
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
          RETURN jsonb_build_object('transfer', to_jsonb(t), 'lot', to_jsonb(l), 'replayed', false);
        END IF;
      END IF;
      -- A replay, or a concurrent request with this id that committed first (on another account's lock).
      SELECT * INTO t FROM transfers WHERE id = p_transfer_id;
      IF NOT FOUND THEN
        RETURN jsonb_build_object('error', 'TL413', 'limit', ${MAX}::bigint, 'credited', a.credits_posted, 'amount', p_amount);
      END IF;
      SELECT * INTO l FROM lots WHERE transfer_id = t.id;
      IF NOT FOUND OR t.kind <> p_kind OR t.amount <> p_amount OR t.credit_account_id <> a.id
         OR l.expires_at IS DISTINCT FROM p_expires_at
         OR t.reference_type IS DISTINCT FROM p_ref_type OR t.reference_id IS DISTINCT FROM p_ref_id THEN
        RETURN jsonb_build_object('error', 'TL409', 'what', 'Transfer', 'id', p_transfer_id);
      END IF;
      RETURN jsonb_build_object('transfer', to_jsonb(t), 'lot', to_jsonb(l), 'replayed', true);
    END $$`);

  // ---- reserve ----
  await knex.raw(`
    CREATE FUNCTION ledger_reserve_op(p_hold_id text, p_user_id uuid, p_amount bigint, p_now timestamptz, p_timeout_ms bigint,
                                      p_reason text, p_actor text, p_ref_type text, p_ref_id text)
    RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $$
    DECLARE a accounts; h holds; have bigint; left_ bigint; take bigint; lot record;
    BEGIN
      a := ledger_user_account(p_user_id);
      have := ledger_available(a.id, a.debt, p_now);
      -- The common case first: a new id. A replay meets the id in ON CONFLICT and is answered below.
      IF have >= p_amount THEN
        INSERT INTO holds (id, account_id, amount, expires_at, reason, actor, reference_type, reference_id, created_at)
        VALUES (p_hold_id, a.id, p_amount, p_now + p_timeout_ms * interval '1 millisecond', p_reason, p_actor, p_ref_type, p_ref_id, clock_timestamp())
        ON CONFLICT (id) DO NOTHING RETURNING * INTO h;
        IF FOUND THEN
          left_ := p_amount;
          FOR lot IN
            SELECT id, remaining - held AS free FROM lots
             WHERE account_id = a.id AND spendable AND (expires_at IS NULL OR expires_at > p_now)
             ORDER BY expires_at ASC NULLS LAST, created_at ASC, id ASC
          LOOP
            take := least(left_, lot.free);
            UPDATE lots SET held = held + take WHERE id = lot.id;
            INSERT INTO hold_lots (hold_id, lot_id, amount) VALUES (h.id, lot.id, take);
            left_ := left_ - take;
            EXIT WHEN left_ = 0;
          END LOOP;
          IF left_ <> 0 THEN RAISE EXCEPTION 'ledger: lots do not cover a checked amount'; END IF;
          UPDATE accounts SET debits_pending = debits_pending + p_amount WHERE id = a.id;
          RETURN jsonb_build_object('hold', to_jsonb(h), 'replayed', false);
        END IF;
      END IF;
      SELECT * INTO h FROM holds WHERE id = p_hold_id;
      IF NOT FOUND THEN
        RETURN jsonb_build_object('error', 'TL402', 'required', p_amount, 'available', have);
      END IF;
      IF h.account_id <> a.id OR h.amount <> p_amount THEN
        RETURN jsonb_build_object('error', 'TL409', 'what', 'Hold', 'id', p_hold_id);
      END IF;
      RETURN jsonb_build_object('hold', to_jsonb(h), 'replayed', true);
    END $$`);

  // ---- post ----
  await knex.raw(`
    CREATE FUNCTION ledger_post_op(p_hold_id text, p_amount bigint, p_actor text, p_reason text)
    RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $$
    DECLARE a accounts; h holds; t transfers; left_ bigint; take bigint; hl record; bal bigint;
    BEGIN
      -- The account lock serializes every change to its holds, so the hold is read after it.
      SELECT acc.* INTO a FROM accounts acc WHERE acc.id = (SELECT account_id FROM holds WHERE id = p_hold_id) FOR UPDATE;
      IF NOT FOUND THEN RETURN jsonb_build_object('error', 'TL404', 'what', 'hold'); END IF;
      SELECT * INTO h FROM holds WHERE id = p_hold_id;
      IF h.status = 'posted' THEN
        IF h.posted_amount <> p_amount THEN
          RETURN jsonb_build_object('error', 'TL410', 'id', h.id, 'status', h.status,
                                    'message', format('Hold %s was already posted with a different amount.', h.id));
        END IF;
        SELECT * INTO t FROM transfers WHERE id = h.transfer_id;
        RETURN jsonb_build_object('hold', to_jsonb(h), 'transfer', CASE WHEN h.transfer_id IS NULL THEN NULL ELSE to_jsonb(t) END);
      END IF;
      IF h.status <> 'active' THEN RETURN jsonb_build_object('error', 'TL410', 'id', h.id, 'status', h.status); END IF;
      IF p_amount > h.amount THEN
        RETURN jsonb_build_object('error', 'TL410', 'id', h.id, 'status', h.status,
                                  'message', format('Cannot post %s millicredits: the hold is for %s.', p_amount, h.amount));
      END IF;
      IF p_amount > 0 THEN
        UPDATE accounts SET debits_posted = debits_posted + p_amount, debits_pending = debits_pending - h.amount
         WHERE id = a.id RETURNING credits_posted - debits_posted INTO bal;
        INSERT INTO transfers (id, debit_account_id, credit_account_id, amount, kind, reason, actor, reference_type, reference_id, hold_id, debit_balance_after)
        VALUES ('post:' || h.id, a.id, ledger_counterparty('usage'), p_amount, 'usage', COALESCE(p_reason, h.reason), p_actor,
                h.reference_type, h.reference_id, h.id, bal)
        RETURNING * INTO t;
      ELSE
        UPDATE accounts SET debits_pending = debits_pending - h.amount WHERE id = a.id;
      END IF;
      left_ := p_amount;
      FOR hl IN
        SELECT x.lot_id, x.amount FROM hold_lots x JOIN lots l ON l.id = x.lot_id
         WHERE x.hold_id = h.id ORDER BY l.expires_at ASC NULLS LAST, l.created_at ASC, l.id ASC
      LOOP
        take := least(left_, hl.amount);
        UPDATE lots SET held = held - hl.amount, remaining = remaining - take WHERE id = hl.lot_id;
        IF take > 0 THEN INSERT INTO transfer_allocations (transfer_id, lot_id, amount) VALUES (t.id, hl.lot_id, take); END IF;
        left_ := left_ - take;
      END LOOP;
      UPDATE holds SET status = 'posted', resolved_at = now(), posted_amount = p_amount,
                       transfer_id = CASE WHEN p_amount > 0 THEN t.id END
       WHERE id = h.id RETURNING * INTO h;
      RETURN jsonb_build_object('hold', to_jsonb(h), 'transfer', CASE WHEN p_amount > 0 THEN to_jsonb(t) END);
    END $$`);

  // ---- void (and expiry of a hold: p_status = 'expired') ----
  await knex.raw(`
    CREATE FUNCTION ledger_void_op(p_hold_id text, p_actor text, p_status text)
    RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $$
    DECLARE a accounts; h holds;
    BEGIN
      SELECT acc.* INTO a FROM accounts acc WHERE acc.id = (SELECT account_id FROM holds WHERE id = p_hold_id) FOR UPDATE;
      IF NOT FOUND THEN RETURN jsonb_build_object('error', 'TL404', 'what', 'hold'); END IF;
      SELECT * INTO h FROM holds WHERE id = p_hold_id;
      IF h.status IN ('voided', 'expired') THEN RETURN jsonb_build_object('hold', to_jsonb(h)); END IF;
      IF h.status = 'posted' THEN RETURN jsonb_build_object('error', 'TL410', 'id', h.id, 'status', h.status); END IF;
      UPDATE lots l SET held = l.held - x.amount FROM hold_lots x WHERE x.hold_id = h.id AND l.id = x.lot_id;
      UPDATE accounts SET debits_pending = debits_pending - h.amount WHERE id = a.id;
      UPDATE holds SET status = p_status, resolved_at = now() WHERE id = h.id RETURNING * INTO h;
      RETURN jsonb_build_object('hold', to_jsonb(h));
    END $$`);

  // ---- debit ----
  await knex.raw(`
    CREATE FUNCTION ledger_debit_op(p_transfer_id text, p_user_id uuid, p_amount bigint, p_kind text, p_now timestamptz,
                                    p_reason text, p_actor text, p_ref_type text, p_ref_id text)
    RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $$
    DECLARE a accounts; t transfers; have bigint; left_ bigint; take bigint; lot record;
    BEGIN
      a := ledger_user_account(p_user_id);
      have := ledger_available(a.id, a.debt, p_now);
      -- The common case first: a new id. A replay meets the id in ON CONFLICT and is answered below.
      IF have >= p_amount THEN
        INSERT INTO transfers (id, debit_account_id, credit_account_id, amount, kind, reason, actor, reference_type, reference_id, debit_balance_after)
        VALUES (p_transfer_id, a.id, ledger_counterparty(p_kind), p_amount, p_kind, p_reason, p_actor, p_ref_type, p_ref_id,
                a.credits_posted - a.debits_posted - p_amount)
        ON CONFLICT (id) DO NOTHING RETURNING * INTO t;
        IF FOUND THEN
          left_ := p_amount;
          FOR lot IN
            SELECT id, remaining - held AS free FROM lots
             WHERE account_id = a.id AND spendable AND (expires_at IS NULL OR expires_at > p_now)
             ORDER BY expires_at ASC NULLS LAST, created_at ASC, id ASC
          LOOP
            take := least(left_, lot.free);
            UPDATE lots SET remaining = remaining - take WHERE id = lot.id;
            INSERT INTO transfer_allocations (transfer_id, lot_id, amount) VALUES (t.id, lot.id, take);
            left_ := left_ - take;
            EXIT WHEN left_ = 0;
          END LOOP;
          IF left_ <> 0 THEN RAISE EXCEPTION 'ledger: lots do not cover a checked amount'; END IF;
          UPDATE accounts SET debits_posted = debits_posted + p_amount WHERE id = a.id;
          RETURN jsonb_build_object('transfer', to_jsonb(t), 'replayed', false);
        END IF;
      END IF;
      SELECT * INTO t FROM transfers WHERE id = p_transfer_id;
      IF NOT FOUND THEN
        RETURN jsonb_build_object('error', 'TL402', 'required', p_amount, 'available', have);
      END IF;
      IF t.kind <> p_kind OR t.amount <> p_amount OR t.debit_account_id <> a.id
         OR t.reference_type IS DISTINCT FROM p_ref_type OR t.reference_id IS DISTINCT FROM p_ref_id THEN
        RETURN jsonb_build_object('error', 'TL409', 'what', 'Transfer', 'id', p_transfer_id);
      END IF;
      RETURN jsonb_build_object('transfer', to_jsonb(t), 'replayed', true);
    END $$`);

  // ---- clawback ----
  await knex.raw(`
    CREATE FUNCTION ledger_clawback_op(p_transfer_id text, p_lot_id uuid, p_amount bigint, p_reason text, p_actor text,
                                       p_ref_type text, p_ref_id text)
    RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $$
    DECLARE a accounts; t transfers; l lots; recovered bigint; debt_ bigint;
    BEGIN
      SELECT acc.* INTO a FROM accounts acc WHERE acc.id = (SELECT account_id FROM lots WHERE id = p_lot_id) FOR UPDATE;
      IF NOT FOUND THEN RETURN jsonb_build_object('error', 'TL404', 'what', 'lot'); END IF;
      SELECT * INTO t FROM transfers WHERE id = p_transfer_id;
      IF NOT FOUND THEN
        SELECT * INTO l FROM lots WHERE id = p_lot_id;
        IF p_amount > l.amount THEN
          RETURN jsonb_build_object('error', 'TL410', 'id', l.id, 'status', 'lot',
                                    'message', format('Cannot claw back %s millicredits from a lot of %s.', p_amount, l.amount));
        END IF;
        recovered := least(p_amount, l.remaining - l.held);
        debt_ := p_amount - recovered;
        INSERT INTO transfers (id, debit_account_id, credit_account_id, amount, kind, reason, actor, reference_type, reference_id, debit_balance_after)
        VALUES (p_transfer_id, a.id, ledger_counterparty('refund_clawback'), p_amount, 'refund_clawback', p_reason, p_actor,
                p_ref_type, p_ref_id, a.credits_posted - a.debits_posted - p_amount)
        ON CONFLICT (id) DO NOTHING RETURNING * INTO t;
        IF FOUND THEN
          IF recovered > 0 THEN
            UPDATE lots SET remaining = remaining - recovered WHERE id = l.id;
            INSERT INTO transfer_allocations (transfer_id, lot_id, amount) VALUES (t.id, l.id, recovered);
          END IF;
          UPDATE accounts SET debits_posted = debits_posted + p_amount, debt = debt + debt_ WHERE id = a.id;
          RETURN jsonb_build_object('transfer', to_jsonb(t), 'recovered', recovered, 'debt', debt_, 'replayed', false);
        END IF;
        SELECT * INTO t FROM transfers WHERE id = p_transfer_id;
      END IF;
      IF t.kind <> 'refund_clawback' OR t.amount <> p_amount OR t.debit_account_id <> a.id THEN
        RETURN jsonb_build_object('error', 'TL409', 'what', 'Transfer', 'id', p_transfer_id);
      END IF;
      SELECT COALESCE(SUM(amount), 0) INTO recovered FROM transfer_allocations WHERE transfer_id = t.id AND lot_id = p_lot_id;
      RETURN jsonb_build_object('transfer', to_jsonb(t), 'recovered', recovered, 'debt', t.amount - recovered, 'replayed', true);
    END $$`);

  // ---- expiry of an account's lots (the sweeper calls it per account) ----
  await knex.raw(`
    CREATE FUNCTION ledger_expire_lots_op(p_account_id uuid, p_now timestamptz)
    RETURNS integer LANGUAGE plpgsql VOLATILE AS $$
    DECLARE l record; amt bigint; bal bigint; tid text; n integer := 0;
    BEGIN
      PERFORM 1 FROM accounts WHERE id = p_account_id FOR UPDATE;
      FOR l IN
        SELECT id, source, remaining, held FROM lots
         WHERE account_id = p_account_id AND expires_at <= p_now AND spendable ORDER BY expires_at, id
      LOOP
        amt := l.remaining - l.held;
        UPDATE accounts SET debits_posted = debits_posted + amt WHERE id = p_account_id RETURNING credits_posted - debits_posted INTO bal;
        tid := 'expiry:' || l.id || ':' || l.remaining;
        INSERT INTO transfers (id, debit_account_id, credit_account_id, amount, kind, reason, actor, reference_type, reference_id, debit_balance_after)
        VALUES (tid, p_account_id, ledger_counterparty('expiry'), amt, 'expiry', l.source || ' credits expired', 'system', 'lot', l.id::text, bal);
        UPDATE lots SET remaining = remaining - amt WHERE id = l.id;
        INSERT INTO transfer_allocations (transfer_id, lot_id, amount) VALUES (tid, l.id, amt);
        n := n + 1;
      END LOOP;
      RETURN n;
    END $$`);

  // ---- group commit: many operations of one account in one transaction, one outcome each ----
  await knex.raw(LEDGER_BATCH_V1);

  // A refusal returned as a value, raised with its own SQLSTATE (class TL) and the details as JSON.
  // (IMMUTABLE is harmless here: its argument is always a VOLATILE ledger call, never a constant the
  // planner could fold.)
  await knex.raw(`
    CREATE FUNCTION ledger_raise(r jsonb) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
    BEGIN
      IF r->>'error' IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = r->>'error', MESSAGE = 'ledger refused: ' || (r->>'error'), DETAIL = r::text;
      END IF;
      RETURN r;
    END $$`);
}

export async function down(knex: Knex): Promise<void> {
  for (const fn of FUNCTIONS) await knex.raw(`DROP FUNCTION ${fn}`);
  await knex.raw(`DROP INDEX holds_reference`);
  await knex.raw(`CREATE INDEX holds_reference ON holds (reference_type, reference_id)`);
  await knex.raw(`ALTER TABLE holds RESET (fillfactor)`);
  await knex.raw(`ALTER TABLE accounts RESET (fillfactor)`);
  await knex.raw(`ALTER TABLE lots RESET (fillfactor)`);
  await knex.raw(`DROP INDEX lots_expiring`);
  await knex.raw(`DROP INDEX lots_spendable`);
  await knex.raw(`DROP INDEX lots_open`);
  await knex.raw(`ALTER TABLE lots DROP COLUMN open, DROP COLUMN spendable`);
  await knex.raw(`CREATE INDEX lots_open ON lots (account_id, expires_at, created_at) WHERE remaining > 0`);
  await knex.raw(`CREATE INDEX lots_expiring ON lots (expires_at) WHERE remaining > held AND expires_at IS NOT NULL`);
}
