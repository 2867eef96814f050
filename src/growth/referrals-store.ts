import type { Db, Trx } from '../db/database.ts';

export type ReferralStatus = 'signed_up' | 'rewarded' | 'reversed' | 'self_referral' | 'over_monthly_cap';

export interface Referral {
  id: string;
  referrerId: string;
  refereeId: string;
  status: ReferralStatus;
  refereeTransferId: string | null;
  rewardTransferId: string | null;
  rewardPaymentId: string | null;
  rewardedAt: Date | null;
  reversedAt: Date | null;
  createdAt: Date;
}

interface DbReferralRow {
  id: string;
  referrer_id: string;
  referee_id: string;
  status: ReferralStatus;
  referee_transfer_id: string | null;
  reward_transfer_id: string | null;
  reward_payment_id: string | null;
  rewarded_at: Date | null;
  reversed_at: Date | null;
  created_at: Date;
}

function mapRow(r: DbReferralRow): Referral {
  return {
    id: r.id,
    referrerId: r.referrer_id,
    refereeId: r.referee_id,
    status: r.status,
    refereeTransferId: r.referee_transfer_id,
    rewardTransferId: r.reward_transfer_id,
    rewardPaymentId: r.reward_payment_id,
    rewardedAt: r.rewarded_at,
    reversedAt: r.reversed_at,
    createdAt: r.created_at,
  };
}

/** The user's referral code, or undefined. `lock` takes the row lock (serializes the referrer's rewards). */
export async function findCodeOf(q: Db | Trx, userId: string, lock = false): Promise<string | undefined> {
  const query = q('referral_codes').select('code').where({ user_id: userId }).first();
  const row = await (lock ? query.forUpdate() : query);
  return row?.code as string | undefined;
}

/** Inserts a code for the user unless they have one (a taken code raises 23505 on `referral_codes_code_key`). */
export async function insertCode(q: Db | Trx, userId: string, code: string): Promise<void> {
  await q('referral_codes').insert({ user_id: userId, code }).onConflict('user_id').ignore();
}

export async function findReferrerByCode(q: Db | Trx, code: string): Promise<string | undefined> {
  const row = await q('referral_codes').select('user_id').where({ code: code.toLowerCase() }).first();
  return row?.user_id as string | undefined;
}

export async function rememberBrowser(q: Db | Trx, userId: string, browserId: string): Promise<void> {
  await q('referral_browsers').insert({ user_id: userId, browser_id: browserId }).onConflict(['browser_id', 'user_id']).ignore();
}

export async function browserSeenFor(q: Db | Trx, userId: string, browserId: string): Promise<boolean> {
  return Boolean(await q('referral_browsers').where({ user_id: userId, browser_id: browserId }).first());
}

export async function insertReferral(trx: Trx, r: { referrerId: string; refereeId: string; status: ReferralStatus; refereeTransferId: string | null }): Promise<Referral> {
  const [row] = await trx('referrals')
    .insert({ referrer_id: r.referrerId, referee_id: r.refereeId, status: r.status, referee_transfer_id: r.refereeTransferId })
    .returning('*');
  return mapRow(row as DbReferralRow);
}

export async function findByReferee(q: Db | Trx, refereeId: string, lock = false): Promise<Referral | undefined> {
  const query = q('referrals').select('*').where({ referee_id: refereeId }).first();
  const row = (await (lock ? query.forUpdate() : query)) as DbReferralRow | undefined;
  return row ? mapRow(row) : undefined;
}

export async function findByRewardPayment(trx: Trx, paymentId: string): Promise<Referral | undefined> {
  const row = (await trx('referrals').select('*').where({ reward_payment_id: paymentId }).forUpdate().first()) as DbReferralRow | undefined;
  return row ? mapRow(row) : undefined;
}

export async function setStatus(trx: Trx, id: string, fields: Partial<{ status: ReferralStatus; reward_transfer_id: string; reward_payment_id: string; rewarded_at: Date; reversed_at: Date }>): Promise<void> {
  await trx('referrals').where({ id }).update(fields);
}

/** Rewards of `referrerId` counted against the monthly cap: rewarded (not reversed) since `since`. */
export async function rewardsSince(trx: Trx, referrerId: string, since: Date): Promise<number> {
  const r = await trx('referrals').where({ referrer_id: referrerId, status: 'rewarded' }).where('rewarded_at', '>=', since).count<{ n: string }[]>({ n: '*' });
  return Number(r[0]!.n);
}

/** The referrer's figures: people referred (self-referrals not counted) and credits earned (kept rewards). */
export async function summaryOf(q: Db | Trx, referrerId: string): Promise<{ referred: number; rewarded: number; earnedMillicredits: number }> {
  const r = await q.raw(
    `SELECT count(*) FILTER (WHERE r.status <> 'self_referral') AS referred,
            count(*) FILTER (WHERE r.status = 'rewarded') AS rewarded,
            COALESCE(sum(t.amount) FILTER (WHERE r.status = 'rewarded'), 0) AS earned
       FROM referrals r LEFT JOIN transfers t ON t.id = r.reward_transfer_id
      WHERE r.referrer_id = ?`,
    [referrerId],
  );
  const row = r.rows[0];
  return { referred: Number(row.referred), rewarded: Number(row.rewarded), earnedMillicredits: Number(row.earned) };
}

/** Another payment of the user that was paid before (so `paymentId` is not their first). */
export async function hasEarlierPaidPayment(trx: Trx, userId: string, paymentId: string): Promise<boolean> {
  return Boolean(await trx('payments').where({ user_id: userId }).whereNot({ id: paymentId }).whereNotNull('paid_at').first());
}

export async function cachedFingerprint(q: Db | Trx, paymentId: string): Promise<string | undefined> {
  const row = await q('payment_card_fingerprints').select('fingerprint').where({ payment_id: paymentId }).first();
  return row?.fingerprint as string | undefined;
}

export async function cacheFingerprint(q: Db | Trx, paymentId: string, userId: string, fingerprint: string): Promise<void> {
  await q('payment_card_fingerprints').insert({ payment_id: paymentId, user_id: userId, fingerprint }).onConflict('payment_id').ignore();
}

/** The user's paid payments (newest first, at most `limit`) with their payment intents. */
export async function paidPaymentsOf(q: Db | Trx, userId: string, limit = 20): Promise<Array<{ id: string; paymentIntentId: string | null }>> {
  const rows = await q('payments').select('id', 'payment_intent_id').where({ user_id: userId }).whereNotNull('paid_at').orderBy('paid_at', 'desc').limit(limit);
  return rows.map((r) => ({ id: r.id as string, paymentIntentId: r.payment_intent_id as string | null }));
}
