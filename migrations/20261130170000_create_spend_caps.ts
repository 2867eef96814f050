import type { Knex } from 'knex';

/**
 * Spend caps (issue 14), enforced where the hold is placed (DESIGN.md, "Policies at the hold").
 *
 * - `spend_limits`: per user, the user's own daily / monthly caps and per-job maximum and the
 *   admin's hard caps (millicredits; NULL = none), the time zone that defines "day" and "month",
 *   and the alert thresholds (percent). The effective cap is the lower of the two (LEAST ignores NULL).
 * - `spend_charges`: what each hold (or direct usage debit) charged against the periods, stamped
 *   with the ledger clock at the reserve (`charged_at`), so an injected clock moves periods too.
 *   What a charge counts is read from its hold: the amount while active, the posted amount once
 *   posted, nothing once voided or expired. So "spent + held in the period" is one indexed sum.
 * - `spend_cap_alerts`: one row per (user, cap, period, threshold): an alert is recorded at most
 *   once per period by the unique key, and delivered by the app (`notified_at`).
 * - Policies: `ledger_hold_policies(account, amount, now)` returns NULL (allowed) or a refusal
 *   value; the reserve and usage debit call it under the account lock before anything is held.
 *   A second policy (team member budgets, API-key limits) joins by adding its call there.
 *   `ledger_reserve_op` / `ledger_debit_op` become thin wrappers around the unchanged originals
 *   (renamed `…_core`), so the ledger's own rules stay in one place.
 * - A refusal is `{error: 'TL403', cap, limit, spent, held, resetsAt}` (millicredits).
 */

const RESERVE_ARGS = 'text, uuid, bigint, timestamptz, bigint, text, text, text, text';
const DEBIT_ARGS = 'text, uuid, bigint, text, timestamptz, text, text, text, text';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('spend_limits', (t) => {
    t.uuid('user_id').primary().references('id').inTable('users').onDelete('CASCADE');
    t.bigInteger('daily_cap');
    t.bigInteger('monthly_cap');
    t.bigInteger('per_job_max');
    t.bigInteger('admin_daily_cap');
    t.bigInteger('admin_monthly_cap');
    t.bigInteger('admin_per_job_max');
    t.text('time_zone').notNullable().defaultTo('UTC');
    t.specificType('alert_thresholds', 'integer[]').notNullable().defaultTo(knex.raw(`'{50,80,100}'`));
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(`
    ALTER TABLE spend_limits
      ADD CONSTRAINT spend_limits_positive CHECK (
        coalesce(daily_cap, 1) > 0 AND coalesce(monthly_cap, 1) > 0 AND coalesce(per_job_max, 1) > 0 AND
        coalesce(admin_daily_cap, 1) > 0 AND coalesce(admin_monthly_cap, 1) > 0 AND coalesce(admin_per_job_max, 1) > 0),
      ADD CONSTRAINT spend_limits_thresholds CHECK (1 <= ALL (alert_thresholds) AND 100 >= ALL (alert_thresholds) AND cardinality(alert_thresholds) <= 10)`);

  await knex.schema.createTable('spend_charges', (t) => {
    t.text('id').primary(); // the hold id, or 'debit:' || transfer id
    t.uuid('account_id').notNullable().references('id').inTable('accounts');
    t.text('hold_id').references('id').inTable('holds');
    t.bigInteger('amount').notNullable(); // for a debit, what it took; for a hold, what it reserved
    t.timestamp('charged_at', { useTz: true }).notNullable();
  });
  await knex.raw(`ALTER TABLE spend_charges ADD CONSTRAINT spend_charges_amount CHECK (amount > 0)`);
  await knex.raw(`CREATE INDEX spend_charges_account_time ON spend_charges (account_id, charged_at)`);

  await knex.schema.createTable('spend_cap_alerts', (t) => {
    t.bigIncrements('id').primary();
    t.uuid('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.text('cap').notNullable();
    t.timestamp('period_start', { useTz: true }).notNullable();
    t.integer('threshold').notNullable();
    t.bigInteger('limit_amount').notNullable();
    t.bigInteger('used').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('notified_at', { useTz: true });
    t.unique(['user_id', 'cap', 'period_start', 'threshold']);
  });
  await knex.raw(`ALTER TABLE spend_cap_alerts ADD CONSTRAINT spend_cap_alerts_cap CHECK (cap IN ('daily', 'monthly'))`);
  await knex.raw(`CREATE INDEX spend_cap_alerts_pending ON spend_cap_alerts (id) WHERE notified_at IS NULL`);

  // Spent (posted) and held in [p_from, p_to) for an account, in millicredits.
  await knex.raw(`
    CREATE FUNCTION spend_in_period(p_account uuid, p_from timestamptz, p_to timestamptz, OUT spent bigint, OUT held bigint)
    LANGUAGE plpgsql VOLATILE AS $$
    BEGIN
      SELECT COALESCE(SUM(CASE WHEN c.hold_id IS NULL THEN c.amount WHEN h.status = 'posted' THEN h.posted_amount ELSE 0 END), 0),
             COALESCE(SUM(CASE WHEN h.status = 'active' THEN h.amount ELSE 0 END), 0)
        INTO spent, held
        FROM spend_charges c LEFT JOIN holds h ON h.id = c.hold_id
       WHERE c.account_id = p_account AND c.charged_at >= p_from AND c.charged_at < p_to;
    END $$`);

  // The spend-cap policy: NULL when p_amount fits under every cap, else the refusal.
  await knex.raw(`
    CREATE FUNCTION spend_cap_policy(p_account accounts, p_amount bigint, p_now timestamptz) RETURNS jsonb
    LANGUAGE plpgsql VOLATILE AS $$
    DECLARE s spend_limits; cap_ bigint; local_ timestamp; p_from timestamptz; p_to timestamptz; u record; kind text;
    BEGIN
      IF p_account.user_id IS NULL THEN RETURN NULL; END IF;
      SELECT * INTO s FROM spend_limits WHERE user_id = p_account.user_id;
      IF NOT FOUND THEN RETURN NULL; END IF;
      cap_ := LEAST(s.per_job_max, s.admin_per_job_max);
      IF cap_ IS NOT NULL AND p_amount > cap_ THEN
        RETURN jsonb_build_object('error', 'TL403', 'cap', 'per_job', 'limit', cap_, 'spent', 0, 'held', 0, 'resetsAt', NULL, 'amount', p_amount);
      END IF;
      local_ := p_now AT TIME ZONE s.time_zone;
      FOREACH kind IN ARRAY ARRAY['daily', 'monthly'] LOOP
        cap_ := CASE kind WHEN 'daily' THEN LEAST(s.daily_cap, s.admin_daily_cap) ELSE LEAST(s.monthly_cap, s.admin_monthly_cap) END;
        CONTINUE WHEN cap_ IS NULL;
        p_from := date_trunc(CASE kind WHEN 'daily' THEN 'day' ELSE 'month' END, local_) AT TIME ZONE s.time_zone;
        p_to := (date_trunc(CASE kind WHEN 'daily' THEN 'day' ELSE 'month' END, local_)
                 + CASE kind WHEN 'daily' THEN interval '1 day' ELSE interval '1 month' END) AT TIME ZONE s.time_zone;
        SELECT * INTO u FROM spend_in_period(p_account.id, p_from, p_to);
        IF u.spent + u.held + p_amount > cap_ THEN
          RETURN jsonb_build_object('error', 'TL403', 'cap', kind, 'limit', cap_, 'spent', u.spent, 'held', u.held,
                                    'resetsAt', p_to, 'amount', p_amount);
        END IF;
      END LOOP;
      RETURN NULL;
    END $$`);

  // Records a charge and the cap alerts it crosses (each at most once per period).
  await knex.raw(`
    CREATE FUNCTION spend_cap_record(p_account accounts, p_id text, p_hold_id text, p_amount bigint, p_now timestamptz) RETURNS void
    LANGUAGE plpgsql VOLATILE AS $$
    DECLARE s spend_limits; cap_ bigint; local_ timestamp; p_from timestamptz; p_to timestamptz; u record; kind text; pct integer;
    BEGIN
      INSERT INTO spend_charges (id, account_id, hold_id, amount, charged_at) VALUES (p_id, p_account.id, p_hold_id, p_amount, p_now)
      ON CONFLICT (id) DO NOTHING;
      IF p_account.user_id IS NULL THEN RETURN; END IF;
      SELECT * INTO s FROM spend_limits WHERE user_id = p_account.user_id;
      IF NOT FOUND THEN RETURN; END IF;
      local_ := p_now AT TIME ZONE s.time_zone;
      FOREACH kind IN ARRAY ARRAY['daily', 'monthly'] LOOP
        cap_ := CASE kind WHEN 'daily' THEN LEAST(s.daily_cap, s.admin_daily_cap) ELSE LEAST(s.monthly_cap, s.admin_monthly_cap) END;
        CONTINUE WHEN cap_ IS NULL;
        p_from := date_trunc(CASE kind WHEN 'daily' THEN 'day' ELSE 'month' END, local_) AT TIME ZONE s.time_zone;
        p_to := (date_trunc(CASE kind WHEN 'daily' THEN 'day' ELSE 'month' END, local_)
                 + CASE kind WHEN 'daily' THEN interval '1 day' ELSE interval '1 month' END) AT TIME ZONE s.time_zone;
        SELECT * INTO u FROM spend_in_period(p_account.id, p_from, p_to);
        FOREACH pct IN ARRAY s.alert_thresholds LOOP
          IF (u.spent + u.held) * 100 >= cap_ * pct THEN
            INSERT INTO spend_cap_alerts (user_id, cap, period_start, threshold, limit_amount, used)
            VALUES (p_account.user_id, kind, p_from, pct, cap_, u.spent + u.held)
            ON CONFLICT (user_id, cap, period_start, threshold) DO NOTHING;
          END IF;
        END LOOP;
      END LOOP;
    END $$`);

  // Every policy at the hold, in order; the first refusal wins. Team budgets add theirs here.
  await knex.raw(`
    CREATE FUNCTION ledger_hold_policies(p_account accounts, p_amount bigint, p_now timestamptz) RETURNS jsonb
    LANGUAGE plpgsql VOLATILE AS $$
    DECLARE r jsonb;
    BEGIN
      r := spend_cap_policy(p_account, p_amount, p_now);
      IF r IS NOT NULL THEN RETURN r; END IF;
      RETURN NULL;
    END $$`);

  await knex.raw(`ALTER FUNCTION ledger_reserve_op(${RESERVE_ARGS}) RENAME TO ledger_reserve_core`);
  await knex.raw(`
    CREATE FUNCTION ledger_reserve_op(p_hold_id text, p_user_id uuid, p_amount bigint, p_now timestamptz, p_timeout_ms bigint,
                                      p_reason text, p_actor text, p_ref_type text, p_ref_id text)
    RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $$
    DECLARE a accounts; r jsonb;
    BEGIN
      a := ledger_user_account(p_user_id); -- the account lock: policies read what the last holder committed
      IF NOT EXISTS (SELECT 1 FROM holds WHERE id = p_hold_id) THEN
        r := ledger_hold_policies(a, p_amount, p_now);
        IF r IS NOT NULL THEN RETURN r; END IF;
      END IF;
      r := ledger_reserve_core(p_hold_id, p_user_id, p_amount, p_now, p_timeout_ms, p_reason, p_actor, p_ref_type, p_ref_id);
      IF r->>'error' IS NULL AND NOT (r->>'replayed')::boolean THEN
        PERFORM spend_cap_record(a, p_hold_id, p_hold_id, p_amount, p_now);
      END IF;
      RETURN r;
    END $$`);

  await knex.raw(`ALTER FUNCTION ledger_debit_op(${DEBIT_ARGS}) RENAME TO ledger_debit_core`);
  await knex.raw(`
    CREATE FUNCTION ledger_debit_op(p_transfer_id text, p_user_id uuid, p_amount bigint, p_kind text, p_now timestamptz,
                                    p_reason text, p_actor text, p_ref_type text, p_ref_id text)
    RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $$
    DECLARE a accounts; r jsonb;
    BEGIN
      IF p_kind <> 'usage' THEN
        RETURN ledger_debit_core(p_transfer_id, p_user_id, p_amount, p_kind, p_now, p_reason, p_actor, p_ref_type, p_ref_id);
      END IF;
      a := ledger_user_account(p_user_id);
      IF NOT EXISTS (SELECT 1 FROM transfers WHERE id = p_transfer_id) THEN
        r := ledger_hold_policies(a, p_amount, p_now);
        IF r IS NOT NULL THEN RETURN r; END IF;
      END IF;
      r := ledger_debit_core(p_transfer_id, p_user_id, p_amount, p_kind, p_now, p_reason, p_actor, p_ref_type, p_ref_id);
      IF r->>'error' IS NULL AND NOT (r->>'replayed')::boolean THEN
        PERFORM spend_cap_record(a, 'debit:' || p_transfer_id, NULL, p_amount, p_now);
      END IF;
      RETURN r;
    END $$`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP FUNCTION ledger_debit_op(${DEBIT_ARGS})`);
  await knex.raw(`ALTER FUNCTION ledger_debit_core(${DEBIT_ARGS}) RENAME TO ledger_debit_op`);
  await knex.raw(`DROP FUNCTION ledger_reserve_op(${RESERVE_ARGS})`);
  await knex.raw(`ALTER FUNCTION ledger_reserve_core(${RESERVE_ARGS}) RENAME TO ledger_reserve_op`);
  await knex.raw(`DROP FUNCTION ledger_hold_policies(accounts, bigint, timestamptz)`);
  await knex.raw(`DROP FUNCTION spend_cap_record(accounts, text, text, bigint, timestamptz)`);
  await knex.raw(`DROP FUNCTION spend_cap_policy(accounts, bigint, timestamptz)`);
  await knex.raw(`DROP FUNCTION spend_in_period(uuid, timestamptz, timestamptz)`);
  await knex.schema.dropTable('spend_cap_alerts');
  await knex.schema.dropTable('spend_charges');
  await knex.schema.dropTable('spend_limits');
}
