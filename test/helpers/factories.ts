import crypto from 'node:crypto';
import type { Db } from '../../src/db/database.ts';
import { checkBooks } from '../../src/ledger/ledger-check-store.ts';
import type { Ledger } from '../../src/ledger/ledger-service.ts';

export interface TestUser {
  id: string;
  email: string;
  name: string;
  role: 'user' | 'admin';
}

/** Inserts a user row directly (no password hashing; for ledger-level tests). */
export async function buildUser(db: Db, overrides: Partial<TestUser> = {}): Promise<TestUser> {
  const n = crypto.randomBytes(4).toString('hex');
  const [row] = await db('users')
    .insert({
      email: overrides.email ?? `user-${n}@example.test`,
      name: overrides.name ?? `User ${n}`,
      password_hash: 'x',
      role: overrides.role ?? 'user',
    })
    .returning(['id', 'email', 'name', 'role']);
  return row as TestUser;
}

/** Grants `credits` (whole or decimal credits) to the user as a non-expiring `bonus` lot. */
export async function fundAccount(ledger: Ledger, userId: string, millicredits: number, expiresAt: Date | null = null) {
  return ledger.grant({
    transferId: `fund:${crypto.randomUUID()}`,
    userId,
    millicredits,
    kind: 'bonus',
    actor: 'system',
    reason: 'test funding',
    expiresAt,
  });
}

/** Runs the ledger check and returns the violations (expect it to equal []). */
export function booksViolations(db: Db) {
  return checkBooks(db, { sweepIntervalMs: 60_000 });
}
