import { queryNamed, type Db, type Trx } from '../db/database.ts';
import type { CurrentUser, Role } from './auth-types.ts';

/** SQL of the users table. Emails are stored normalized (trimmed, lower-case; a CHECK enforces it). */

export interface DbUserRow {
  id: string;
  email: string;
  name: string;
  password_hash: string;
  role: Role;
  created_at: Date;
  updated_at: Date;
  last_login_at: Date | null;
}

/** A user as admins see them. */
export interface UserProfile extends CurrentUser {
  createdAt: Date;
  lastLoginAt: Date | null;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** True when `id` has the shape of a UUID (anything else cannot be a user id: 404, not a SQL error). */
export function isUuid(id: string): boolean {
  return UUID.test(id);
}

/** A users row as the signed-in user (no password hash). */
export function mapUser(r: DbUserRow): CurrentUser {
  return { id: r.id, email: r.email, name: r.name, role: r.role };
}

/** A users row as admins see it (no password hash). */
export function mapProfile(r: DbUserRow): UserProfile {
  return { ...mapUser(r), createdAt: r.created_at, lastLoginAt: r.last_login_at ?? null };
}

/** The user with this id; undefined when there is none or `id` is not a UUID. */
export async function findUserById(db: Db | Trx, id: string): Promise<CurrentUser | undefined> {
  if (!isUuid(id)) return undefined;
  const row = await db<DbUserRow>('users').where({ id }).first();
  return row ? mapUser(row) : undefined;
}

/**
 * {@link findUserById} for the per-request hot path (`loadUser`): one named statement, planned once
 * per connection.
 */
export async function findCurrentUser(db: Db, id: string): Promise<CurrentUser | undefined> {
  if (!isUuid(id)) return undefined;
  const [row] = await queryNamed<DbUserRow>(db, 'tally_current_user', 'SELECT id, email, name, role FROM users WHERE id = $1', [id]);
  return row ? mapUser(row) : undefined;
}

/** Like {@link findUserById}, with sign-up and last-login times. */
export async function findProfileById(db: Db | Trx, id: string): Promise<UserProfile | undefined> {
  if (!isUuid(id)) return undefined;
  const row = await db<DbUserRow>('users').where({ id }).first();
  return row ? mapProfile(row) : undefined;
}

/** The user row (with its password hash) for a normalized email. */
export async function findUserRowByEmail(db: Db | Trx, email: string): Promise<DbUserRow | undefined> {
  return db<DbUserRow>('users').where({ email }).first();
}

/** Inserts a user. A taken email raises PostgreSQL's unique violation (23505, `users_email_unique`). */
export async function insertUser(
  trx: Db | Trx,
  u: { email: string; name: string; passwordHash: string; role: Role },
): Promise<CurrentUser> {
  const [row] = await trx<DbUserRow>('users')
    .insert({ email: u.email, name: u.name, password_hash: u.passwordHash, role: u.role })
    .returning('*');
  return mapUser(row as DbUserRow);
}

/** Sets the role; returns the user as it was before (locked FOR UPDATE), or undefined. */
export async function setUserRole(trx: Trx, id: string, role: Role): Promise<{ before: CurrentUser; after: CurrentUser } | undefined> {
  const row = await trx<DbUserRow>('users').where({ id }).forUpdate().first();
  if (!row) return undefined;
  const [updated] = await trx<DbUserRow>('users')
    .where({ id })
    .update({ role, updated_at: trx.fn.now() as unknown as Date })
    .returning('*');
  return { before: mapUser(row), after: mapUser(updated as DbUserRow) };
}

/** Records a successful sign-in (`last_login_at = now()`). */
export async function touchLastLogin(db: Db | Trx, id: string): Promise<void> {
  await db('users').where({ id }).update({ last_login_at: db.fn.now() });
}

/**
 * Users whose email or name contains `query` (case-insensitive), newest first, keyset-paginated
 * on (created_at, id). `afterId` is the last user of the previous page (compared at full
 * microsecond precision in SQL, which a JS Date would lose). Returns up to `limit` rows.
 */
export async function searchUsers(db: Db, filters: { query?: string }, limit: number, afterId?: string): Promise<UserProfile[]> {
  const q = db<DbUserRow>('users')
    .orderBy([
      { column: 'created_at', order: 'desc' },
      { column: 'id', order: 'desc' },
    ])
    .limit(limit)
    // Visitors' trial leads (issue 17) are not people with accounts.
    .whereNot('role', 'lead');
  if (filters.query) {
    const pattern = `%${filters.query.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    q.where((w) => w.whereILike('email', pattern).orWhereILike('name', pattern));
  }
  if (afterId) q.whereRaw('(created_at, id) < (SELECT u.created_at, u.id FROM users u WHERE u.id = ?)', [afterId]);
  return (await q).map(mapProfile);
}

/** The users among `ids` (non-UUIDs ignored), for showing names instead of ids. */
export async function findUsersByIds(db: Db | Trx, ids: readonly string[]): Promise<CurrentUser[]> {
  const valid = [...new Set(ids)].filter(isUuid);
  if (valid.length === 0) return [];
  return (await db<DbUserRow>('users').whereIn('id', valid)).map(mapUser);
}
