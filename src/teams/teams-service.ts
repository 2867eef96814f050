import crypto from 'node:crypto';
import type { AuditLog } from '../auth/audit-log.ts';
import type { Db, Trx } from '../db/database.ts';
import { ConflictError, ForbiddenError, NotFoundError } from '../http/errors.ts';
import type { Ledger } from '../ledger/ledger-service.ts';
import { keyHash } from '../idempotency/idempotency-keys.ts';
import { periodBounds } from './spend-policy.ts';

export type TeamRole = 'owner' | 'admin' | 'member';
export const TEAM_ROLES: readonly TeamRole[] = ['owner', 'admin', 'member'];

/** How long an invitation link works (issue 16: 7 days). */
export const INVITATION_TTL_MS = 7 * 24 * 3600_000;

/** Sends invitation emails. The notification outbox (issue 13) implements it once it lands. */
export interface InvitationMailer {
  sendInvitation(msg: { to: string; teamName: string; inviterName: string; role: TeamRole; acceptUrl: string; expiresAt: Date }, trx: Trx): Promise<void>;
}

export interface Team {
  id: string;
  name: string;
  createdAt: Date;
}

/** A member with budgets and spend (millicredits). Spend counts posted holds; held counts active ones. */
export interface TeamMember {
  userId: string;
  name: string;
  email: string;
  role: TeamRole;
  dailyBudget: number | null;
  monthlyBudget: number | null;
  perJobBudget: number | null;
  joinedAt: Date;
  removedAt: Date | null;
  spentToday: number;
  heldToday: number;
  spentThisMonth: number;
  heldThisMonth: number;
}

type Ctx = { ip?: string | null; userAgent?: string | null };
const num = (v: string | number | null | undefined) => (v === null || v === undefined ? null : Number(v));

export type Teams = ReturnType<typeof createTeams>;

/**
 * Teams (issue 16): a shared credit pool (a ledger account owned by the team), members with roles
 * (owner, admin, member) and budgets, invitations by email, contributions from members' own
 * wallets. Every change is audited in its own transaction. A team always keeps at least one owner:
 * role changes and removals lock the team's member rows first, so two concurrent demotions cannot
 * both pass the check.
 */
export function createTeams(deps: { db: Db; ledger: Ledger; audit: AuditLog; mailer: InvitationMailer; appUrl: string }) {
  const { db, ledger, audit } = deps;

  const record = (trx: Trx, actorId: string, action: string, teamId: string, details: Record<string, unknown>, ctx: Ctx) =>
    audit.record({ actor: `user:${actorId}`, actorUserId: actorId, action, target: { type: 'team', id: teamId }, ...ctx, details }, trx);

  /** The caller's active membership, locked when `forUpdate`; 404 unless a member (never reveal a team exists). */
  async function membership(q: Db | Trx, teamId: string, userId: string): Promise<{ role: TeamRole }> {
    const row = await q('team_members').where({ team_id: teamId, user_id: userId }).whereNull('removed_at').first('role');
    if (!row) throw new NotFoundError('team');
    return row as { role: TeamRole };
  }

  async function requireRole(q: Db | Trx, teamId: string, userId: string, roles: TeamRole[]): Promise<TeamRole> {
    const { role } = await membership(q, teamId, userId);
    if (!roles.includes(role)) throw new ForbiddenError(`Only a team ${roles.join(' or ')} can do this.`, 'team_role_forbidden');
    return role;
  }

  /** Locks every member row of the team (the ≥ 1 owner rule) and returns the active owners. */
  async function lockOwners(trx: Trx, teamId: string): Promise<string[]> {
    const rows = await trx('team_members').where({ team_id: teamId }).forUpdate().select('user_id', 'role', 'removed_at');
    return rows.filter((r: { role: string; removed_at: Date | null }) => r.role === 'owner' && !r.removed_at).map((r: { user_id: string }) => r.user_id);
  }

  const teams = {
    membership: (teamId: string, userId: string) => membership(db, teamId, userId),

    /** Creates a team and its pool account; the creator is its owner. */
    async create(userId: string, name: string, ctx: Ctx = {}): Promise<Team> {
      return db.transaction(async (trx) => {
        const [team] = await trx('teams').insert({ name, created_by: userId }).returning(['id', 'name', 'created_at']);
        await trx('accounts').insert({ team_id: team.id });
        await trx('team_members').insert({ team_id: team.id, user_id: userId, role: 'owner' });
        await record(trx, userId, 'team.created', team.id, { name }, ctx);
        return { id: team.id, name: team.name, createdAt: team.created_at };
      });
    },

    /** The teams the user is an active member of, with their role. */
    async listFor(userId: string): Promise<Array<Team & { role: TeamRole }>> {
      const rows = await db('teams as t').join('team_members as m', 'm.team_id', 't.id').where('m.user_id', userId).whereNull('m.removed_at')
        .orderBy('t.name').select('t.id', 't.name', 't.created_at', 'm.role');
      return rows.map((r: { id: string; name: string; created_at: Date; role: TeamRole }) => ({ id: r.id, name: r.name, createdAt: r.created_at, role: r.role }));
    },

    /** The team, if `userId` is an active member (else 404), with the caller's role. */
    async get(teamId: string, userId: string): Promise<Team & { role: TeamRole }> {
      const { role } = await membership(db, teamId, userId);
      const t = await db('teams').where({ id: teamId }).first();
      return { id: t.id, name: t.name, createdAt: t.created_at, role };
    },

    /** Members (removed ones too, flagged) with spend today and this month against their budgets. */
    async members(teamId: string, userId: string, now = new Date()): Promise<TeamMember[]> {
      await membership(db, teamId, userId);
      const day = periodBounds(now, 'day').start;
      const month = periodBounds(now, 'month').start;
      const rows = await db('team_members as m')
        .join('users as u', 'u.id', 'm.user_id')
        .where('m.team_id', teamId)
        .orderByRaw('m.removed_at NULLS FIRST, u.name')
        .select(
          'm.*',
          'u.name',
          'u.email',
          db.raw(
            `(SELECT json_build_object(
                'spentToday', COALESCE(SUM(h.posted_amount) FILTER (WHERE h.status = 'posted' AND s.created_at >= ?), 0),
                'heldToday', COALESCE(SUM(h.amount) FILTER (WHERE h.status = 'active' AND s.created_at >= ?), 0),
                'spentThisMonth', COALESCE(SUM(h.posted_amount) FILTER (WHERE h.status = 'posted'), 0),
                'heldThisMonth', COALESCE(SUM(h.amount) FILTER (WHERE h.status = 'active'), 0))
               FROM spend_attributions s JOIN holds h ON h.id = s.hold_id
              WHERE s.team_id = m.team_id AND s.user_id = m.user_id AND s.created_at >= ?) AS spend`,
            [day, day, month],
          ),
        );
      return rows.map((r: Record<string, any>) => ({
        userId: r.user_id,
        name: r.name,
        email: r.email,
        role: r.role,
        dailyBudget: num(r.daily_budget),
        monthlyBudget: num(r.monthly_budget),
        perJobBudget: num(r.per_job_budget),
        joinedAt: r.joined_at,
        removedAt: r.removed_at,
        spentToday: Number(r.spend.spentToday),
        heldToday: Number(r.spend.heldToday),
        spentThisMonth: Number(r.spend.spentThisMonth),
        heldThisMonth: Number(r.spend.heldThisMonth),
      }));
    },

    /**
     * Invites `email` with `role` (owners and admins; only an owner invites an owner): a
     * single-use link valid 7 days, emailed in the same transaction. Returns the invitation id and
     * the link (for the caller to show; the token is stored only as a hash).
     */
    async invite(teamId: string, actorId: string, input: { email: string; role: TeamRole }, ctx: Ctx = {}) {
      return db.transaction(async (trx) => {
        const role = await requireRole(trx, teamId, actorId, ['owner', 'admin']);
        if (input.role === 'owner' && role !== 'owner') throw new ForbiddenError('Only an owner can invite an owner.', 'team_role_forbidden');
        const token = crypto.randomBytes(32).toString('base64url');
        const expiresAt = new Date(Date.now() + INVITATION_TTL_MS);
        const email = input.email.trim().toLowerCase();
        const [inv] = await trx('team_invitations')
          .insert({ team_id: teamId, email, role: input.role, token_hash: crypto.createHash('sha256').update(token).digest(), invited_by: actorId, expires_at: expiresAt })
          .returning(['id']);
        const team = await trx('teams').where({ id: teamId }).first('name');
        const inviter = await trx('users').where({ id: actorId }).first('name');
        const acceptUrl = new URL(`/invitations/${token}`, deps.appUrl).toString();
        await deps.mailer.sendInvitation({ to: email, teamName: team.name, inviterName: inviter.name, role: input.role, acceptUrl, expiresAt }, trx);
        await record(trx, actorId, 'team.member_invited', teamId, { email, role: input.role, invitationId: inv.id }, ctx);
        return { id: inv.id as string, email, role: input.role, expiresAt, acceptUrl };
      });
    },

    /**
     * Accepts an invitation for the signed-in user, whose email must be the invited one: once,
     * within 7 days. 404 for an unknown, used, expired or someone else's link (one answer for all).
     */
    async accept(token: string, user: { id: string; email: string }, ctx: Ctx = {}): Promise<Team & { role: TeamRole }> {
      return db.transaction(async (trx) => {
        const hash = crypto.createHash('sha256').update(token).digest();
        const inv = await trx('team_invitations').where({ token_hash: hash }).forUpdate().first();
        if (!inv || inv.accepted_at || inv.expires_at <= new Date() || inv.email !== user.email.toLowerCase()) throw new NotFoundError('invitation');
        await trx('team_invitations').where({ id: inv.id }).update({ accepted_at: trx.fn.now(), accepted_by: user.id });
        await trx('team_members')
          .insert({ team_id: inv.team_id, user_id: user.id, role: inv.role })
          .onConflict(['team_id', 'user_id'])
          .merge({ role: inv.role, removed_at: null, joined_at: trx.fn.now() });
        await record(trx, user.id, 'team.invitation_accepted', inv.team_id, { role: inv.role, invitationId: inv.id }, ctx);
        const team = await trx('teams').where({ id: inv.team_id }).first();
        return { id: team.id, name: team.name, createdAt: team.created_at, role: inv.role };
      });
    },

    /**
     * Changes a member's role and/or budgets (millicredits; null = no limit). Owners and admins;
     * only an owner grants or takes away the owner role. 409 `last-owner` if no owner would remain.
     */
    async updateMember(
      teamId: string,
      actorId: string,
      userId: string,
      patch: { role?: TeamRole; dailyBudget?: number | null; monthlyBudget?: number | null; perJobBudget?: number | null },
      ctx: Ctx = {},
    ): Promise<void> {
      await db.transaction(async (trx) => {
        const owners = await lockOwners(trx, teamId);
        const actorRole = await requireRole(trx, teamId, actorId, ['owner', 'admin']);
        const target = await membership(trx, teamId, userId);
        if (patch.role && patch.role !== target.role) {
          if ((patch.role === 'owner' || target.role === 'owner') && actorRole !== 'owner') {
            throw new ForbiddenError('Only an owner can grant or take away the owner role.', 'team_role_forbidden');
          }
          if (target.role === 'owner' && owners.length <= 1) throw new ConflictError('A team keeps at least one owner.', 'last-owner');
        }
        const update: Record<string, unknown> = {};
        if (patch.role) update.role = patch.role;
        if (patch.dailyBudget !== undefined) update.daily_budget = patch.dailyBudget;
        if (patch.monthlyBudget !== undefined) update.monthly_budget = patch.monthlyBudget;
        if (patch.perJobBudget !== undefined) update.per_job_budget = patch.perJobBudget;
        if (Object.keys(update).length === 0) return;
        await trx('team_members').where({ team_id: teamId, user_id: userId }).update(update);
        await record(trx, actorId, 'team.member_updated', teamId, { userId, ...patch }, ctx);
      });
    },

    /**
     * Removes a member (or the caller leaves): they can no longer spend from the pool, and their
     * team keys are revoked in the same transaction. History stays. 409 `last-owner` for the last owner.
     */
    async removeMember(teamId: string, actorId: string, userId: string, ctx: Ctx = {}): Promise<void> {
      await db.transaction(async (trx) => {
        const owners = await lockOwners(trx, teamId);
        const target = await membership(trx, teamId, userId);
        if (actorId !== userId) {
          const actorRole = await requireRole(trx, teamId, actorId, ['owner', 'admin']);
          if (target.role === 'owner' && actorRole !== 'owner') throw new ForbiddenError('Only an owner can remove an owner.', 'team_role_forbidden');
        }
        if (target.role === 'owner' && owners.length <= 1) throw new ConflictError('A team keeps at least one owner.', 'last-owner');
        await trx('team_members').where({ team_id: teamId, user_id: userId }).update({ removed_at: trx.fn.now() });
        const revoked = await trx('api_keys').where({ team_id: teamId, user_id: userId }).whereNull('revoked_at').update({ revoked_at: trx.fn.now() });
        await trx('wallet_preferences').where({ user_id: userId, team_id: teamId }).delete();
        await record(trx, actorId, 'team.member_removed', teamId, { userId, keysRevoked: revoked }, ctx);
      });
    },

    /**
     * Moves `millicredits` of the member's PURCHASED credits into the pool (issue 16: never bonus,
     * promo, trial or subscription credits), keeping their soonest expiry: {@link Ledger.transferPurchased}
     * with kind `contribution`, one transaction with the membership check and the audit entry.
     * 402 when the member's purchased credits are short (`available` = what could be moved).
     * Replaying `idempotencyKey` changes nothing.
     */
    async contribute(teamId: string, userId: string, millicredits: number, idempotencyKey: string | undefined, ctx: Ctx = {}) {
      return db.transaction(async (trx) => {
        await membership(trx, teamId, userId);
        const id = `contrib:${idempotencyKey ? keyHash(userId, 'POST', `/teams/${teamId}/contributions`, idempotencyKey) : crypto.randomUUID()}`;
        const team = await trx('teams').where({ id: teamId }).first('name');
        const moved = await ledger.transferPurchased(
          {
            transferId: id,
            fromOwnerId: userId,
            toOwnerId: teamId,
            millicredits,
            kind: 'contribution',
            actor: `user:${userId}`,
            reason: `Contribution to ${team.name}`,
            reference: { type: 'team', id: teamId },
          },
          trx,
        );
        if (!moved.replayed) await record(trx, userId, 'team.contribution', teamId, { millicredits }, ctx);
        return moved;
      });
    },

    /** Sets or clears (null) the team whose pool the user's jobs use by default. */
    async setDefaultWallet(userId: string, teamId: string | null): Promise<void> {
      if (teamId) await membership(db, teamId, userId);
      await db('wallet_preferences').insert({ user_id: userId, team_id: teamId }).onConflict('user_id').merge();
    },

    async defaultWallet(userId: string): Promise<string | null> {
      const row = await db('wallet_preferences as w').join('team_members as m', function () {
        this.on('m.team_id', 'w.team_id').andOn('m.user_id', 'w.user_id');
      }).where('w.user_id', userId).whereNull('m.removed_at').first('w.team_id');
      return row?.team_id ?? null;
    },

    /**
     * The pool's transfers, newest first, each with the member who caused it (spends through
     * their holds, contributions through the reference), optionally only `memberId`'s.
     */
    async history(teamId: string, userId: string, filter: { memberId?: string; limit?: number } = {}) {
      await membership(db, teamId, userId);
      const account = await db('accounts').where({ team_id: teamId }).first('id');
      // The member behind a transfer: who placed the hold (spends), whose wallet the credits left
      // (contributions), who paid (packs bought for the team).
      const member = `COALESCE(s.user_id, da.user_id, p.user_id, CASE WHEN t.reference_type = 'user' THEN t.reference_id::uuid END)`;
      const q = db('transfers as t')
        .leftJoin('spend_attributions as s', 's.hold_id', 't.hold_id')
        .leftJoin('accounts as da', 'da.id', 't.debit_account_id')
        .leftJoin('payments as p', function () {
          this.on(db.raw(`t.reference_type = 'payment'`)).andOn(db.raw('p.id::text = t.reference_id'));
        })
        .leftJoin('users as u', 'u.id', db.raw(member))
        .leftJoin('api_keys as k', 'k.id', 's.api_key_id')
        .where((w) => w.where('t.debit_account_id', account.id).orWhere('t.credit_account_id', account.id))
        .orderBy([{ column: 't.created_at', order: 'desc' }, { column: 't.id', order: 'desc' }])
        .limit(Math.min(filter.limit ?? 100, 500))
        .select('t.id', 't.kind', 't.amount', 't.reason', 't.created_at', 't.credit_account_id', 'u.id as member_id', 'u.name as member_name', 'k.name as key_name');
      if (filter.memberId) q.whereRaw(`${member} = ?`, [filter.memberId]);
      const rows = await q;
      return rows.map((r: Record<string, any>) => ({
        id: r.id as string,
        kind: r.kind as string,
        amount: r.credit_account_id === account.id ? Number(r.amount) : -Number(r.amount),
        reason: r.reason as string | null,
        createdAt: r.created_at as Date,
        memberId: (r.member_id as string | null) ?? null,
        memberName: (r.member_name as string | null) ?? null,
        keyName: (r.key_name as string | null) ?? null,
      }));
    },

    /**
     * What each member spent from the pool per UTC day over the last `days` days (today included):
     * the pool's `usage` transfers, attributed through the hold each settled. Millicredits.
     * `days` lists the dates (`YYYY-MM-DD`, oldest first); each member's `perDay` follows it.
     * Members without spend in the window are left out. 404 unless `userId` is a member.
     */
    async usageByMember(teamId: string, userId: string, options: { days?: number; now?: Date } = {}) {
      await membership(db, teamId, userId);
      const n = Math.min(Math.max(options.days ?? 14, 1), 92);
      const now = options.now ?? new Date();
      const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
      const days = Array.from({ length: n }, (_, i) => new Date(today - (n - 1 - i) * 86_400_000).toISOString().slice(0, 10));
      const rows = (await db('transfers as t')
        .join('accounts as a', 'a.id', 't.debit_account_id')
        .join('spend_attributions as s', 's.hold_id', 't.hold_id')
        .join('users as u', 'u.id', 's.user_id')
        .where({ 'a.team_id': teamId, 't.kind': 'usage' })
        .where('t.created_at', '>=', new Date(today - (n - 1) * 86_400_000))
        .groupBy('s.user_id', 'u.name', db.raw(`to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')`))
        .select('s.user_id', 'u.name', db.raw(`to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day`), db.raw('SUM(t.amount)::bigint AS amount'))) as Array<{
        user_id: string;
        name: string;
        day: string;
        amount: string | number;
      }>;
      const byMember = new Map<string, { userId: string; name: string; perDay: number[]; total: number }>();
      for (const r of rows) {
        const i = days.indexOf(r.day);
        if (i < 0) continue;
        const m = byMember.get(r.user_id) ?? { userId: r.user_id, name: r.name, perDay: days.map(() => 0), total: 0 };
        m.perDay[i] = m.perDay[i]! + Number(r.amount);
        m.total += Number(r.amount);
        byMember.set(r.user_id, m);
      }
      return { days, members: [...byMember.values()].sort((x, y) => y.total - x.total || x.name.localeCompare(y.name)) };
    },

    /** Whether the user may buy for the team (owner or admin); 404 unless a member. */
    async assertCanBuy(teamId: string, userId: string): Promise<void> {
      await requireRole(db, teamId, userId, ['owner', 'admin']);
    },
  };
  return teams;
}
