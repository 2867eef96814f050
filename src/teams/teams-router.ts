import express from 'express';
import { requestContext } from '../auth/audit-log.ts';
import { requireAuth } from '../auth/auth-middleware.ts';
import { balanceJson } from '../credits/credits-json.ts';
import { idempotencyKeyOf, validate } from '../http/validate.ts';
import { millicreditsToCredits } from '../ledger/credits.ts';
import type { Ledger } from '../ledger/ledger-service.ts';
import { memberJson } from './teams-json.ts';
import { ContributionBody, CreateTeamBody, HistoryQuery, InviteBody, MemberParams, TeamParams, UpdateMemberBody, WalletBody } from './teams-schemas.ts';
import type { Teams } from './teams-service.ts';

/**
 * The teams API under `/api` (signed-in sessions only: API keys never reach these routes).
 * A team you are not an active member of is a 404.
 */
export function createTeamsRouter(deps: { teams: Teams; ledger: Ledger }): express.Router {
  const { teams, ledger } = deps;
  const api = express.Router();

  api.post('/teams', requireAuth, async (req, res) => {
    const body = validate(CreateTeamBody, req);
    const team = await teams.create(req.user!.id, body.name, requestContext(req));
    res.status(201).location(`/api/teams/${team.id}`).json({ team: { ...team, role: 'owner' } });
  });

  api.get('/teams', requireAuth, async (req, res) => {
    res.json({ teams: await teams.listFor(req.user!.id) });
  });

  api.get('/teams/:id', requireAuth, async (req, res) => {
    const { id } = validate(TeamParams, req, 'params');
    const team = await teams.get(id, req.user!.id);
    const [balance, members] = await Promise.all([ledger.getBalance(id), teams.members(id, req.user!.id)]);
    res.json({ team, balance: balanceJson(balance), members: members.map(memberJson) });
  });

  api.get('/teams/:id/transfers', requireAuth, async (req, res) => {
    const { id } = validate(TeamParams, req, 'params');
    const q = validate(HistoryQuery, req, 'query');
    const rows = await teams.history(id, req.user!.id, { memberId: q.member, limit: q.limit });
    res.json({ transfers: rows.map((r) => ({ ...r, amount: millicreditsToCredits(r.amount) })) });
  });

  api.post('/teams/:id/invitations', requireAuth, async (req, res) => {
    const { id } = validate(TeamParams, req, 'params');
    const body = validate(InviteBody, req);
    const inv = await teams.invite(id, req.user!.id, body, requestContext(req));
    res.status(201).json({ invitation: { id: inv.id, email: inv.email, role: inv.role, expiresAt: inv.expiresAt } });
  });

  api.post('/invitations/:token/accept', requireAuth, async (req, res) => {
    const token = String(req.params.token).slice(0, 200);
    const team = await teams.accept(token, req.user!, requestContext(req));
    res.json({ team });
  });

  api.patch('/teams/:id/members/:userId', requireAuth, async (req, res) => {
    const { id, userId } = validate(MemberParams, req, 'params');
    const body = validate(UpdateMemberBody, req);
    await teams.updateMember(id, req.user!.id, userId, body, requestContext(req));
    res.status(204).end();
  });

  api.delete('/teams/:id/members/:userId', requireAuth, async (req, res) => {
    const { id, userId } = validate(MemberParams, req, 'params');
    await teams.removeMember(id, req.user!.id, userId, requestContext(req));
    res.status(204).end();
  });

  api.post('/teams/:id/contributions', requireAuth, async (req, res) => {
    const { id } = validate(TeamParams, req, 'params');
    const body = validate(ContributionBody, req);
    const { transfers, lots, replayed } = await teams.contribute(id, req.user!.id, body.credits, idempotencyKeyOf(req), requestContext(req));
    if (replayed) res.setHeader('Idempotent-Replayed', 'true');
    // One part per purchased lot drawn, each arriving with that lot's expiry.
    res.status(201).json({
      contribution: {
        credits: millicreditsToCredits(transfers.reduce((sum, t) => sum + t.amount, 0)),
        createdAt: transfers[0]!.createdAt,
        parts: transfers.map((t, i) => ({ transferId: t.id, credits: millicreditsToCredits(t.amount), expiresAt: lots[i]?.expiresAt ?? null })),
      },
    });
  });

  /** The wallet the user's jobs use by default: `personal` or `team:<id>`. */
  api.put('/account/wallet', requireAuth, async (req, res) => {
    const { wallet } = validate(WalletBody, req);
    await teams.setDefaultWallet(req.user!.id, wallet === 'personal' ? null : wallet.slice(5).toLowerCase());
    res.json({ wallet });
  });

  return api;
}
