import crypto from 'node:crypto';
import type { CurrentUser } from '../auth/auth-types.ts';
import type { Config } from '../config.ts';
import { inTransaction, isUniqueViolation, type Db, type Trx } from '../db/database.ts';
import { ConflictError, NotFoundError, ValidationError } from '../http/errors.ts';
import { keyHash, type IdempotencyKeys } from '../idempotency/idempotency-keys.ts';
import { formatCredits } from '../ledger/credits.ts';
import type { Ledger } from '../ledger/ledger-service.ts';
import type { Lot } from '../ledger/ledger-types.ts';
import type { EmailOutbox } from '../notifications/email-outbox.ts';
import { GoneError } from './growth-errors.ts';
import * as store from './gifts-store.ts';
import type { Gift } from './gifts-store.ts';
import { moveCredits } from './move-credits.ts';

export type Gifts = ReturnType<typeof createGifts>;

/** Only purchased credits can be given (issue 17): not bonus, promo, trial or subscription credits. */
export const GIFTABLE_SOURCES = ['purchase'] as const;

const GIFT_OPERATION = 'credits.gift';

export interface GiftInput {
  toEmail: string;
  millicredits: number;
  message?: string | undefined;
}

/** The stored answer of a gift request (replayed for its Idempotency-Key). */
export interface GiftResponse {
  statusCode: number;
  body: Record<string, unknown>;
  replayed: boolean;
}

const tokenHash = (token: string) => crypto.createHash('sha256').update(`gift-claim:${token}`).digest('hex');

/** A uuid derived from (user, Idempotency-Key): a retried request names the same gift. */
function giftIdFor(userId: string, key: string): string {
  const h = keyHash('gift', userId, key);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/**
 * Gifts of credits (issue 17). `send` moves only PURCHASED credits from the sender, in ONE
 * transfer drawn in spending order, as one `gift` lot that keeps the soonest expiry of what it
 * came from (growth_move_credits_op): straight to the recipient when the address has an account,
 * else into the `gift_codes` system account behind a claim link valid `GIFT_CLAIM_DAYS`, after
 * which `returnExpired` gives it back to the sender as a `gift_return` lot. The recipient is
 * emailed through the outbox in the gift's transaction. A claim is once (the gift row's lock).
 * The sender's account lock orders a gift and a spend of the same credits: whichever comes
 * second sees what the first left (402 when short).
 */
export function createGifts(deps: { db: Db; ledger: Ledger; outbox: EmailOutbox; idempotency: IdempotencyKeys; config: Pick<Config, 'appUrl' | 'growth'>; clock?: () => Date }) {
  const { db, ledger, outbox, idempotency, config } = deps;
  const now = deps.clock ?? (() => new Date());
  const claimDays = config.growth.giftClaimDays;

  function giftJson(g: Gift) {
    return {
      id: g.id,
      toEmail: g.toEmail,
      credits: Number(formatCredits(g.millicredits)),
      message: g.message,
      status: g.status,
      claimExpiresAt: g.claimExpiresAt?.toISOString() ?? null,
      creditsExpireAt: g.lotExpiresAt?.toISOString() ?? null,
      createdAt: g.createdAt.toISOString(),
    };
  }

  async function send(sender: CurrentUser, input: GiftInput, key: string | undefined): Promise<GiftResponse> {
    const requestHash = keyHash(input.toEmail, String(input.millicredits), input.message ?? '');
    if (key) {
      const known = await idempotency.find(sender.id, key);
      if (known) {
        if (known.operation !== GIFT_OPERATION || known.requestHash !== requestHash) {
          throw new ConflictError('This Idempotency-Key was used for another request.', 'idempotency_key_reused');
        }
        return { statusCode: known.statusCode, body: known.response, replayed: true };
      }
    }
    if (input.toEmail === sender.email) throw new ValidationError([{ field: 'body.toEmail', message: 'must be someone else: you cannot give credits to yourself' }]);
    const id = key ? giftIdFor(sender.id, key) : crypto.randomUUID();
    try {
      return await inTransaction(db, async (trx) => {
        const recipient = await trx('users').select('id', 'name', 'email').where({ email: input.toEmail }).whereNot({ role: 'lead' }).first();
        const token = recipient ? null : crypto.randomBytes(24).toString('base64url');
        const transferId = `gift:${id}`;
        const moved = await moveCredits(
          trx,
          {
            transferId,
            fromUserId: sender.id,
            toUserId: recipient ? (recipient.id as string) : null,
            millicredits: input.millicredits,
            sources: GIFTABLE_SOURCES,
            kind: 'gift',
            actor: `user:${sender.id}`,
            reason: recipient ? `Gift to ${input.toEmail}` : `Gift to ${input.toEmail}, waiting to be claimed`,
            reference: { type: 'gift', id },
          },
          now(),
        );
        const gift = await store.insertGift(trx, {
          id,
          senderId: sender.id,
          toEmail: input.toEmail,
          recipientId: recipient ? (recipient.id as string) : null,
          millicredits: input.millicredits,
          message: input.message ?? null,
          status: recipient ? 'delivered' : 'pending_claim',
          transferId,
          claimTokenHash: token ? tokenHash(token) : null,
          claimExpiresAt: token ? new Date(now().getTime() + claimDays * 86_400_000) : null,
          lotExpiresAt: moved.expiresAt,
        });
        const link = token ? `${config.appUrl}/gifts/claim/${token}` : `${config.appUrl}/account#lots`;
        await outbox.enqueue(trx, {
          type: 'gift_received',
          to: input.toEmail,
          userId: recipient ? (recipient.id as string) : null,
          dedupeKey: `gift:${id}`,
          data: { name: recipient ? (recipient.name as string) : 'there', senderName: sender.name, credits: formatCredits(input.millicredits), message: gift.message, link, claimDays: token ? claimDays : null },
        });
        // The claim link is in the email only: the API never returns it.
        const body = { gift: giftJson(gift), balance: { available: Number(formatCredits((await ledger.getAvailable(sender.id, trx)))) } };
        if (key) {
          const ok = await idempotency.remember(trx, { userId: sender.id, key, operation: GIFT_OPERATION, requestHash, statusCode: 201, response: body, resource: { type: 'gift', id } });
          if (!ok) throw new ConflictError('A request with this Idempotency-Key is in progress.', 'idempotency_key_in_use');
        }
        return { statusCode: 201, body, replayed: false };
      });
    } catch (err) {
      // Lost a race for the same key: answer with what the first request did.
      if (key && (isUniqueViolation(err) || (err instanceof ConflictError && err.code === 'idempotency_key_in_use'))) {
        const known = await idempotency.find(sender.id, key);
        if (known && known.requestHash === requestHash) return { statusCode: known.statusCode, body: known.response, replayed: true };
      }
      throw err;
    }
  }

  return {
    send,
    giftJson,

    /** The gift behind a claim link (for the claim page), or undefined. */
    async findByToken(token: string): Promise<(Gift & { senderName: string }) | undefined> {
      if (!/^[\w-]{20,100}$/.test(token)) return undefined;
      const gift = await store.findByTokenHash(db, tokenHash(token));
      if (!gift) return undefined;
      const sender = await db('users').select('name').where({ id: gift.senderId }).first();
      return { ...gift, senderName: (sender?.name as string) ?? 'Someone' };
    },

    /**
     * Claims a waiting gift for `user`: a `gift` lot (transfer `gift_claim:<id>`) keeping the
     * credits' expiry. Once: unknown token → 404; already claimed → 409; returned or past the
     * deadline → 410. The sender cannot claim their own gift (409).
     */
    async claim(user: CurrentUser, token: string): Promise<{ gift: Gift; lot: Lot }> {
      if (!/^[\w-]{20,100}$/.test(token)) throw new NotFoundError('gift');
      return inTransaction(db, async (trx) => {
        const gift = await store.findByTokenHash(trx, tokenHash(token), true);
        if (!gift) throw new NotFoundError('gift');
        if (gift.status === 'claimed') throw new ConflictError('This gift has already been claimed.', 'gift_already_claimed');
        if (gift.status === 'returned' || (gift.claimExpiresAt && gift.claimExpiresAt <= now())) throw new GoneError('This gift has expired and went back to its sender.', 'gift_expired');
        if (gift.senderId === user.id) throw new ConflictError('You cannot claim a gift you sent.', 'own_gift');
        const settleTransferId = `gift_claim:${gift.id}`;
        const granted = await ledger.grant(
          { transferId: settleTransferId, userId: user.id, millicredits: gift.millicredits, kind: 'gift', expiresAt: gift.lotExpiresAt, actor: `user:${user.id}`, reason: 'Gift claimed', reference: { type: 'gift', id: gift.id } },
          trx,
        );
        await store.settleGift(trx, gift.id, { status: 'claimed', recipientId: user.id, settleTransferId, at: now() });
        return { gift: { ...gift, status: 'claimed', recipientId: user.id }, lot: granted.lot };
      });
    },

    /**
     * Sweeper: every gift still unclaimed past its deadline returns to its sender as a
     * `gift_return` lot (transfer `gift_return:<id>`, the credits' own expiry). Returns how many.
     */
    async returnExpired(): Promise<number> {
      let n = 0;
      for (const id of await store.dueReturns(db, now())) {
        n += await inTransaction(db, async (trx: Trx) => {
          const gift = await store.findGift(trx, id, true);
          if (!gift || gift.status !== 'pending_claim') return 0;
          const settleTransferId = `gift_return:${gift.id}`;
          await ledger.grant(
            { transferId: settleTransferId, userId: gift.senderId, millicredits: gift.millicredits, kind: 'gift_return', expiresAt: gift.lotExpiresAt, actor: 'system', reason: `Gift to ${gift.toEmail} was not claimed`, reference: { type: 'gift', id: gift.id } },
            trx,
          );
          await store.settleGift(trx, gift.id, { status: 'returned', settleTransferId, at: now() });
          return 1;
        });
      }
      return n;
    },

    /** The gifts a user sent, newest first. */
    listSent: (userId: string) => store.listSent(db, userId),
  };
}
