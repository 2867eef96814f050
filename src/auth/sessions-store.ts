import type { Db, Trx } from '../db/database.ts';

/** SQL on connect-pg-simple's `session` table (sid, sess json, expire), by the `userId` inside `sess`. */

export interface DbSessionRow {
  sid: string;
  sess: {
    cookie?: { expires?: string | null; originalMaxAge?: number | null };
    userId?: string;
    authenticatedAt?: number;
    userAgent?: string;
    ip?: string;
  };
}

/** The user's unexpired sessions, most recently active first. */
export async function listUserSessions(db: Db | Trx, userId: string): Promise<DbSessionRow[]> {
  const r = await db.raw<{ rows: DbSessionRow[] }>(
    `SELECT sid, sess FROM "session" WHERE sess->>'userId' = ? AND expire > now()::timestamp ORDER BY expire DESC`,
    [userId],
  );
  return r.rows;
}

/** Deletes the user's sessions except `keepSid` (all when undefined). Returns how many. */
export async function deleteUserSessions(db: Db | Trx, userId: string, keepSid?: string): Promise<number> {
  const q = db('session').whereRaw(`sess->>'userId' = ?`, [userId]);
  if (keepSid !== undefined) q.whereNot('sid', keepSid);
  return q.delete();
}

/** Deletes one stored session by its sid. Returns 1 when it existed. */
export async function deleteSession(db: Db | Trx, sid: string): Promise<number> {
  return db('session').where({ sid }).delete();
}
