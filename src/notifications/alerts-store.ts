import type { Db, Trx } from '../db/database.ts';

/** SQL of low-balance state, alert history, one-time event notices, and the few reads of other features' rows the alerts need. */

export interface Recipient {
  id: string;
  email: string;
  name: string;
  emailVerifiedAt: Date | null;
}

/** The user's address and name, for messages. */
export async function findRecipient(db: Db | Trx, userId: string): Promise<Recipient | undefined> {
  const row = await db('users').where({ id: userId }).first('id', 'email', 'name', 'email_verified_at');
  return row ? { id: row.id, email: row.email, name: row.name, emailVerifiedAt: row.email_verified_at ?? null } : undefined;
}

/** The user owning a ledger account (undefined for system accounts). */
export async function ownerOfAccount(db: Db | Trx, accountId: string): Promise<string | undefined> {
  const row = await db('accounts').where({ id: accountId }).first('user_id');
  return row?.user_id ?? undefined;
}

/** The user's baseline and absolute floor (millicredits, null when unset), read without a lock. */
export async function lowBalanceConfig(db: Db | Trx, userId: string): Promise<{ baseline: number | null; floor: number | null }> {
  const r = await db.raw(
    `SELECT (SELECT baseline_millicredits FROM low_balance_state WHERE user_id = :u) AS baseline,
            (SELECT low_balance_floor_millicredits FROM notification_settings WHERE user_id = :u) AS floor`,
    { u: userId },
  );
  const row = r.rows[0] as { baseline: number | null; floor: number | null };
  return { baseline: row.baseline ?? null, floor: row.floor ?? null };
}

/**
 * Locks the user's low-balance state row (created on first use) for the rest of `trx`, so checks
 * of one user run one at a time. Returns the baseline and the floor (millicredits, null when unset).
 */
export async function lockLowBalanceState(trx: Trx, userId: string): Promise<{ baseline: number | null; floor: number | null }> {
  const lock = async () =>
    (
      await trx.raw(
        `SELECT s.baseline_millicredits AS baseline,
                (SELECT low_balance_floor_millicredits FROM notification_settings WHERE user_id = s.user_id) AS floor
           FROM low_balance_state s WHERE s.user_id = ? FOR UPDATE OF s`,
        [userId],
      )
    ).rows[0] as { baseline: number | null; floor: number | null } | undefined;
  let row = await lock();
  if (!row) {
    await trx('low_balance_state').insert({ user_id: userId }).onConflict('user_id').ignore();
    row = await lock();
  }
  return { baseline: row?.baseline ?? null, floor: row?.floor ?? null };
}

export async function setBaseline(trx: Trx, userId: string, baseline: number): Promise<void> {
  await trx('low_balance_state').where({ user_id: userId }).update({ baseline_millicredits: baseline, updated_at: trx.fn.now() });
}

export async function thresholdStates(trx: Trx, userId: string): Promise<Map<string, { armed: boolean; generation: number }>> {
  const rows = (await trx('low_balance_thresholds').where({ user_id: userId })) as Array<{ threshold: string; armed: boolean; generation: number }>;
  return new Map(rows.map((r) => [r.threshold, { armed: r.armed, generation: r.generation }]));
}

export async function saveThresholdState(trx: Trx, userId: string, threshold: string, s: { armed: boolean; generation: number }): Promise<void> {
  await trx('low_balance_thresholds')
    .insert({ user_id: userId, threshold, armed: s.armed, generation: s.generation })
    .onConflict(['user_id', 'threshold'])
    .merge();
}

/** Records a low-balance alert; false when this (user, threshold, generation) already fired (unique key). */
export async function insertLowBalanceAlert(trx: Trx, a: { userId: string; threshold: string; generation: number; thresholdMillicredits: number; balanceMillicredits: number }): Promise<boolean> {
  const r = await trx.raw(
    `INSERT INTO balance_alerts (user_id, kind, threshold, generation, threshold_millicredits, balance_millicredits)
     VALUES (?, 'low_balance', ?, ?, ?, ?)
     ON CONFLICT (user_id, threshold, generation) WHERE kind = 'low_balance' DO NOTHING RETURNING id`,
    [a.userId, a.threshold, a.generation, a.thresholdMillicredits, a.balanceMillicredits],
  );
  return r.rows.length > 0;
}

export interface ExpiringLot {
  lotId: string;
  userId: string;
  /** Unspent and unheld, millicredits. */
  remaining: number;
  expiresAt: Date;
  source: string;
}

/** Lots of user accounts expiring in (now, until] with credits left and no expiry notice yet. */
export async function lotsExpiringWithoutNotice(db: Db, now: Date, until: Date, limit: number): Promise<ExpiringLot[]> {
  const r = await db.raw(
    `SELECT l.id, a.user_id, l.remaining - l.held AS free, l.expires_at, l.source
       FROM lots l JOIN accounts a ON a.id = l.account_id
      WHERE a.user_id IS NOT NULL AND l.expires_at > ? AND l.expires_at <= ? AND l.remaining - l.held > 0
        AND NOT EXISTS (SELECT 1 FROM balance_alerts b WHERE b.kind = 'credits_expiring' AND b.lot_id = l.id)
      ORDER BY l.expires_at LIMIT ?`,
    [now, until, limit],
  );
  return (r.rows as Array<{ id: string; user_id: string; free: number; expires_at: Date; source: string }>).map((x) => ({ lotId: x.id, userId: x.user_id, remaining: Number(x.free), expiresAt: x.expires_at, source: x.source }));
}

/** Records the one expiry notice of a lot; false when it was already recorded. */
export async function insertExpiringAlert(trx: Trx, lot: ExpiringLot): Promise<boolean> {
  const r = await trx.raw(
    `INSERT INTO balance_alerts (user_id, kind, lot_id, lot_remaining_millicredits, lot_expires_at)
     VALUES (?, 'credits_expiring', ?, ?, ?)
     ON CONFLICT (lot_id) WHERE kind = 'credits_expiring' DO NOTHING RETURNING id`,
    [lot.userId, lot.lotId, lot.remaining, lot.expiresAt],
  );
  return r.rows.length > 0;
}

export interface AlertRecord {
  kind: 'low_balance' | 'credits_expiring';
  threshold: string | null;
  thresholdMillicredits: number | null;
  balanceMillicredits: number | null;
  lotRemainingMillicredits: number | null;
  lotExpiresAt: Date | null;
  createdAt: Date;
}

/** The user's alert history, newest first. */
export async function listAlerts(db: Db, userId: string, limit: number): Promise<AlertRecord[]> {
  const rows = await db('balance_alerts').where({ user_id: userId }).orderBy('created_at', 'desc').limit(limit);
  return rows.map((r: Record<string, unknown>) => ({
    kind: r.kind as AlertRecord['kind'],
    threshold: (r.threshold as string | null) ?? null,
    thresholdMillicredits: (r.threshold_millicredits as number | null) ?? null,
    balanceMillicredits: (r.balance_millicredits as number | null) ?? null,
    lotRemainingMillicredits: (r.lot_remaining_millicredits as number | null) ?? null,
    lotExpiresAt: (r.lot_expires_at as Date | null) ?? null,
    createdAt: r.created_at as Date,
  }));
}

/** Claims the one notice of (kind, ref); false when it was claimed before. */
export async function claimNotice(trx: Trx, kind: string, refId: string): Promise<boolean> {
  const r = await trx.raw(`INSERT INTO event_notices (kind, ref_id) VALUES (?, ?) ON CONFLICT DO NOTHING RETURNING kind`, [kind, refId]);
  return r.rows.length > 0;
}

/** Expiry transfers (kind `expiry`) since `since` not yet announced. */
export async function expiredLotsWithoutNotice(db: Db, since: Date, limit: number) {
  const r = await db.raw(
    `SELECT t.id AS transfer_id, t.amount, t.created_at, t.reference_id AS lot_id, a.user_id
       FROM transfers t JOIN accounts a ON a.id = t.debit_account_id
      WHERE t.kind = 'expiry' AND t.created_at >= ? AND a.user_id IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM event_notices n WHERE n.kind = 'credits.expired' AND n.ref_id = t.id)
      ORDER BY t.created_at LIMIT ?`,
    [since, limit],
  );
  return r.rows as Array<{ transfer_id: string; amount: number; created_at: Date; lot_id: string | null; user_id: string }>;
}

/** Holds voided by the sweeper (status `expired`) since `since` not yet announced. */
export async function expiredHoldsWithoutNotice(db: Db, since: Date, limit: number) {
  const r = await db.raw(
    `SELECT h.id, h.amount, h.resolved_at, h.reference_type, h.reference_id, a.user_id
       FROM holds h JOIN accounts a ON a.id = h.account_id
      WHERE h.status = 'expired' AND h.resolved_at >= ? AND a.user_id IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM event_notices n WHERE n.kind = 'hold.expired' AND n.ref_id = h.id)
      ORDER BY h.resolved_at LIMIT ?`,
    [since, limit],
  );
  return r.rows as Array<{ id: string; amount: number; resolved_at: Date; reference_type: string | null; reference_id: string | null; user_id: string }>;
}

/** Tasks that completed or failed since `since` and were not announced yet. */
export async function finishedTasksWithoutNotice(db: Db, since: Date, limit: number) {
  const r = await db.raw(
    `SELECT t.id, t.id::text || ':' || t.hold_id AS notice_ref, t.user_id, t.status, t.file_name, t.pages, t.charged_millicredits, t.error_code, t.error_detail, t.completed_at
       FROM tasks t
      WHERE t.status IN ('completed', 'failed') AND t.completed_at >= ?
        AND NOT EXISTS (SELECT 1 FROM event_notices n WHERE n.kind = 'task.finished' AND n.ref_id = t.id::text || ':' || t.hold_id)
      ORDER BY t.completed_at LIMIT ?`,
    [since, limit],
  );
  return r.rows as Array<{ id: string; notice_ref: string; user_id: string; status: 'completed' | 'failed'; file_name: string; pages: number; charged_millicredits: number | null; error_code: string | null; error_detail: string | null; completed_at: Date }>;
}
