import type { Db, Trx } from '../db/database.ts';

/** SQL of data exports, erasures and retention (issue 19). */

type Q = Db | Trx;

export type ExportStatus = 'pending' | 'building' | 'ready' | 'failed' | 'expired' | 'deleted';

export interface DbExportRow {
  id: string;
  user_id: string;
  status: ExportStatus;
  storage_key: string | null;
  size_bytes: string | number | null;
  attempts: number;
  lease_until: Date | null;
  last_error: string | null;
  created_at: Date;
  ready_at: Date | null;
  expires_at: Date | null;
  downloaded_at: Date | null;
}

/** An export request as the API and pages show it. */
export interface AccountExport {
  id: string;
  userId: string;
  status: ExportStatus;
  sizeBytes: number | null;
  createdAt: Date;
  readyAt: Date | null;
  expiresAt: Date | null;
  downloadedAt: Date | null;
  storageKey: string | null;
}

export function mapExport(r: DbExportRow): AccountExport {
  return {
    id: r.id,
    userId: r.user_id,
    status: r.status,
    sizeBytes: r.size_bytes === null ? null : Number(r.size_bytes),
    createdAt: r.created_at,
    readyAt: r.ready_at,
    expiresAt: r.expires_at,
    downloadedAt: r.downloaded_at,
    storageKey: r.storage_key,
  };
}

/** Inserts a pending export; a second active one for the user violates `account_exports_one_active` (23505). */
export async function insertExport(q: Q, userId: string): Promise<DbExportRow> {
  const [row] = await q<DbExportRow>('account_exports').insert({ user_id: userId }).returning('*');
  return row as DbExportRow;
}

export async function findExport(q: Q, id: string): Promise<DbExportRow | undefined> {
  return q<DbExportRow>('account_exports').where({ id }).first();
}

export async function listExports(q: Q, userId: string, limit = 10): Promise<DbExportRow[]> {
  return q<DbExportRow>('account_exports').where({ user_id: userId }).orderBy('created_at', 'desc').limit(limit);
}

/**
 * Claims one export that is pending, or building with a lapsed lease (its worker died), for
 * `leaseMs`; concurrent workers skip each other's rows. Undefined when there is none.
 */
export async function claimExport(q: Q, now: Date, leaseMs: number): Promise<DbExportRow | undefined> {
  const r = await q.raw(
    `UPDATE account_exports SET status = 'building', attempts = attempts + 1, lease_until = ?
      WHERE id = (SELECT id FROM account_exports
                   WHERE status = 'pending' OR (status = 'building' AND lease_until < ?)
                   ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
      RETURNING *`,
    [new Date(now.getTime() + leaseMs), now],
  );
  return r.rows[0] as DbExportRow | undefined;
}

// ---------------------------------------------------------------------------------------------
// What an export holds: everything about one user, as rows

/** Whether a table exists (teams and API keys land on other branches). */
export async function tableExists(q: Q, name: string): Promise<boolean> {
  const r = await q.raw(`SELECT to_regclass(?) IS NOT NULL AS ok`, [name]);
  return Boolean((r.rows[0] as { ok: boolean }).ok);
}

/** Column names that hold secrets: never exported (API key hashes, webhook secrets, tokens). */
const SECRET_COLUMN = /(secret|hash|token|password|key_digest)/i;

/** Rows without secret columns. */
export function withoutSecrets<T extends Record<string, unknown>>(rows: T[]): Record<string, unknown>[] {
  return rows.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !SECRET_COLUMN.test(k))));
}

/** Every row of the user's data, by file name of the export (`profile`, `transfers`, …). */
export async function gatherUserData(q: Q, userId: string): Promise<Record<string, unknown>> {
  const account = (await q('accounts').where({ user_id: userId }).first('id')) as { id: string } | undefined;
  const accountId = account?.id ?? '00000000-0000-0000-0000-000000000000';
  const profile = await q('users').where({ id: userId }).first('id', 'email', 'name', 'role', 'created_at', 'updated_at', 'last_login_at', 'email_verified_at');
  const sessions = (await q.raw(`SELECT sess, expire FROM "session" WHERE sess->>'userId' = ? ORDER BY expire DESC`, [userId])).rows.map(
    (r: { sess: Record<string, unknown>; expire: Date }) => {
      const { csrfToken: _c, ...rest } = r.sess;
      return { ...rest, expire: r.expire };
    },
  );
  const data: Record<string, unknown> = {
    profile,
    sessions: withoutSecrets(sessions),
    'notification-settings': (await q('notification_settings').where({ user_id: userId }).first()) ?? null,
    transfers: await q('transfers').where({ debit_account_id: accountId }).orWhere({ credit_account_id: accountId }).orderBy('created_at'),
    lots: await q('lots').where({ account_id: accountId }).orderBy('created_at'),
    holds: await q('holds').where({ account_id: accountId }).orderBy('created_at'),
    payments: await q('payments').where({ user_id: userId }).orderBy('created_at'),
    refunds: await q('payment_refunds as r').join('payments as p', 'p.id', 'r.payment_id').where('p.user_id', userId).select('r.*').orderBy('r.created_at'),
    subscriptions: await q('subscriptions').where({ user_id: userId }).orderBy('created_at'),
    tasks: await q('tasks').where({ user_id: userId }).orderBy('created_at'),
    'balance-alerts': await q('balance_alerts').where({ user_id: userId }).orderBy('created_at'),
    'low-balance-thresholds': await q('low_balance_thresholds').where({ user_id: userId }),
    notifications: await q('notifications').where({ user_id: userId }).orderBy('created_at'),
    'webhook-endpoints': withoutSecrets(await q('webhook_endpoints').where({ user_id: userId }).orderBy('created_at')),
    emails: withoutSecrets(await q('email_outbox').where({ user_id: userId }).orderBy('created_at').select('id', 'to_address', 'type', 'subject', 'status', 'created_at', 'sent_at')),
  };
  // Teams and API keys arrive from other branches: included when their tables exist.
  for (const [file, table] of [
    ['team-memberships', 'team_members'],
    ['team-memberships', 'team_memberships'],
    ['api-keys', 'api_keys'],
  ] as const) {
    if (data[file] === undefined && (await tableExists(q, table))) data[file] = withoutSecrets(await q(table).where({ user_id: userId }));
  }
  return data;
}

// ---------------------------------------------------------------------------------------------
// Erasure

export type DeletionStatus = 'scheduled' | 'cancelled' | 'erasing' | 'erased';

export interface DbDeletionRow {
  user_id: string;
  status: DeletionStatus;
  requested_at: Date;
  scheduled_for: Date;
  requested_by: string;
  reason: string | null;
  steps_done: string[];
  attempts: number;
  last_error: string | null;
  pseudonym: string | null;
  cancelled_at: Date | null;
  completed_at: Date | null;
}

export async function findDeletion(q: Q, userId: string, forUpdate = false): Promise<DbDeletionRow | undefined> {
  const query = q<DbDeletionRow>('account_deletions').where({ user_id: userId }).first();
  return forUpdate ? query.forUpdate() : query;
}

/**
 * Schedules (or reschedules a cancelled) erasure of `userId`. An erasure already scheduled, under
 * way or done is left as it is and returned.
 */
export async function upsertDeletion(q: Q, row: Pick<DbDeletionRow, 'user_id' | 'status' | 'requested_at' | 'scheduled_for' | 'requested_by' | 'reason'>): Promise<DbDeletionRow> {
  const r = await q.raw(
    `INSERT INTO account_deletions (user_id, status, requested_at, scheduled_for, requested_by, reason)
     VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (user_id) DO UPDATE SET status = EXCLUDED.status, requested_at = EXCLUDED.requested_at,
       scheduled_for = EXCLUDED.scheduled_for, requested_by = EXCLUDED.requested_by, reason = EXCLUDED.reason, cancelled_at = NULL
     WHERE account_deletions.status = 'cancelled'
        OR (account_deletions.status = 'scheduled' AND EXCLUDED.status = 'erasing')
     RETURNING *`,
    [row.user_id, row.status, row.requested_at, row.scheduled_for, row.requested_by, row.reason],
  );
  return (r.rows[0] as DbDeletionRow | undefined) ?? ((await findDeletion(q, row.user_id)) as DbDeletionRow);
}

/** Cancels a scheduled erasure; false when none was scheduled (too late, or never asked). */
export async function cancelDeletion(q: Q, userId: string, at: Date): Promise<boolean> {
  const n = await q('account_deletions').where({ user_id: userId, status: 'scheduled' }).update({ status: 'cancelled', cancelled_at: at });
  return n > 0;
}

/** Erasures due at `now` (scheduled and past their date, or under way and interrupted). */
export async function dueDeletions(q: Q, now: Date, limit = 10): Promise<string[]> {
  const rows = await q('account_deletions')
    .where((w) => w.where('status', 'scheduled').andWhere('scheduled_for', '<=', now))
    .orWhere('status', 'erasing')
    .orderBy('scheduled_for')
    .limit(limit)
    .select('user_id');
  return rows.map((r: { user_id: string }) => r.user_id);
}

/** Records one step done (in the transaction that did it). */
export async function markStepDone(q: Q, userId: string, step: string): Promise<void> {
  await q.raw(`UPDATE account_deletions SET steps_done = array_append(steps_done, ?) WHERE user_id = ? AND NOT (? = ANY(steps_done))`, [step, userId, step]);
}
