import crypto from 'node:crypto';
import type { RequestHandler } from 'express';
import type { CurrentUser } from '../auth/auth-types.ts';
import type { Config } from '../config.ts';
import { inTransaction, type Db, type Trx } from '../db/database.ts';
import { TooManyRequestsError } from '../http/errors.ts';
import type { Ledger } from '../ledger/ledger-service.ts';
import { COOKIES, type GrowthCookies } from './growth-cookies.ts';
import { moveCredits } from './move-credits.ts';

export type Leads = ReturnType<typeof createLeads>;

/** The paths a lead may use as if signed in: the tasks pages and API, and its balance (read by /tasks), nothing else. */
const LEAD_PATHS = /^\/(api\/)?tasks(\/|$)|^\/api\/credits\/balance$/;

/**
 * Visitors' trial credits (issue 17): a visitor who has not signed up opens an anonymous lead
 * account (a `lead` user) with `LEAD_TRIAL_CREDITS` as a `trial` lot valid `LEAD_TRIAL_DAYS`,
 * remembered by a signed cookie; at most `LEAD_MAX_PER_IP_PER_DAY` leads per client IP per UTC
 * day (counted under an advisory lock on the IP, so parallel opens cannot pass it). With that
 * cookie the visitor uses /tasks and /api/tasks as the lead. On sign-up the lead's remaining trial
 * credits (what no running job holds) move to the new account in one transfer keeping their
 * expiry, and its tasks and staged uploads become the new user's: once, under the lead's row lock.
 */
export function createLeads(deps: { db: Db; ledger: Ledger; cookies: GrowthCookies; config: Pick<Config, 'growth'>; clock?: () => Date }) {
  const { db, ledger, cookies, config } = deps;
  const now = deps.clock ?? (() => new Date());
  const rules = config.growth.lead;
  const ipHash = (ip: string) => crypto.createHash('sha256').update(`lead-ip:${ip}`).digest('hex');

  async function activeLead(q: Db | Trx, id: string): Promise<CurrentUser | undefined> {
    const row = await q('leads').join('users', 'users.id', 'leads.id').select('users.id', 'users.email').where('leads.id', id).whereNull('leads.claimed_by').where('leads.expires_at', '>', now()).first();
    return row ? { id: row.id as string, email: row.email as string, name: 'Visitor', role: 'user', lead: true } : undefined;
  }

  return {
    /**
     * Opens a lead for a visitor from `ip`: a lead user, the `trial` lot (transfer `trial:<id>`).
     * Throws {@link TooManyRequestsError} (429) past `LEAD_MAX_PER_IP_PER_DAY` today (UTC).
     */
    async open(ip: string): Promise<{ id: string; millicredits: number; expiresAt: Date }> {
      const hash = ipHash(ip);
      return inTransaction(db, async (trx) => {
        await trx.raw(`SELECT pg_advisory_xact_lock(hashtext(?))`, [`lead-ip:${hash}`]);
        const at = now();
        const dayStart = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate()));
        const counted = await trx('leads').where({ ip_hash: hash }).where('created_at', '>=', dayStart).count<{ n: string }[]>({ n: '*' });
        if (Number(counted[0]!.n) >= rules.maxPerIpPerDay) {
          const tomorrow = dayStart.getTime() + 86_400_000;
          throw new TooManyRequestsError((tomorrow - at.getTime()) / 1000, 'Too many trials from this network today. Sign up to keep going.');
        }
        const id = crypto.randomUUID();
        await trx('users').insert({ id, email: `lead-${id}@leads.tally.invalid`, name: 'Visitor', password_hash: '!', role: 'lead' });
        const expiresAt = new Date(at.getTime() + rules.trialDays * 86_400_000);
        await trx('leads').insert({ id, ip_hash: hash, created_at: at, expires_at: expiresAt });
        if (rules.trialMillicredits > 0) {
          await ledger.grant(
            { transferId: `trial:${id}`, userId: id, millicredits: rules.trialMillicredits, kind: 'trial', expiresAt, actor: 'system', reason: 'Trial credits for a visitor', reference: { type: 'lead', id } },
            trx,
          );
        }
        return { id, millicredits: rules.trialMillicredits, expiresAt };
      });
    },

    /** Express middleware (after the session's user is loaded): a visitor with a live lead cookie is the lead on the tasks paths. */
    middleware: (async (req, _res, next) => {
      if (!req.user && LEAD_PATHS.test(req.path)) {
        const id = cookies.get(req, COOKIES.lead);
        if (id && /^[0-9a-f-]{36}$/.test(id)) req.user = await activeLead(db, id);
      }
      next();
    }) as RequestHandler,

    /** The live lead of this cookie value, if any. */
    find: (id: string) => activeLead(db, id),

    /**
     * In the sign-up transaction: the lead's free trial credits (transfer `lead_claim:<leadId>`,
     * kind `trial`) and its tasks and staged uploads go to `user`, once. A lead already claimed,
     * expired or unknown is left alone (the sign-up goes on as usual).
     */
    async claim(trx: Trx, leadId: string, user: CurrentUser): Promise<{ moved: number; tasks: number } | undefined> {
      const lead = await trx('leads').where({ id: leadId }).forUpdate().first();
      if (!lead || lead.claimed_by || (lead.expires_at as Date) <= now()) return undefined;
      await trx('leads').where({ id: leadId }).update({ claimed_by: user.id, claimed_at: now() });
      const moved = await moveCredits(
        trx,
        { transferId: `lead_claim:${leadId}`, fromUserId: leadId, toUserId: user.id, millicredits: null, sources: ['trial'], kind: 'trial', actor: `user:${user.id}`, reason: 'Trial credits from before you signed up', reference: { type: 'lead', id: leadId } },
        now(),
      );
      const tasks = await trx('tasks').where({ user_id: leadId }).update({ user_id: user.id });
      await trx('task_uploads').where({ user_id: leadId }).update({ user_id: user.id });
      return { moved: moved.transfer?.amount ?? 0, tasks };
    },

    /** Sets the signed lead cookie for the trial's lifetime. */
    remember(res: Parameters<GrowthCookies['set']>[0], leadId: string): void {
      cookies.set(res, COOKIES.lead, leadId, rules.trialDays * 86_400_000);
    },
  };
}
