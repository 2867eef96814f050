import type { Db, Trx } from '../db/database.ts';

/** SQL of `notification_settings`: one row per user once they change something; defaults otherwise. */

export interface NotificationSettings {
  receipts: boolean;
  lowBalance: boolean;
  expiringCredits: boolean;
  /** Job finished / failed emails: off unless the user opts in. */
  jobs: boolean;
  /** Optional absolute low-balance floor, millicredits; null = none. */
  lowBalanceFloor: number | null;
}

export const DEFAULT_SETTINGS: Readonly<NotificationSettings> = Object.freeze({ receipts: true, lowBalance: true, expiringCredits: true, jobs: false, lowBalanceFloor: null });

interface DbSettingsRow {
  user_id: string;
  receipts: boolean;
  low_balance: boolean;
  expiring_credits: boolean;
  jobs: boolean;
  low_balance_floor_millicredits: number | null;
}

/** The user's settings (the defaults when they never saved any). */
export async function getSettings(db: Db | Trx, userId: string): Promise<NotificationSettings> {
  const row = await db<DbSettingsRow>('notification_settings').where({ user_id: userId }).first();
  if (!row) return { ...DEFAULT_SETTINGS };
  return {
    receipts: row.receipts,
    lowBalance: row.low_balance,
    expiringCredits: row.expiring_credits,
    jobs: row.jobs,
    lowBalanceFloor: row.low_balance_floor_millicredits,
  };
}

/** Saves all of the user's settings (upsert). */
export async function saveSettings(db: Db | Trx, userId: string, s: NotificationSettings): Promise<void> {
  await db('notification_settings')
    .insert({
      user_id: userId,
      receipts: s.receipts,
      low_balance: s.lowBalance,
      expiring_credits: s.expiringCredits,
      jobs: s.jobs,
      low_balance_floor_millicredits: s.lowBalanceFloor,
      updated_at: db.fn.now(),
    })
    .onConflict('user_id')
    .merge();
}
