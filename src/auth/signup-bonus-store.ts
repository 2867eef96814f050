import type { Trx } from '../db/database.ts';

/**
 * The address a sign-up bonus is counted against: the normalized email without a `+tag` in its
 * local part (`ann+promo@example.com` → `ann@example.com`), since plus-addresses deliver to the
 * same mailbox at every large provider. The same rule as migration 20261130110000.
 */
export function canonicalEmail(email: string): string {
  return email.toLowerCase().replace(/^([^+@]*)\+[^@]*@/, '$1@');
}

/**
 * Claims the sign-up bonus of `email`'s canonical address for `userId`, in the sign-up's
 * transaction. True when this user is the first to claim it; false when an earlier account (or a
 * concurrent sign-up that commits first: the primary key decides) already did.
 */
export async function claimSignupBonus(trx: Trx, email: string, userId: string): Promise<boolean> {
  const r = await trx.raw(`INSERT INTO signup_bonus_claims (canonical_email, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING RETURNING user_id`, [
    canonicalEmail(email),
    userId,
  ]);
  return r.rows.length === 1;
}
