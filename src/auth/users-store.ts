import type { Db, Trx } from '../db/database.ts';
import type { CurrentUser } from './auth-types.ts';

export interface DbUserRow {
  id: string;
  email: string;
  name: string;
  password_hash: string;
  role: 'user' | 'admin';
  created_at: Date;
  updated_at: Date;
}

export function mapUser(r: DbUserRow): CurrentUser {
  return { id: r.id, email: r.email, name: r.name, role: r.role };
}

export async function findUserById(db: Db | Trx, id: string): Promise<CurrentUser | undefined> {
  if (!/^[0-9a-f-]{36}$/i.test(id)) return undefined;
  const row = await db<DbUserRow>('users').where({ id }).first();
  return row ? mapUser(row) : undefined;
}
