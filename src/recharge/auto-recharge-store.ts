import type { Db, Trx } from '../db/database.ts';

/** SQL of auto-recharge (tables from migration 20261130170200). */

export interface DbAutoRechargeSettingsRow {
  user_id: string;
  enabled: boolean;
  payment_method_id: string | null;
  card_brand: string | null;
  card_last4: string | null;
  threshold_millicredits: number;
  package_id: string;
  max_per_day: number;
  monthly_ceiling_cents: number;
  consecutive_failures: number;
  disabled_reason: string | null;
  updated_at: Date;
}

export interface DbAutoRechargeRow {
  id: string;
  user_id: string;
  payment_id: string;
  status: 'pending' | 'succeeded' | 'failed' | 'requires_action';
  amount_cents: number;
  currency: string;
  payment_intent_id: string | null;
  failure_code: string | null;
  failure_message: string | null;
  created_at: Date;
  completed_at: Date | null;
}

export async function findSettings(db: Db | Trx, userId: string, forUpdate = false): Promise<DbAutoRechargeSettingsRow | undefined> {
  const q = db<DbAutoRechargeSettingsRow>('auto_recharge_settings').where({ user_id: userId });
  return (forUpdate ? q.forUpdate() : q).first();
}

export async function upsertSettings(db: Db | Trx, row: Omit<DbAutoRechargeSettingsRow, 'updated_at'>): Promise<DbAutoRechargeSettingsRow> {
  const values = { ...row, updated_at: new Date() };
  const [saved] = await db<DbAutoRechargeSettingsRow>('auto_recharge_settings').insert(values).onConflict('user_id').merge(values).returning('*');
  return saved!;
}

export async function updateSettings(db: Db | Trx, userId: string, patch: Partial<DbAutoRechargeSettingsRow>): Promise<void> {
  await db('auto_recharge_settings').where({ user_id: userId }).update({ ...patch, updated_at: new Date() });
}

/** Recharges started since `dayStart` (pending or succeeded) and money committed since `monthStart`. */
export async function usage(db: Db | Trx, userId: string, dayStart: Date, monthStart: Date): Promise<{ today: number; monthCents: number }> {
  const row = await db('auto_recharges')
    .where({ user_id: userId })
    .whereIn('status', ['pending', 'succeeded'])
    .where('created_at', '>=', monthStart)
    .select(
      db.raw('count(*) FILTER (WHERE created_at >= ?)::int AS today', [dayStart]),
      db.raw('COALESCE(SUM(amount_cents), 0)::bigint AS month_cents'),
    )
    .first();
  return { today: Number(row?.today ?? 0), monthCents: Number(row?.month_cents ?? 0) };
}

/** Inserts a pending recharge; undefined when one is already in flight for the user (partial unique index). */
export async function insertPending(trx: Trx, r: { userId: string; paymentId: string; amountCents: number; currency: string; createdAt: Date }): Promise<DbAutoRechargeRow | undefined> {
  const rows = (await trx.raw(
    `INSERT INTO auto_recharges (user_id, payment_id, amount_cents, currency, created_at) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (user_id) WHERE status = 'pending' DO NOTHING RETURNING *`,
    [r.userId, r.paymentId, r.amountCents, r.currency, r.createdAt],
  )) as { rows: DbAutoRechargeRow[] };
  return rows.rows[0];
}

export async function updateRecharge(db: Db | Trx, id: string, patch: Partial<DbAutoRechargeRow>): Promise<void> {
  await db('auto_recharges').where({ id }).update(patch);
}

export async function findRechargeByPayment(db: Db | Trx, paymentId: string, forUpdate = false): Promise<DbAutoRechargeRow | undefined> {
  const q = db<DbAutoRechargeRow>('auto_recharges').where({ payment_id: paymentId });
  return (forUpdate ? q.forUpdate() : q).first();
}

export async function listRecharges(db: Db | Trx, userId: string, limit: number): Promise<DbAutoRechargeRow[]> {
  return db<DbAutoRechargeRow>('auto_recharges').where({ user_id: userId }).orderBy('created_at', 'desc').limit(limit);
}

/** Records a guardrail notice once per (user, kind, period); true when this call recorded it. */
export async function recordNotice(db: Db | Trx, userId: string, kind: string, period: string): Promise<boolean> {
  const rows = await db('auto_recharge_notices').insert({ user_id: userId, kind, period }).onConflict(['user_id', 'kind', 'period']).ignore().returning('kind');
  return rows.length > 0;
}

/** The user's name and email (for a Checkout link). */
export async function findUserContact(db: Db | Trx, userId: string): Promise<{ id: string; email: string; name: string } | undefined> {
  return db('users').where({ id: userId }).first('id', 'email', 'name');
}
