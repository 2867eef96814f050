import type { Db, Trx } from '../db/database.ts';

/** SQL of the email outbox (migrations/20261130150000_create_notifications.ts). */

export type EmailStatus = 'pending' | 'sending' | 'sent' | 'failed' | 'not_sent';

export interface DbEmailRow {
  id: string;
  user_id: string | null;
  to_address: string;
  type: string;
  subject: string;
  text_body: string;
  html_body: string;
  status: EmailStatus;
  attempts: number;
  next_attempt_at: Date;
  lease_until: Date | null;
  last_error: string | null;
  message_id: string | null;
  dedupe_key: string | null;
  created_at: Date;
  sent_at: Date | null;
}

export interface OutboxEmail {
  id: string;
  userId: string | null;
  to: string;
  type: string;
  subject: string;
  text: string;
  html: string;
  status: EmailStatus;
  attempts: number;
  nextAttemptAt: Date;
  lastError: string | null;
  messageId: string | null;
  createdAt: Date;
  sentAt: Date | null;
}

export function mapEmailRow(r: DbEmailRow): OutboxEmail {
  return {
    id: r.id,
    userId: r.user_id,
    to: r.to_address,
    type: r.type,
    subject: r.subject,
    text: r.text_body,
    html: r.html_body,
    status: r.status,
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at,
    lastError: r.last_error,
    messageId: r.message_id,
    createdAt: r.created_at,
    sentAt: r.sent_at,
  };
}

export interface NewEmailRow {
  userId: string | null;
  to: string;
  type: string;
  subject: string;
  text: string;
  html: string;
  status: 'pending' | 'not_sent';
  lastError: string | null;
  dedupeKey: string | null;
}

/** Inserts one message; with a `dedupeKey` already present, inserts nothing and returns undefined. */
export async function insertEmail(trx: Db | Trx, e: NewEmailRow): Promise<OutboxEmail | undefined> {
  const rows = await trx<DbEmailRow>('email_outbox')
    .insert({
      user_id: e.userId,
      to_address: e.to,
      type: e.type,
      subject: e.subject,
      text_body: e.text,
      html_body: e.html,
      status: e.status,
      last_error: e.lastError,
      dedupe_key: e.dedupeKey,
    })
    .onConflict('dedupe_key')
    .ignore()
    .returning('*');
  return rows[0] ? mapEmailRow(rows[0] as DbEmailRow) : undefined;
}

/**
 * Claims up to `limit` due messages for sending: `pending` → `sending` with a lease until
 * `now + leaseMs`, attempts + 1. FOR UPDATE SKIP LOCKED, so concurrent senders never claim the
 * same row; a claimed row is never claimed again (see {@link failStaleSending}).
 */
export async function claimDueEmails(db: Db, now: Date, limit: number, leaseMs: number): Promise<OutboxEmail[]> {
  const r = await db.raw<{ rows: DbEmailRow[] }>(
    `UPDATE email_outbox SET status = 'sending', attempts = attempts + 1, lease_until = ?::timestamptz
      WHERE id IN (SELECT id FROM email_outbox WHERE status = 'pending' AND next_attempt_at <= ?
                   ORDER BY next_attempt_at LIMIT ? FOR UPDATE SKIP LOCKED)
      RETURNING *`,
    [new Date(now.getTime() + leaseMs), now, limit],
  );
  return r.rows.map(mapEmailRow);
}

/** The SMTP server accepted the message. */
export async function markEmailSent(db: Db, id: string, messageId: string | null): Promise<void> {
  await db('email_outbox').where({ id, status: 'sending' }).update({ status: 'sent', sent_at: db.fn.now(), message_id: messageId, lease_until: null, last_error: null });
}

/** Not accepted: `pending` again at `retryAt`, or `failed` for good when `retryAt` is null. */
export async function markEmailFailed(db: Db, id: string, error: string, retryAt: Date | null): Promise<void> {
  await db('email_outbox')
    .where({ id, status: 'sending' })
    .update(retryAt ? { status: 'pending', next_attempt_at: retryAt, last_error: error, lease_until: null } : { status: 'failed', last_error: error, lease_until: null });
}

/**
 * Rows still `sending` after their lease: the sender stopped mid-send, so whether the server got the
 * message is unknown. At most once per row means they are not sent again: `failed`, with that reason.
 */
export async function failStaleSending(db: Db, now: Date): Promise<number> {
  return db('email_outbox')
    .where({ status: 'sending' })
    .andWhere('lease_until', '<', now)
    .update({ status: 'failed', last_error: 'interrupted while sending; not retried so it is never sent twice', lease_until: null });
}

export interface EmailFilters {
  to?: string;
  type?: string;
}

/** Messages newest first for admins, filtered by recipient (exact, case-insensitive) and type. */
export async function listEmails(db: Db, filters: EmailFilters, limit: number, before?: { createdAt: Date; id: string }): Promise<OutboxEmail[]> {
  const q = db<DbEmailRow>('email_outbox')
    .orderBy([
      { column: 'created_at', order: 'desc' },
      { column: 'id', order: 'desc' },
    ])
    .limit(limit);
  if (filters.to) q.where('to_address', filters.to.trim().toLowerCase());
  if (filters.type) q.where('type', filters.type);
  if (before) q.whereRaw('(created_at, id) < (?, ?)', [before.createdAt, before.id]);
  return (await q).map((r) => mapEmailRow(r as DbEmailRow));
}

/** One message by id (undefined for an unknown or malformed id). */
export async function findEmail(db: Db, id: string): Promise<OutboxEmail | undefined> {
  if (!/^[0-9a-f-]{36}$/i.test(id)) return undefined;
  const row = await db<DbEmailRow>('email_outbox').where({ id }).first();
  return row ? mapEmailRow(row as DbEmailRow) : undefined;
}
