import type { Db, Trx } from '../db/database.ts';

/** SQL of one-time auth tokens (`auth_tokens`): stored as SHA-256 hashes, single use, with an expiry. */

export type TokenPurpose = 'password_reset' | 'email_verification';

export interface TokenRow {
  id: string;
  userId: string;
  email: string;
  expiresAt: Date;
}

export async function insertToken(trx: Db | Trx, t: { userId: string; purpose: TokenPurpose; tokenHash: string; email: string; expiresAt: Date }): Promise<void> {
  await trx('auth_tokens').insert({ user_id: t.userId, purpose: t.purpose, token_hash: t.tokenHash, email: t.email, expires_at: t.expiresAt });
}

/** The unused, unexpired token with this hash (at `now`), without using it. */
export async function findUsableToken(db: Db | Trx, purpose: TokenPurpose, tokenHash: string, now: Date): Promise<TokenRow | undefined> {
  const row = await db('auth_tokens').where({ purpose, token_hash: tokenHash }).whereNull('used_at').andWhere('expires_at', '>', now).first();
  return row ? { id: row.id, userId: row.user_id, email: row.email, expiresAt: row.expires_at } : undefined;
}

/**
 * Uses the token: one conditional UPDATE, so of two concurrent uses exactly one gets the row.
 * Undefined when it is unknown, used or expired at `now`.
 */
export async function consumeToken(trx: Trx, purpose: TokenPurpose, tokenHash: string, now: Date): Promise<TokenRow | undefined> {
  const [row] = await trx('auth_tokens')
    .where({ purpose, token_hash: tokenHash })
    .whereNull('used_at')
    .andWhere('expires_at', '>', now)
    .update({ used_at: now })
    .returning(['id', 'user_id', 'email', 'expires_at']);
  return row ? { id: row.id, userId: row.user_id, email: row.email, expiresAt: row.expires_at } : undefined;
}

/** Retires every other unused token of the user for `purpose` (a new password makes old links useless). */
export async function retireTokens(trx: Trx, userId: string, purpose: TokenPurpose, now: Date): Promise<void> {
  await trx('auth_tokens').where({ user_id: userId, purpose }).whereNull('used_at').update({ used_at: now });
}

export async function setPasswordHash(trx: Trx, userId: string, passwordHash: string): Promise<void> {
  await trx('users').where({ id: userId }).update({ password_hash: passwordHash, updated_at: trx.fn.now() });
}

/** Marks the address verified if the user's email is still the one the token was sent to. */
export async function markEmailVerified(trx: Trx, userId: string, email: string, now: Date): Promise<boolean> {
  const n = await trx('users').where({ id: userId, email }).update({ email_verified_at: trx.raw('coalesce(email_verified_at, ?)', [now]) });
  return n > 0;
}

export async function userVerifiedAt(db: Db, userId: string): Promise<Date | null> {
  const row = await db('users').where({ id: userId }).first('email_verified_at');
  return row?.email_verified_at ?? null;
}
