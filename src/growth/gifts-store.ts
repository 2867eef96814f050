import type { Db, Trx } from '../db/database.ts';

export type GiftStatus = 'delivered' | 'pending_claim' | 'claimed' | 'returned';

export interface Gift {
  id: string;
  senderId: string;
  toEmail: string;
  recipientId: string | null;
  millicredits: number;
  message: string | null;
  status: GiftStatus;
  transferId: string;
  claimExpiresAt: Date | null;
  lotExpiresAt: Date | null;
  settleTransferId: string | null;
  createdAt: Date;
  settledAt: Date | null;
}

interface DbGiftRow {
  id: string;
  sender_id: string;
  to_email: string;
  recipient_id: string | null;
  millicredits: string;
  message: string | null;
  status: GiftStatus;
  transfer_id: string;
  claim_expires_at: Date | null;
  lot_expires_at: Date | null;
  settle_transfer_id: string | null;
  created_at: Date;
  settled_at: Date | null;
}

function mapRow(r: DbGiftRow): Gift {
  return {
    id: r.id,
    senderId: r.sender_id,
    toEmail: r.to_email,
    recipientId: r.recipient_id,
    millicredits: Number(r.millicredits),
    message: r.message,
    status: r.status,
    transferId: r.transfer_id,
    claimExpiresAt: r.claim_expires_at,
    lotExpiresAt: r.lot_expires_at,
    settleTransferId: r.settle_transfer_id,
    createdAt: r.created_at,
    settledAt: r.settled_at,
  };
}

export async function insertGift(
  trx: Trx,
  g: { id: string; senderId: string; toEmail: string; recipientId: string | null; millicredits: number; message: string | null; status: GiftStatus; transferId: string; claimTokenHash: string | null; claimExpiresAt: Date | null; lotExpiresAt: Date | null },
): Promise<Gift> {
  const [row] = await trx('gifts')
    .insert({
      id: g.id,
      sender_id: g.senderId,
      to_email: g.toEmail,
      recipient_id: g.recipientId,
      millicredits: g.millicredits,
      message: g.message,
      status: g.status,
      transfer_id: g.transferId,
      claim_token_hash: g.claimTokenHash,
      claim_expires_at: g.claimExpiresAt,
      lot_expires_at: g.lotExpiresAt,
    })
    .returning('*');
  return mapRow(row as DbGiftRow);
}

export async function findByTokenHash(q: Db | Trx, hash: string, lock = false): Promise<Gift | undefined> {
  const query = q('gifts').select('*').where({ claim_token_hash: hash }).first();
  const row = (await (lock ? query.forUpdate() : query)) as DbGiftRow | undefined;
  return row ? mapRow(row) : undefined;
}

export async function findGift(q: Db | Trx, id: string, lock = false): Promise<Gift | undefined> {
  const query = q('gifts').select('*').where({ id }).first();
  const row = (await (lock ? query.forUpdate() : query)) as DbGiftRow | undefined;
  return row ? mapRow(row) : undefined;
}

export async function settleGift(trx: Trx, id: string, fields: { status: 'claimed' | 'returned'; recipientId?: string; settleTransferId: string; at: Date }): Promise<void> {
  await trx('gifts')
    .where({ id })
    .update({ status: fields.status, settle_transfer_id: fields.settleTransferId, settled_at: fields.at, ...(fields.recipientId ? { recipient_id: fields.recipientId } : {}) });
}

/** Ids of gifts still waiting for a claim past their deadline (`now`). */
export async function dueReturns(q: Db | Trx, now: Date, limit = 200): Promise<string[]> {
  const rows = await q('gifts').select('id').where({ status: 'pending_claim' }).where('claim_expires_at', '<=', now).orderBy('claim_expires_at').limit(limit);
  return rows.map((r) => r.id as string);
}

/** The gifts a user sent, newest first. */
export async function listSent(q: Db | Trx, senderId: string, limit = 20): Promise<Gift[]> {
  const rows = await q('gifts').select('*').where({ sender_id: senderId }).orderBy('created_at', 'desc').limit(limit);
  return (rows as DbGiftRow[]).map(mapRow);
}
