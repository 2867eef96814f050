import type { Db, Trx } from '../db/database.ts';

/** SQL of the append-only `audit_log` table. */

export interface DbAuditRow {
  id: string | number;
  created_at: Date;
  actor: string;
  actor_user_id: string | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  ip: string | null;
  user_agent: string | null;
  details: Record<string, unknown>;
  actor_email?: string | null;
}

export type NewAuditRow = Omit<DbAuditRow, 'id' | 'created_at' | 'actor_email'>;

/** Appends one row (in `db` or the caller's transaction); returns it as stored. */
export async function insertAuditRow(db: Db | Trx, row: NewAuditRow): Promise<DbAuditRow> {
  const [inserted] = await db<DbAuditRow>('audit_log')
    .insert({ ...row, details: JSON.stringify(row.details) as unknown as Record<string, unknown> })
    .returning('*');
  return inserted as DbAuditRow;
}

export interface AuditFilters {
  /** A user id (matches `actor_user_id`), an email (the actor's), or an actor string (`system`). */
  actor?: string;
  /** Exact action (`auth.login`) or a prefix ending in `.` (`admin.`). */
  action?: string;
  /** Entries about this target. */
  target?: { type: string; id: string };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Entries newest first (by id), keyset-paginated: `beforeId` is the last id of the previous page. */
export async function listAuditRows(db: Db | Trx, filters: AuditFilters, limit: number, beforeId?: string): Promise<DbAuditRow[]> {
  const q = db('audit_log as a')
    .leftJoin('users as u', 'u.id', 'a.actor_user_id')
    .select('a.*', 'u.email as actor_email')
    .orderBy('a.id', 'desc')
    .limit(limit);
  const actor = filters.actor?.trim();
  if (actor) {
    if (UUID.test(actor)) q.where('a.actor_user_id', actor);
    else if (actor.includes('@')) q.where('u.email', actor.toLowerCase());
    else q.where('a.actor', actor);
  }
  const action = filters.action?.trim();
  if (action) {
    if (action.endsWith('.')) q.whereLike('a.action', `${action.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
    else q.where('a.action', action);
  }
  if (filters.target) q.where({ 'a.target_type': filters.target.type, 'a.target_id': filters.target.id });
  if (beforeId) q.where('a.id', '<', beforeId);
  return q;
}
