import type { Db, Trx } from '../db/database.ts';

/** SQL of the in-app notification centre (`notifications`). */

export interface InboxNotification {
  id: string;
  type: string;
  title: string;
  body: string;
  /** A path on this site to follow, e.g. `/account/payments/…`. */
  link: string | null;
  createdAt: Date;
  readAt: Date | null;
}

interface DbNotificationRow {
  id: string;
  user_id: string;
  type: string;
  title: string;
  body: string;
  link: string | null;
  created_at: Date;
  read_at: Date | null;
}

const mapRow = (r: DbNotificationRow): InboxNotification => ({ id: r.id, type: r.type, title: r.title, body: r.body, link: r.link, createdAt: r.created_at, readAt: r.read_at });

export async function insertNotification(trx: Db | Trx, n: { userId: string; type: string; title: string; body: string; link: string | null }): Promise<InboxNotification> {
  const [row] = await trx<DbNotificationRow>('notifications').insert({ user_id: n.userId, type: n.type, title: n.title, body: n.body, link: n.link }).returning('*');
  return mapRow(row as DbNotificationRow);
}

/** The user's notifications, newest first; `unread` true: only unread ones. Keyset on (created_at, id). */
export async function listNotifications(db: Db, userId: string, opts: { unread?: boolean; limit: number; before?: { createdAt: Date; id: string } }): Promise<InboxNotification[]> {
  const q = db<DbNotificationRow>('notifications')
    .where({ user_id: userId })
    .orderBy([
      { column: 'created_at', order: 'desc' },
      { column: 'id', order: 'desc' },
    ])
    .limit(opts.limit);
  if (opts.unread === true) q.whereNull('read_at');
  if (opts.unread === false) q.whereNotNull('read_at');
  if (opts.before) q.whereRaw('(created_at, id) < (?, ?)', [opts.before.createdAt, opts.before.id]);
  return (await q).map((r) => mapRow(r as DbNotificationRow));
}

export async function countUnread(db: Db, userId: string): Promise<number> {
  const row = await db('notifications').where({ user_id: userId }).whereNull('read_at').count<{ count: string | number }[]>('* as count').first();
  return Number(row?.count ?? 0);
}

/** Marks one of the user's notifications read (kept read if it already was); undefined if not theirs. */
export async function markRead(db: Db, userId: string, id: string): Promise<InboxNotification | undefined> {
  const [row] = await db<DbNotificationRow>('notifications')
    .where({ id, user_id: userId })
    .update({ read_at: db.raw('coalesce(read_at, now())') as unknown as Date })
    .returning('*');
  return row ? mapRow(row as DbNotificationRow) : undefined;
}

/** Marks all of the user's notifications read; returns how many were unread. */
export async function markAllRead(db: Db, userId: string): Promise<number> {
  return db('notifications').where({ user_id: userId }).whereNull('read_at').update({ read_at: db.fn.now() });
}
