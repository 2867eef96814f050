import crypto from 'node:crypto';
import type Stripe from 'stripe';
import type { AuditLog } from '../auth/audit-log.ts';
import { erasePersonalAuditData } from '../auth/audit-store.ts';
import { hashPassword } from '../auth/passwords.ts';
import { deleteUserSessions } from '../auth/sessions-store.ts';
import { inTransaction, type Db, type Trx } from '../db/database.ts';
import type { Ledger } from '../ledger/ledger-service.ts';
import { HoldNotFoundError, HoldStateError } from '../ledger/ledger-errors.ts';
import type { Logger } from '../logger.ts';
import { StoredFileMissingError, type FileStorage } from '../tasks/file-storage.ts';
import { leaveTeamsAtErasure } from '../teams/owner-succession.ts';
import { findDeletion, markStepDone, tableExists, upsertDeletion } from './privacy-store.ts';

/**
 * The steps of an erasure (GDPR Art. 17), in order. Each is idempotent and is recorded in
 * `account_deletions.steps_done` once done (in its own transaction where the step is in the
 * database), so an erasure interrupted half-way resumes at the first step not done.
 */
export const ERASURE_STEPS = ['sessions_revoked', 'holds_voided', 'credits_forfeited', 'stripe_cancelled', 'files_deleted', 'pseudonymised'] as const;
export type ErasureStep = (typeof ERASURE_STEPS)[number];

export interface ErasureDeps {
  db: Db;
  ledger: Ledger;
  audit: AuditLog;
  storage: FileStorage;
  stripe: Stripe;
  logger: Logger;
  clock: () => Date;
  /** Tests: called before each step; throwing there simulates a crash at that step. */
  beforeStep?: (step: ErasureStep, userId: string) => void | Promise<void>;
}

/** A Stripe "No such …" error (the object is already gone): the step is done. */
function isMissing(err: unknown): boolean {
  const e = err as { code?: string; statusCode?: number };
  return e.code === 'resource_missing' || e.statusCode === 404;
}

async function removeQuietly(storage: FileStorage, key: string | null | undefined): Promise<void> {
  if (!key) return;
  try {
    await storage.remove(key);
  } catch (err) {
    if (!(err instanceof StoredFileMissingError) && (err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** Deletes a user's uploaded files, results and exports; the task rows stay (they explain ledger transfers). */
export async function deleteUserFiles(db: Db, storage: FileStorage, userId: string, now: Date): Promise<number> {
  let removed = 0;
  const tasks = (await db('tasks').where({ user_id: userId }).select('id', 'storage_key', 'result_key', 'searchable_pdf_key', 'file_deleted_at', 'results_deleted_at')) as Array<{
    id: string;
    storage_key: string;
    result_key: string | null;
    searchable_pdf_key: string | null;
    file_deleted_at: Date | null;
  }>;
  for (const t of tasks) {
    if (!t.file_deleted_at) await removeQuietly(storage, t.storage_key);
    await removeQuietly(storage, t.result_key);
    await removeQuietly(storage, t.searchable_pdf_key);
    removed++;
  }
  await db('tasks')
    .where({ user_id: userId })
    .update({
      result_text: null,
      result_key: null,
      searchable_pdf_key: null,
      file_name: 'erased',
      file_deleted_at: db.raw('coalesce(file_deleted_at, ?)', [now]),
      results_deleted_at: db.raw('coalesce(results_deleted_at, ?)', [now]),
    });
  for (const u of (await db('task_uploads').where({ user_id: userId }).select('id', 'storage_key')) as Array<{ id: string; storage_key: string }>) {
    await removeQuietly(storage, u.storage_key);
    await db('task_uploads').where({ id: u.id }).delete();
  }
  for (const e of (await db('account_exports').where({ user_id: userId }).whereNot({ status: 'deleted' }).select('id', 'storage_key')) as Array<{ id: string; storage_key: string | null }>) {
    await removeQuietly(storage, e.storage_key);
    await db('account_exports').where({ id: e.id }).update({ status: 'deleted', storage_key: null });
  }
  return removed;
}

/**
 * Erases one user (idempotent, resumable): revokes sessions and API keys, voids active holds,
 * forfeits the remaining credits to the `forfeited` account through the ledger (one `expiry`
 * transfer per lot: the books still balance), cancels subscriptions and deletes the Stripe
 * customer, deletes files, results and exports, takes the user out of every team (a team whose only
 * owner they were gets its longest-standing member as owner: `leaveTeamsAtErasure`), and replaces
 * email, name and IP addresses by a pseudonym (also in the email outbox and the audit log's personal side). Ledger and payment rows
 * stay, pointing to the pseudonymous account (bookkeeping duty, GDPR Art. 17(3)(b)).
 *
 * @param actor `admin:<id>` (erase now) or `system` (the scheduled erasure)
 * @returns the pseudonym the account now has
 */
export async function eraseUser(deps: ErasureDeps, userId: string, actor: string, reason: string | null): Promise<string> {
  const { db, ledger, audit, storage, stripe, clock } = deps;
  const now = clock();
  // the sweeper takes a scheduled erasure as it was asked for; an admin's erase-now takes it over with their reason
  if (actor === 'system') await db('account_deletions').where({ user_id: userId, status: 'scheduled' }).update({ status: 'erasing' });
  else await upsertDeletion(db, { user_id: userId, status: 'erasing', requested_at: now, scheduled_for: now, requested_by: actor, reason });
  let row = (await findDeletion(db, userId))!;
  if (row.status === 'erased') return row.pseudonym!;
  if (!row.pseudonym) {
    await db('account_deletions').where({ user_id: userId }).whereNull('pseudonym').update({ pseudonym: `erased-${crypto.randomBytes(6).toString('hex')}` });
    row = (await findDeletion(db, userId))!;
  }
  await db('account_deletions').where({ user_id: userId }).increment('attempts', 1);
  const pseudonym = row.pseudonym!;
  const email = ((await db('users').where({ id: userId }).first('email')) as { email: string }).email;

  const stepActor = row.requested_by.startsWith('admin:') ? row.requested_by : 'system';
  const done = new Set(row.steps_done);
  const finish = async (trx: Trx | Db, step: ErasureStep, details: Record<string, unknown>) => {
    await markStepDone(trx, userId, step);
    await audit.record({ actor: stepActor, action: 'privacy.erasure_step', target: { type: 'user', id: userId }, details: { step, ...details } }, (trx as Trx).isTransaction ? (trx as Trx) : undefined);
  };

  for (const step of ERASURE_STEPS) {
    if (done.has(step)) continue;
    try {
      await deps.beforeStep?.(step, userId);
      switch (step) {
        case 'sessions_revoked':
          await inTransaction(db, async (trx) => {
            const sessions = await deleteUserSessions(trx, userId);
            let apiKeys = 0;
            if ((await tableExists(trx, 'api_keys')) && (await trx.schema.hasColumn('api_keys', 'revoked_at'))) {
              apiKeys = await trx('api_keys').where({ user_id: userId }).whereNull('revoked_at').update({ revoked_at: now });
            }
            await audit.record({ actor: stepActor, action: 'auth.sessions_revoked', target: { type: 'user', id: userId }, details: { revoked: sessions, apiKeys, scope: 'erasure' } }, trx);
            await finish(trx, step, { sessions, apiKeys });
          });
          break;
        case 'holds_voided': {
          const holds = (await db('holds as h').join('accounts as a', 'a.id', 'h.account_id').where({ 'a.user_id': userId, 'h.status': 'active' }).select('h.id')) as Array<{ id: string }>;
          for (const h of holds) {
            try {
              await ledger.void({ holdId: h.id, actor: stepActor });
            } catch (err) {
              if (!(err instanceof HoldStateError) && !(err instanceof HoldNotFoundError)) throw err;
            }
          }
          await finish(db, step, { holds: holds.length });
          break;
        }
        case 'credits_forfeited':
          await inTransaction(db, async (trx) => {
            const r = await trx.raw(`SELECT ledger_forfeit_op(?, ?, ?) AS n`, [userId, stepActor, 'Credits forfeited at account erasure']);
            await finish(trx, step, { forfeitedMillicredits: Number((r.rows[0] as { n: string }).n) });
          });
          break;
        case 'stripe_cancelled': {
          const subs = (await db('subscriptions').where({ user_id: userId }).whereNotIn('status', ['canceled', 'incomplete_expired']).select('stripe_subscription_id')) as Array<{
            stripe_subscription_id: string;
          }>;
          for (const s of subs) {
            try {
              await stripe.subscriptions.cancel(s.stripe_subscription_id);
            } catch (err) {
              if (!isMissing(err)) throw err;
            }
          }
          const customers = new Set<string>([
            ...((await db('stripe_customers').where({ user_id: userId }).select('customer_id')) as Array<{ customer_id: string }>).map((c) => c.customer_id),
            ...((await db('subscriptions').where({ user_id: userId }).distinct('stripe_customer_id')) as Array<{ stripe_customer_id: string }>).map((c) => c.stripe_customer_id),
          ]);
          // A saved card for auto-recharge goes first: deleting the customer deletes its cards, and its
          // customer.deleted webhook would otherwise tell this user "auto-recharge is off".
          if (await tableExists(db, 'auto_recharge_settings')) await db('auto_recharge_settings').where({ user_id: userId }).delete();
          for (const c of customers) {
            try {
              await stripe.customers.del(c);
            } catch (err) {
              if (!isMissing(err)) throw err;
            }
          }
          // the webhook (customer.subscription.deleted) says so too; the local rows need not wait for it
          await db('subscriptions')
            .where({ user_id: userId })
            .whereNotIn('status', ['canceled', 'incomplete_expired'])
            .update({ status: 'canceled', canceled_at: db.raw('coalesce(canceled_at, ?)', [now]), ended_at: db.raw('coalesce(ended_at, ?)', [now]), updated_at: now });
          await finish(db, step, { subscriptions: subs.length, customers: customers.size });
          break;
        }
        case 'files_deleted': {
          const tasks = await deleteUserFiles(db, storage, userId, now);
          await finish(db, step, { tasks });
          break;
        }
        case 'pseudonymised': {
          const unusable = await hashPassword(crypto.randomBytes(32).toString('base64url'));
          await inTransaction(db, async (trx) => {
            const alias = `${pseudonym}@erased.invalid`;
            await trx('users').where({ id: userId }).update({ email: alias, name: 'Erased user', password_hash: unusable, erased_at: now, updated_at: now });
            await trx('email_outbox')
              .where((w) => w.where({ user_id: userId }).orWhere({ to_address: email }))
              .update({ to_address: alias, subject: '[erased]', text_body: '[erased]', html_body: '[erased]' });
            // what was still waiting to go is not sent to a pseudonym
            await trx('email_outbox').where({ to_address: alias }).whereIn('status', ['pending', 'sending']).update({ status: 'not_sent', last_error: 'not sent: account erased' });
            await trx('auth_tokens').where({ user_id: userId }).delete();
            await trx('notifications').where({ user_id: userId }).delete();
            await trx('webhook_endpoints').where({ user_id: userId }).delete();
            await trx('notification_settings').where({ user_id: userId }).delete();
            // teams (issue 16's tables, when present): out of every team, a team whose only owner this
            // was gets its longest-standing member as owner; invitations to the address renamed
            const teams = (await tableExists(trx, 'team_members')) ? await leaveTeamsAtErasure(trx, { audit }, userId, stepActor, now) : { teamsLeft: 0, promotions: [] };
            if (await tableExists(trx, 'team_invitations')) await trx('team_invitations').where({ email }).update({ email: alias });
            // the once-per-mailbox sign-up bonus claim keeps a one-way hash, not the address
            await trx.raw(`UPDATE signup_bonus_claims SET canonical_email = 'erased:' || encode(sha256(convert_to(canonical_email, 'UTF8')), 'hex') WHERE user_id = ? AND canonical_email NOT LIKE 'erased:%'`, [userId]);
            const auditEntries = await erasePersonalAuditData(trx, userId, email);
            await finish(trx, step, { auditEntries, teamsLeft: teams.teamsLeft, ownersPromoted: teams.promotions.length });
          });
          break;
        }
      }
    } catch (err) {
      await db('account_deletions').where({ user_id: userId }).update({ last_error: `${step}: ${(err as Error).message}`.slice(0, 500) });
      throw err;
    }
  }

  await inTransaction(db, async (trx) => {
    await trx('account_deletions').where({ user_id: userId }).update({ status: 'erased', completed_at: clock(), last_error: null });
    await audit.record({ actor: stepActor, actorUserId: stepActor.startsWith('admin:') ? stepActor.slice(6) : null, action: 'privacy.erased', target: { type: 'user', id: userId }, details: { pseudonym, reason: row.reason } }, trx);
  });
  deps.logger.info({ userId, pseudonym }, 'account erased');
  return pseudonym;
}
