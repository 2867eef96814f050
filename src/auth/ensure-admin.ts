import { inTransaction, type Db } from '../db/database.ts';
import { ValidationError } from '../http/errors.ts';
import { parseOrThrow } from '../http/validate.ts';
import { createAuditLog } from './audit-log.ts';
import type { CurrentUser } from './auth-types.ts';
import { Email, Name } from './auth-schemas.ts';
import { hashPassword, passwordProblems } from './passwords.ts';
import { deleteUserSessions } from './sessions-store.ts';
import { findUserRowByEmail, mapUser, setUserRole } from './users-store.ts';

export interface EnsureAdminResult {
  user: CurrentUser;
  /** `created`: a new admin account; `promoted`: an existing user became admin; `unchanged`: already admin. */
  outcome: 'created' | 'promoted' | 'unchanged';
}

/**
 * Makes sure `email` is an admin: creates the account (role `admin`, no signup bonus) when there
 * is none, or promotes the existing user. An existing account keeps its password. A promotion ends
 * the user's sessions (a privilege change gets a fresh session id at the next login). Recorded in
 * the audit log as `admin.user_created` / `admin.user_promoted` (actor `system`).
 *
 * Safe to run at every start and from several processes at once. Throws {@link ValidationError}
 * when the email is invalid or, for a new account, the password breaks the policy.
 */
export async function ensureAdmin(db: Db, input: { email: string; password: string; name?: string }): Promise<EnsureAdminResult> {
  const email = parseOrThrow(Email, input.email, 'email');
  const name = parseOrThrow(Name, input.name ?? 'Admin', 'name');
  const audit = createAuditLog(db);

  const existing = await findUserRowByEmail(db, email);
  if (!existing) {
    const problems = passwordProblems(input.password, email);
    if (problems.length > 0) throw new ValidationError(problems.map((message) => ({ field: 'password', message })));
    const passwordHash = await hashPassword(input.password);
    const created = await inTransaction(db, async (trx) => {
      const inserted = await trx('users')
        .insert({ email, name, password_hash: passwordHash, role: 'admin' })
        .onConflict('email')
        .ignore()
        .returning(['id', 'email', 'name', 'role']);
      const row = inserted[0] as CurrentUser | undefined;
      if (!row) return undefined; // another process created it meanwhile
      await audit.record({ actor: 'system', action: 'admin.user_created', target: { type: 'user', id: row.id }, details: { email, role: 'admin' } }, trx);
      return row;
    });
    if (created) return { user: created, outcome: 'created' };
  }

  return inTransaction(db, async (trx) => {
    const row = (await findUserRowByEmail(trx, email))!;
    if (row.role === 'admin') return { user: mapUser(row), outcome: 'unchanged' as const };
    const changed = (await setUserRole(trx, row.id, 'admin'))!;
    await deleteUserSessions(trx, row.id);
    await audit.record(
      { actor: 'system', action: 'admin.user_promoted', target: { type: 'user', id: row.id }, details: { email, from: changed.before.role, to: 'admin' } },
      trx,
    );
    return { user: changed.after, outcome: 'promoted' as const };
  });
}
