import type { Db, Trx } from '../db/database.ts';

/** A promo code as the admin set it up, with how often it was redeemed. Amounts in millicredits. */
export interface PromoCode {
  id: string;
  code: string;
  millicredits: number;
  creditsExpireDays: number | null;
  validFrom: Date | null;
  validUntil: Date | null;
  maxRedemptions: number | null;
  perUserLimit: number;
  newUsersOnly: boolean;
  redemptionCount: number;
  createdBy: string;
  createdAt: Date;
  deactivatedAt: Date | null;
}

interface DbPromoCodeRow {
  id: string;
  code: string;
  credits_millicredits: string;
  credits_expire_days: number | null;
  valid_from: Date | null;
  valid_until: Date | null;
  max_redemptions: number | null;
  per_user_limit: number;
  new_users_only: boolean;
  redemption_count: number;
  created_by: string;
  created_at: Date;
  deactivated_at: Date | null;
}

function mapRow(r: DbPromoCodeRow): PromoCode {
  return {
    id: r.id,
    code: r.code,
    millicredits: Number(r.credits_millicredits),
    creditsExpireDays: r.credits_expire_days,
    validFrom: r.valid_from,
    validUntil: r.valid_until,
    maxRedemptions: r.max_redemptions,
    perUserLimit: r.per_user_limit,
    newUsersOnly: r.new_users_only,
    redemptionCount: r.redemption_count,
    createdBy: r.created_by,
    createdAt: r.created_at,
    deactivatedAt: r.deactivated_at,
  };
}

/** A code as the admin sets it up: a {@link PromoCode} before it exists. */
export type NewPromoCode = Omit<PromoCode, 'id' | 'redemptionCount' | 'createdAt' | 'deactivatedAt'>;

/** Inserts a code; a code taken in any letter case raises 23505 on `promo_codes_code_unique`. */
export async function insertPromoCode(q: Db | Trx, c: NewPromoCode): Promise<PromoCode> {
  const [row] = await q('promo_codes')
    .insert({
      code: c.code,
      credits_millicredits: c.millicredits,
      credits_expire_days: c.creditsExpireDays,
      valid_from: c.validFrom,
      valid_until: c.validUntil,
      max_redemptions: c.maxRedemptions,
      per_user_limit: c.perUserLimit,
      new_users_only: c.newUsersOnly,
      created_by: c.createdBy,
    })
    .returning('*');
  return mapRow(row as DbPromoCodeRow);
}

/** Every code, newest first (an admin list: codes are few). */
export async function listPromoCodes(q: Db | Trx, limit = 200): Promise<PromoCode[]> {
  const rows = await q('promo_codes').select('*').orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit);
  return (rows as DbPromoCodeRow[]).map(mapRow);
}

/** The code with this text in any letter case; `lock` takes its row lock (redemptions serialize on it). */
export async function findPromoCodeByCode(q: Db | Trx, code: string, lock = false): Promise<PromoCode | undefined> {
  const query = q('promo_codes').select('*').whereRaw('upper(code) = upper(?)', [code]).first();
  const row = (await (lock ? query.forUpdate() : query)) as DbPromoCodeRow | undefined;
  return row ? mapRow(row) : undefined;
}

export async function findPromoCode(q: Db | Trx, id: string): Promise<PromoCode | undefined> {
  const row = (await q('promo_codes').select('*').where({ id }).first()) as DbPromoCodeRow | undefined;
  return row ? mapRow(row) : undefined;
}

/** Sets `deactivated_at` (once). Returns the code, or undefined when there is none. */
export async function deactivatePromoCode(q: Db | Trx, id: string): Promise<PromoCode | undefined> {
  const [row] = await q('promo_codes').where({ id }).update({ deactivated_at: q.raw('COALESCE(deactivated_at, now())') }).returning('*');
  return row ? mapRow(row as DbPromoCodeRow) : undefined;
}

/** How many times `userId` redeemed the code (call under the code's row lock). */
export async function countUserRedemptions(trx: Trx, promoCodeId: string, userId: string): Promise<number> {
  const r = await trx('promo_redemptions').where({ promo_code_id: promoCodeId, user_id: userId }).count<{ n: string }[]>({ n: '*' });
  return Number(r[0]!.n);
}

/** Records a redemption and counts it on the code (the CHECK refuses a count above max_redemptions). */
export async function recordRedemption(trx: Trx, r: { promoCodeId: string; userId: string; seq: number; transferId: string }): Promise<void> {
  await trx('promo_redemptions').insert({ promo_code_id: r.promoCodeId, user_id: r.userId, seq: r.seq, transfer_id: r.transferId });
  await trx('promo_codes').where({ id: r.promoCodeId }).increment('redemption_count', 1);
}
