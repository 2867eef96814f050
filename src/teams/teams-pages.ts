import express, { type Request, type Response } from 'express';
import { z } from 'zod';
import { requestContext } from '../auth/audit-log.ts';
import { requireAuth } from '../auth/auth-middleware.ts';
import { setFlash, takeFlash } from '../auth/session.ts';
import { balanceJson } from '../credits/credits-json.ts';
import { viewHelpers } from '../credits/view-helpers.ts';
import { asProblem } from '../http/domain-problems.ts';
import { ValidationError } from '../http/errors.ts';
import { parseOrThrow } from '../http/validate.ts';
import { millicreditsToCredits } from '../ledger/credits.ts';
import type { Ledger } from '../ledger/ledger-service.ts';
import type { Payments } from '../payments/payments-service.ts';
import { API_KEY_SCOPES, type ApiKeys } from '../api-keys/api-keys-service.ts';
import { apiKeyJson } from '../api-keys/api-keys-router.ts';
import { memberJson } from './teams-json.ts';
import { ContributionBody, CreateTeamBody, InviteBody, TeamParams, UpdateMemberBody } from './teams-schemas.ts';
import type { Teams } from './teams-service.ts';

/** A form's fields without the CSRF token; blank optional fields count as not given. */
function form(req: Request): Record<string, unknown> {
  const { _csrf, ...rest } = (req.body ?? {}) as Record<string, unknown>;
  void _csrf;
  return rest;
}

/** A budget field: blank = no limit (null). */
const blankToNull = (v: unknown) => (v === '' || v === undefined ? null : v);

/**
 * Pages: /teams (your teams, create one), /teams/:id (pool balance, lots, members with spend
 * against budgets, invite, budgets and roles, history filterable by member, buy for the team,
 * contribute), /invitations/:token (accept), /account/keys (create, list, revoke API keys).
 * Every form posts with the CSRF token and redirects (303) with a flash message; a refusal is
 * shown as the flash, never an internal id.
 */
export function createTeamsPages(deps: { teams: Teams; ledger: Ledger; apiKeys: ApiKeys; payments: Pick<Payments, 'listPackages' | 'createCheckout'> }) {
  const { teams, ledger, apiKeys, payments } = deps;
  const pages = express.Router();

  /** Runs a form action; on a refusal, flashes its detail and goes back to `back`. */
  const action = (back: (req: Request) => string, fn: (req: Request, res: Response) => Promise<string | void>) =>
    async (req: Request, res: Response) => {
      try {
        const to = await fn(req, res);
        if (to !== undefined && !res.headersSent) res.redirect(303, to);
      } catch (err) {
        const p = asProblem(err);
        if (!p || p.status >= 500) throw err;
        const detail = err instanceof ValidationError ? err.errors.map((e) => `${e.field.replace(/^body\./, '')} ${e.message}`).join('; ') : p.detail;
        setFlash(req, { type: 'error', message: detail });
        res.redirect(303, back(req));
      }
    };

  pages.get('/teams', requireAuth, async (req, res) => {
    res.render('teams/index', { title: 'Teams', flash: takeFlash(req), teams: await teams.listFor(req.user!.id) });
  });

  pages.post('/teams', requireAuth, action(() => '/teams', async (req) => {
    const body = parseOrThrow(CreateTeamBody, form(req), 'body');
    const team = await teams.create(req.user!.id, body.name, requestContext(req));
    setFlash(req, { type: 'success', message: `Created ${team.name}.` });
    return `/teams/${team.id}`;
  }));

  pages.get('/teams/:id', requireAuth, async (req, res) => {
    const { id } = parseOrThrow(TeamParams, req.params, 'params');
    const member = typeof req.query.member === 'string' && z.uuid().safeParse(req.query.member).success ? req.query.member : undefined;
    const team = await teams.get(id, req.user!.id);
    const [balance, members, history, packages, usage] = await Promise.all([
      ledger.getBalance(id),
      teams.members(id, req.user!.id),
      teams.history(id, req.user!.id, { memberId: member, limit: 100 }),
      payments.listPackages(),
      teams.usageByMember(id, req.user!.id, { days: 14 }),
    ]);
    const manage = team.role === 'owner' || team.role === 'admin';
    res.render('teams/show', {
      title: team.name,
      flash: takeFlash(req),
      team,
      manage,
      me: req.user!.id,
      balance: balanceJson(balance),
      members: members.map(memberJson),
      history: history.map((h) => ({ ...h, amount: millicreditsToCredits(h.amount) })),
      member,
      packages,
      usage: usageView(usage),
      fmt: viewHelpers,
    });
  });

  const back = (req: Request) => `/teams/${String(req.params.id)}`;

  /**
   * The usage chart's data (credits; dates as `12 Nov`) for public/team-usage.js, and the same
   * figures as table rows (day, member, credits; days without spend left out) for everyone else.
   */
  function usageView(u: Awaited<ReturnType<typeof teams.usageByMember>>) {
    const label = (day: string) => viewHelpers.date(`${day}T00:00:00Z`).replace(/ \d{4}$/, '');
    // Newest day first; within a day, the members in the chart's order (most spent first).
    const rows = u.days
      .map((day, i) => ({ day, i }))
      .reverse()
      .flatMap(({ day, i }) =>
        u.members.filter((m) => m.perDay[i]! > 0).map((m) => ({ day, date: viewHelpers.date(`${day}T00:00:00Z`), name: m.name, credits: millicreditsToCredits(m.perDay[i]!) })),
      );
    return {
      chart: { labels: u.days.map(label), series: u.members.map((m) => ({ name: m.name, credits: m.perDay.map(millicreditsToCredits) })) },
      rows,
      days: u.days.length,
    };
  }

  pages.post('/teams/:id/invitations', requireAuth, action(back, async (req) => {
    const { id } = parseOrThrow(TeamParams, req.params, 'params');
    const body = parseOrThrow(InviteBody, form(req), 'body');
    const inv = await teams.invite(id, req.user!.id, body, requestContext(req));
    setFlash(req, { type: 'success', message: `Invitation sent to ${inv.email}. The link works once, for 7 days.` });
    return `${back(req)}#members`;
  }));

  pages.post('/teams/:id/members/:userId', requireAuth, action(back, async (req) => {
    const { id } = parseOrThrow(TeamParams, { id: req.params.id }, 'params');
    const userId = parseOrThrow(z.uuid(), req.params.userId, 'params.userId');
    const f = form(req);
    const body = parseOrThrow(
      UpdateMemberBody,
      { role: f.role || undefined, dailyBudget: blankToNull(f.dailyBudget), monthlyBudget: blankToNull(f.monthlyBudget), perJobBudget: blankToNull(f.perJobBudget) },
      'body',
    );
    await teams.updateMember(id, req.user!.id, userId, body, requestContext(req));
    setFlash(req, { type: 'success', message: 'Member updated.' });
    return `${back(req)}#members`;
  }));

  pages.post('/teams/:id/members/:userId/remove', requireAuth, action(back, async (req) => {
    const { id } = parseOrThrow(TeamParams, { id: req.params.id }, 'params');
    const userId = parseOrThrow(z.uuid(), req.params.userId, 'params.userId');
    await teams.removeMember(id, req.user!.id, userId, requestContext(req));
    setFlash(req, { type: 'success', message: userId === req.user!.id ? 'You left the team.' : 'Member removed. Their team API keys no longer work.' });
    return userId === req.user!.id ? '/teams' : `${back(req)}#members`;
  }));

  pages.post('/teams/:id/contributions', requireAuth, action(back, async (req) => {
    const { id } = parseOrThrow(TeamParams, req.params, 'params');
    const body = parseOrThrow(ContributionBody, { credits: form(req).credits }, 'body');
    await teams.contribute(id, req.user!.id, body.credits, undefined, requestContext(req));
    setFlash(req, { type: 'success', message: `Moved ${millicreditsToCredits(body.credits)} credits into the pool.` });
    return back(req);
  }));

  pages.post('/teams/:id/buy', requireAuth, action(back, async (req) => {
    const { id } = parseOrThrow(TeamParams, req.params, 'params');
    const { packageId } = parseOrThrow(z.object({ packageId: z.string().min(1).max(64) }), form(req), 'body');
    await teams.assertCanBuy(id, req.user!.id);
    const result = await payments.createCheckout(req.user!, packageId, undefined, id);
    return result.checkoutUrl;
  }));

  pages.post('/teams/:id/default-wallet', requireAuth, action(back, async (req) => {
    const { id } = parseOrThrow(TeamParams, req.params, 'params');
    await teams.setDefaultWallet(req.user!.id, id);
    setFlash(req, { type: 'success', message: 'Your jobs now pay from this team by default. You can still choose per upload.' });
    return back(req);
  }));

  pages.get('/invitations/:token', requireAuth, async (req, res) => {
    res.render('teams/invitation', { title: 'Team invitation', flash: takeFlash(req), token: String(req.params.token).slice(0, 200) });
  });

  pages.post('/invitations/:token/accept', requireAuth, action((req) => `/invitations/${encodeURIComponent(String(req.params.token))}`, async (req) => {
    const team = await teams.accept(String(req.params.token).slice(0, 200), req.user!, requestContext(req));
    setFlash(req, { type: 'success', message: `You joined ${team.name}.` });
    return `/teams/${team.id}`;
  }));

  // ---- API keys ----

  /** The keys page; `secret` is a just-created key, rendered in this response only (never stored). */
  const renderKeys = async (req: Request, res: Response, secret?: string) => {
    const [keys, myTeams] = await Promise.all([apiKeys.list(req.user!.id), teams.listFor(req.user!.id)]);
    res.setHeader('Cache-Control', 'no-store');
    res.status(secret ? 201 : 200).render('account/keys', {
      title: 'API keys', flash: takeFlash(req), keys: keys.map(apiKeyJson), teams: myTeams, scopes: API_KEY_SCOPES, secret, fmt: viewHelpers,
    });
  };

  pages.get('/account/keys', requireAuth, async (req, res) => renderKeys(req, res));

  pages.post('/account/keys', requireAuth, action(() => '/account/keys', async (req, res) => {
    const f = form(req);
    const scopes = Array.isArray(f.scopes) ? f.scopes : f.scopes ? [f.scopes] : [];
    const body = parseOrThrow(
      z.object({
        name: z.string().trim().min(1, 'must not be empty').max(100),
        teamId: z.uuid().optional(),
        scopes: z.array(z.enum(API_KEY_SCOPES)).min(1, 'choose at least one'),
        monthlyCreditLimit: z.coerce.number().int().min(0).max(1_000_000_000).optional(),
        rateLimitPerMinute: z.coerce.number().int().min(1).max(10_000).optional(),
      }),
      { name: f.name, teamId: f.teamId || undefined, scopes, monthlyCreditLimit: f.monthlyCreditLimit || undefined, rateLimitPerMinute: f.rateLimitPerMinute || undefined },
      'body',
    );
    const { secret } = await apiKeys.create(
      req.user!.id,
      { ...body, monthlyCreditLimit: body.monthlyCreditLimit === undefined ? undefined : body.monthlyCreditLimit * 1000 },
      requestContext(req),
    );
    await renderKeys(req, res, secret);
  }));

  pages.post('/account/keys/:id/revoke', requireAuth, action(() => '/account/keys', async (req) => {
    const id = parseOrThrow(z.uuid(), req.params.id, 'params.id');
    await apiKeys.revoke(req.user!.id, id, requestContext(req));
    setFlash(req, { type: 'success', message: 'Key revoked. Requests with it are refused from now on.' });
    return '/account/keys';
  }));

  return pages;
}
