import crypto from 'node:crypto';
import type { AuditLog, AuditRecord } from '../auth/audit-log.ts';
import type { RequestContext } from '../auth/auth-service.ts';
import type { CurrentUser } from '../auth/auth-types.ts';
import { findProfileById, findUsersByIds, isUuid, searchUsers, type UserProfile } from '../auth/users-store.ts';
import { inTransaction, type Db, type Trx } from '../db/database.ts';
import { NotFoundError, ValidationError } from '../http/errors.ts';
import { millicreditsToCredits } from '../ledger/credits.ts';
import { IdempotencyConflictError } from '../ledger/ledger-errors.ts';
import type { Ledger } from '../ledger/ledger-service.ts';
import { paginate, uuidCursor } from '../pagination.ts';
import { keyHash } from '../idempotency/idempotency-keys.ts';
import type { Balance, Lot, Page, StatementEntry, Transfer } from '../ledger/ledger-types.ts';
import type { AdjustmentBody, GrantBody } from './admin-schemas.ts';

export interface GrantOutcome {
  transfer: Transfer;
  lot: Lot;
  balance: Balance;
  /** The Idempotency-Key had been used already: nothing changed now. */
  replayed: boolean;
}

export interface AdjustmentOutcome {
  transfer: Transfer;
  balance: Balance;
  replayed: boolean;
}

/** The transfer id for an admin action: from the Idempotency-Key when given (stable), else fresh. */
function transferIdFor(action: 'admin_grant' | 'admin_adjustment', admin: CurrentUser, key: string | undefined): string {
  if (!key) return `${action}:${crypto.randomUUID()}`;
  // transfers.id is ≤ 255 characters; long keys are hashed (still deterministic).
  const part = key.length <= 150 ? key : `sha256-${keyHash(key)}`;
  return `${action}:${admin.id}:${part}`;
}

export type AdminService = ReturnType<typeof createAdminService>;

/**
 * What admins do: find users, read their ledger, grant credits (a `bonus` lot) and correct
 * balances (`adjustment`s). Every change is one transaction with its audit entry. Amounts are
 * millicredits here; routes convert at the edge.
 */
export function createAdminService(deps: { db: Db; ledger: Ledger; audit: AuditLog }) {
  const { db, ledger, audit } = deps;

  async function targetUser(id: string): Promise<UserProfile> {
    const user = isUuid(id) ? await findProfileById(db, id) : undefined;
    if (!user) throw new NotFoundError('user');
    return user;
  }

  /**
   * Runs an admin's ledger change and records it in the audit log in the same transaction. A
   * replayed transfer id is returned as is (nothing new to audit), unless its reason differs:
   * then the key was reused for another change → {@link IdempotencyConflictError}.
   */
  async function auditedCreditChange<R extends { transfer: Transfer; replayed: boolean }>(
    admin: CurrentUser,
    user: UserProfile,
    transferId: string,
    input: { credits: number; reason: string },
    action: string,
    ctx: RequestContext,
    extraDetails: Record<string, unknown>,
    change: (trx: Trx) => Promise<R>,
  ): Promise<R> {
    return inTransaction(db, async (trx) => {
      const r = await change(trx);
      if (r.replayed) {
        if (r.transfer.reason !== input.reason) throw new IdempotencyConflictError('Transfer', transferId);
        return r;
      }
      await audit.record(
        {
          actor: `admin:${admin.id}`,
          actorUserId: admin.id,
          action,
          target: { type: 'user', id: user.id },
          ...ctx,
          details: { transferId, credits: millicreditsToCredits(input.credits), reason: input.reason, ...extraDetails, email: user.email },
        },
        trx,
      );
      return r;
    });
  }

  return {
    /** Users whose email or name contains `query`, newest first; `cursor` = the previous page's `nextCursor`. */
    async listUsers(query: { query?: string; cursor?: string; limit?: number }): Promise<Page<UserProfile>> {
      return paginate({ limit: query.limit, max: 200, cursor: query.cursor, codec: uuidCursor }, (n, afterId) =>
        searchUsers(db, { query: query.query?.trim() || undefined }, n, afterId),
      );
    },

    /** A user's profile, balance and a page of their transfers. Unknown id → {@link NotFoundError}. */
    async getUser(id: string, page: { cursor?: string; limit?: number } = {}): Promise<{ user: UserProfile; balance: Balance; transfers: Page<StatementEntry> }> {
      const user = await targetUser(id);
      const [balance, transfers] = await Promise.all([ledger.getBalance(user.id), ledger.listTransfers(user.id, {}, { limit: page.limit ?? 50, cursor: page.cursor })]);
      return { user, balance, transfers };
    },

    /** Audit entries about one user (as target), newest first. */
    async userAudit(id: string, limit = 20): Promise<AuditRecord[]> {
      return (await audit.list({ target: { type: 'user', id } }, { limit })).items;
    },

    /**
     * Grants `input.credits` millicredits as a `bonus` lot (optionally expiring), recorded as
     * `admin.credits_granted`. With an Idempotency-Key the transfer id is
     * `admin_grant:<adminId>:<key>`: a retry returns the first grant (`replayed`); the same key with
     * other parameters → {@link IdempotencyConflictError} (409). Unknown user → 404.
     */
    async grant(admin: CurrentUser, userId: string, input: GrantBody, idempotencyKey: string | undefined, ctx: RequestContext): Promise<GrantOutcome> {
      const user = await targetUser(userId);
      const transferId = transferIdFor('admin_grant', admin, idempotencyKey);
      const result = await auditedCreditChange(admin, user, transferId, input, 'admin.credits_granted', ctx, { expiresAt: input.expiresAt?.toISOString() ?? null }, (trx) =>
        ledger.grant(
          {
            transferId,
            userId: user.id,
            millicredits: input.credits,
            kind: 'bonus',
            expiresAt: input.expiresAt ?? null,
            actor: `admin:${admin.id}`,
            reason: input.reason,
            reference: { type: 'admin', id: admin.id },
          },
          trx,
        ),
      );
      return { ...result, balance: await ledger.getBalance(user.id) };
    },

    /**
     * Corrects a balance by `input.credits` millicredits (signed): positive → an `adjustment` lot
     * (no expiry); negative → an `adjustment` debit, which throws InsufficientCreditsError (402)
     * rather than take available below zero. Recorded as `admin.credits_adjusted`. Idempotency as
     * for {@link grant} (`admin_adjustment:<adminId>:<key>`). Zero → ValidationError.
     */
    async adjust(admin: CurrentUser, userId: string, input: AdjustmentBody, idempotencyKey: string | undefined, ctx: RequestContext): Promise<AdjustmentOutcome> {
      if (input.credits === 0) throw new ValidationError([{ field: 'body.credits', message: 'must not be zero' }]);
      const user = await targetUser(userId);
      const transferId = transferIdFor('admin_adjustment', admin, idempotencyKey);
      const attribution = { actor: `admin:${admin.id}`, reason: input.reason, reference: { type: 'admin', id: admin.id } };
      const result = await auditedCreditChange<{ transfer: Transfer; replayed: boolean }>(admin, user, transferId, input, 'admin.credits_adjusted', ctx, {}, (trx) =>
        input.credits > 0
          ? ledger.grant({ transferId, userId: user.id, millicredits: input.credits, kind: 'adjustment', expiresAt: null, ...attribution }, trx)
          : ledger.debit({ transferId, userId: user.id, millicredits: -input.credits, kind: 'adjustment', ...attribution }, trx),
      );
      return { transfer: result.transfer, replayed: result.replayed, balance: await ledger.getBalance(user.id) };
    },

    /** Names and emails of the users among `ids`, for pages that show who did something. */
    async peopleByIds(ids: readonly string[]): Promise<Map<string, { name: string; email: string }>> {
      return new Map((await findUsersByIds(db, ids)).map((u) => [u.id, { name: u.name, email: u.email }]));
    },
  };
}
