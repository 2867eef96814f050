import type { Db, Trx } from '../db/database.ts';

/** SQL of spend controls (tables from migration 20261130170000). Amounts are millicredits. */

export interface DbSpendLimitsRow {
  user_id: string;
  daily_cap: number | null;
  monthly_cap: number | null;
  per_job_max: number | null;
  admin_daily_cap: number | null;
  admin_monthly_cap: number | null;
  admin_per_job_max: number | null;
  time_zone: string;
  alert_thresholds: number[];
  updated_at: Date;
}

export interface DbSpendCapAlertRow {
  id: string;
  user_id: string;
  cap: 'daily' | 'monthly';
  period_start: Date;
  threshold: number;
  limit_amount: number;
  used: number;
  created_at: Date;
  notified_at: Date | null;
}

export type UserLimitsPatch = Partial<Pick<DbSpendLimitsRow, 'daily_cap' | 'monthly_cap' | 'per_job_max' | 'time_zone' | 'alert_thresholds'>>;
export type AdminLimitsPatch = Partial<Pick<DbSpendLimitsRow, 'admin_daily_cap' | 'admin_monthly_cap' | 'admin_per_job_max'>>;

/** Locks the user's row (FOR SHARE): false when there is no such user. */
export async function lockUser(trx: Trx, userId: string): Promise<boolean> {
  return (await trx('users').where({ id: userId }).forShare().first('id')) !== undefined;
}

export async function findLimits(db: Db | Trx, userId: string, forUpdate = false): Promise<DbSpendLimitsRow | undefined> {
  const q = db<DbSpendLimitsRow>('spend_limits').where({ user_id: userId });
  return (forUpdate ? q.forUpdate() : q).first();
}

/** Inserts or updates the given columns of the user's limits; returns the row. */
export async function upsertLimits(trx: Trx, userId: string, patch: UserLimitsPatch | AdminLimitsPatch): Promise<DbSpendLimitsRow> {
  const changes = { ...patch, updated_at: new Date() };
  const [row] = await trx<DbSpendLimitsRow>('spend_limits')
    .insert({ user_id: userId, ...changes })
    .onConflict('user_id')
    .merge(changes)
    .returning('*');
  return row!;
}

/** A period of a cap in the user's time zone: [start, end). */
export async function periodBounds(db: Db | Trx, timeZone: string, now: Date): Promise<{ dayStart: Date; dayEnd: Date; monthStart: Date; monthEnd: Date }> {
  const { rows } = await db.raw<{ rows: Array<{ day_start: Date; day_end: Date; month_start: Date; month_end: Date }> }>(
    `SELECT date_trunc('day', ?::timestamptz AT TIME ZONE ?) AT TIME ZONE ? AS day_start,
            (date_trunc('day', ?::timestamptz AT TIME ZONE ?) + interval '1 day') AT TIME ZONE ? AS day_end,
            date_trunc('month', ?::timestamptz AT TIME ZONE ?) AT TIME ZONE ? AS month_start,
            (date_trunc('month', ?::timestamptz AT TIME ZONE ?) + interval '1 month') AT TIME ZONE ? AS month_end`,
    [now, timeZone, timeZone, now, timeZone, timeZone, now, timeZone, timeZone, now, timeZone, timeZone],
  );
  const r = rows[0]!;
  return { dayStart: r.day_start, dayEnd: r.day_end, monthStart: r.month_start, monthEnd: r.month_end };
}

/** Posted and still-held usage of the user's account charged in [from, to). Zero without an account. */
export async function spendInPeriod(db: Db | Trx, userId: string, from: Date, to: Date): Promise<{ spent: number; held: number }> {
  const { rows } = await db.raw<{ rows: Array<{ spent: number | null; held: number | null }> }>(
    `SELECT s.spent, s.held FROM accounts a, spend_in_period(a.id, ?, ?) s WHERE a.user_id = ?`,
    [from, to, userId],
  );
  return { spent: Number(rows[0]?.spent ?? 0), held: Number(rows[0]?.held ?? 0) };
}

/** The user's recorded cap alerts, newest first. */
export async function listAlerts(db: Db | Trx, userId: string, limit: number): Promise<DbSpendCapAlertRow[]> {
  return db<DbSpendCapAlertRow>('spend_cap_alerts').where({ user_id: userId }).orderBy('id', 'desc').limit(limit);
}

/** Locks up to `limit` alerts not yet delivered (skipping rows another sender holds). */
export async function claimPendingAlerts(trx: Trx, limit: number): Promise<DbSpendCapAlertRow[]> {
  return trx<DbSpendCapAlertRow>('spend_cap_alerts').whereNull('notified_at').orderBy('id').limit(limit).forUpdate().skipLocked();
}

export async function markAlertsNotified(trx: Trx, ids: string[]): Promise<void> {
  if (ids.length > 0) await trx('spend_cap_alerts').whereIn('id', ids).update({ notified_at: trx.fn.now() });
}
