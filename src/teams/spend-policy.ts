import { AppError, ForbiddenError, UnauthorizedError } from '../http/errors.ts';
import type { Db, Trx } from '../db/database.ts';
import { millicreditsToCredits } from '../ledger/credits.ts';
import type { Hold } from '../ledger/ledger-types.ts';

/**
 * Who spends and from which wallet, for one priced request: the account owner the hold is placed
 * on (`ownerId`: the user's own id, or a team's id for its pool), the person (`userId`), the team
 * (when spending from a pool) and the API key (when the request came with one).
 */
export interface Spender {
  ownerId: string;
  userId: string;
  teamId: string | null;
  apiKeyId: string | null;
}

/** The start of the UTC day / month containing `now`, and the start of the next one. */
export function periodBounds(now: Date, period: 'day' | 'month'): { start: Date; end: Date } {
  const y = now.getUTCFullYear();
  const m = now.getUTCMonth();
  if (period === 'day') {
    const start = new Date(Date.UTC(y, m, now.getUTCDate()));
    return { start, end: new Date(start.getTime() + 86_400_000) };
  }
  return { start: new Date(Date.UTC(y, m, 1)), end: new Date(Date.UTC(y, m + 1, 1)) };
}

/**
 * Spent (posted) and held (active) millicredits of the holds attributed to `column = id` since
 * `since`. Voided and expired holds count for nothing. Read inside the caller's transaction, after
 * it locked the row that serializes these spends (the member's or the key's).
 */
export async function attributedSpend(
  trx: Trx,
  where: { column: 'api_key_id'; id: string } | { column: 'member'; teamId: string; userId: string },
  since: Date,
): Promise<{ spent: number; held: number }> {
  const q = trx('spend_attributions as s')
    .join('holds as h', 'h.id', 's.hold_id')
    .where('s.created_at', '>=', since)
    .select(
      trx.raw(`COALESCE(SUM(h.posted_amount) FILTER (WHERE h.status = 'posted'), 0)::bigint AS spent`),
      trx.raw(`COALESCE(SUM(h.amount) FILTER (WHERE h.status = 'active'), 0)::bigint AS held`),
    );
  if (where.column === 'api_key_id') q.where('s.api_key_id', where.id);
  else q.where({ 's.team_id': where.teamId, 's.user_id': where.userId });
  const [row] = (await q) as Array<{ spent: string | number; held: string | number }>;
  return { spent: Number(row!.spent), held: Number(row!.held) };
}

/** 403 `member-budget-exceeded`: the hold would take the member past a budget (credits in the body). */
export class MemberBudgetExceededError extends AppError {
  constructor(budget: 'daily' | 'monthly' | 'per-job', limit: number, spent: number, held: number, resetsAt: Date | null) {
    super(403, 'member-budget-exceeded', 'Member budget exceeded', `This job would exceed your ${budget} budget for the team.`, {
      budget,
      limit: millicreditsToCredits(limit),
      spent: millicreditsToCredits(spent),
      held: millicreditsToCredits(held),
      resetsAt: resetsAt?.toISOString() ?? null,
    });
  }
}

/** 403 `key-credit-limit-exceeded`: the hold would take the API key past its monthly credit limit. */
export class KeyCreditLimitExceededError extends AppError {
  constructor(limit: number, spent: number, held: number, resetsAt: Date) {
    super(403, 'key-credit-limit-exceeded', 'API key credit limit exceeded', "This job would exceed the API key's monthly credit limit.", {
      limit: millicreditsToCredits(limit),
      spent: millicreditsToCredits(spent),
      held: millicreditsToCredits(held),
      resetsAt: resetsAt.toISOString(),
    });
  }
}

interface MemberRow {
  role: string;
  daily_budget: string | number | null;
  monthly_budget: string | number | null;
  per_job_budget: string | number | null;
  removed_at: Date | null;
}

/**
 * The policies enforced where a hold is placed (DESIGN.md, "Policies at the hold"), in the hold's
 * transaction and before it: the API key's monthly credit limit (key row locked) and the team
 * member's daily / monthly / per-job budgets (member row locked). Each lock serializes the spends
 * it limits, and what is held counts as well as what is posted, so no concurrency can exceed a
 * limit. Lock order is key → member → account (the reserve), the same for every request.
 *
 * Throws {@link KeyCreditLimitExceededError} / {@link MemberBudgetExceededError} (403),
 * UnauthorizedError (401) for a key revoked meanwhile, ForbiddenError (403) for a removed member.
 */
export async function checkSpendPolicies(trx: Trx, spender: Spender, millicredits: number, now: Date): Promise<void> {
  if (spender.apiKeyId) {
    const key = (await trx('api_keys').where({ id: spender.apiKeyId }).forUpdate().first('monthly_credit_limit', 'revoked_at')) as
      | { monthly_credit_limit: string | number | null; revoked_at: Date | null }
      | undefined;
    if (!key || key.revoked_at) throw new UnauthorizedError('This API key is not valid.');
    if (key.monthly_credit_limit !== null) {
      const limit = Number(key.monthly_credit_limit);
      const { start, end } = periodBounds(now, 'month');
      const { spent, held } = await attributedSpend(trx, { column: 'api_key_id', id: spender.apiKeyId }, start);
      if (spent + held + millicredits > limit) throw new KeyCreditLimitExceededError(limit, spent, held, end);
    }
  }
  if (spender.teamId) {
    const m = (await trx('team_members').where({ team_id: spender.teamId, user_id: spender.userId }).forUpdate().first()) as MemberRow | undefined;
    if (!m || m.removed_at) throw new ForbiddenError('You are not a member of this team.', 'not_a_team_member');
    if (m.per_job_budget !== null && millicredits > Number(m.per_job_budget)) {
      throw new MemberBudgetExceededError('per-job', Number(m.per_job_budget), 0, 0, null);
    }
    for (const [budget, period, value] of [
      ['daily', 'day', m.daily_budget],
      ['monthly', 'month', m.monthly_budget],
    ] as const) {
      if (value === null) continue;
      const limit = Number(value);
      const { start, end } = periodBounds(now, period);
      const { spent, held } = await attributedSpend(trx, { column: 'member', teamId: spender.teamId, userId: spender.userId }, start);
      if (spent + held + millicredits > limit) throw new MemberBudgetExceededError(budget, limit, spent, held, end);
    }
  }
}

/** Records who placed `hold` (member, team, key), in the hold's transaction. A replayed hold keeps its first record. */
export async function attributeHold(trx: Trx, spender: Spender, hold: Hold): Promise<void> {
  await trx('spend_attributions')
    .insert({ hold_id: hold.id, account_id: hold.accountId, user_id: spender.userId, team_id: spender.teamId, api_key_id: spender.apiKeyId })
    .onConflict('hold_id')
    .ignore();
}

/**
 * The spender of a job on `teamId`'s pool (null: the user's own wallet), placed by `userId`
 * through `apiKeyId` (null: a browser session). Undefined for the user's own wallet without a key:
 * no policy to enforce, the hold goes on the user's account as before.
 */
export function spenderOf(userId: string, teamId: string | null, apiKeyId: string | null): Spender | undefined {
  if (teamId) return { ownerId: teamId, userId, teamId, apiKeyId };
  return apiKeyId ? { ownerId: userId, userId, teamId: null, apiKeyId } : undefined;
}

/** The request's API key, as far as spending goes: its id and its team (null: a personal key). */
export interface SpendingKey {
  id: string;
  teamId: string | null;
}

/**
 * 403 `wallet_not_allowed_for_key`: a team key spends only from its team's pool, so it cannot
 * confirm or retry a job whose wallet is another one.
 */
export function assertKeyMaySpendFrom(key: SpendingKey | null | undefined, teamId: string | null): void {
  if (key?.teamId && key.teamId !== teamId) {
    throw new ForbiddenError("This API key spends only from its team's pool; this job's wallet is another one.", 'wallet_not_allowed_for_key');
  }
}

/**
 * 403 `not_a_team_member` unless `userId` is a current member of `teamId` (read without a lock:
 * for refusing early, e.g. when an upload is kept; the hold checks again under the member lock).
 */
export async function assertActiveMember(q: Db | Trx, teamId: string, userId: string): Promise<void> {
  const m = await q('team_members').where({ team_id: teamId, user_id: userId }).whereNull('removed_at').first('role');
  if (!m) throw new ForbiddenError('You are not a member of this team.', 'not_a_team_member');
}

/** The team whose pool holds `holdId` (null: a user's own account, or no such hold). */
export async function teamOfHold(q: Trx, holdId: string): Promise<string | null> {
  const row = (await q('holds as h').join('accounts as a', 'a.id', 'h.account_id').where('h.id', holdId).first('a.team_id')) as
    | { team_id: string | null }
    | undefined;
  return row?.team_id ?? null;
}
