import express from 'express';
import { requestContext } from '../auth/audit-log.ts';
import { requireAuth } from '../auth/auth-middleware.ts';
import { balanceJson } from '../credits/credits-json.ts';
import { idempotencyKeyOf, validate } from '../http/validate.ts';
import { apiRoute } from '../http/api-routes.ts';
import { z } from 'zod';
import * as R from './teams-responses.ts';
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

  apiRoute(api, { method: 'post', path: '/teams', summary: 'Create a team (you are its owner) with a credit pool', tags: ['teams'], auth: 'user', request: { body: CreateTeamBody }, responses: { 201: R.TeamResponse } }, requireAuth, async (req, res) => {
    const body = validate(CreateTeamBody, req);
    const team = await teams.create(req.user!.id, body.name, requestContext(req));
    res.status(201).location(`/api/teams/${team.id}`).json({ team: { ...team, role: 'owner' } });
  });

  apiRoute(api, { method: 'get', path: '/teams', summary: 'Your teams, with your role', tags: ['teams'], auth: 'user', responses: { 200: R.TeamsResponse } }, requireAuth, async (req, res) => {
    res.json({ teams: await teams.listFor(req.user!.id) });
  });

  apiRoute(api, { method: 'get', path: '/teams/:id', summary: "A team: its pool's balance and its members with budgets and spend", tags: ['teams'], auth: 'user', request: { params: TeamParams }, responses: { 200: R.TeamDetailResponse } }, requireAuth, async (req, res) => {
    const { id } = validate(TeamParams, req, 'params');
    const team = await teams.get(id, req.user!.id);
    const [balance, members] = await Promise.all([ledger.getBalance(id), teams.members(id, req.user!.id)]);
    res.json({ team, balance: balanceJson(balance), members: members.map(memberJson) });
  });

  apiRoute(api, { method: 'get', path: '/teams/:id/transfers', summary: "The pool's history, newest first, with the member behind each entry", tags: ['teams'], auth: 'user', request: { params: TeamParams, query: HistoryQuery }, responses: { 200: R.TeamTransfersResponse } }, requireAuth, async (req, res) => {
    const { id } = validate(TeamParams, req, 'params');
    const q = validate(HistoryQuery, req, 'query');
    const rows = await teams.history(id, req.user!.id, { memberId: q.member, limit: q.limit });
    res.json({ transfers: rows.map((r) => ({ ...r, amount: millicreditsToCredits(r.amount) })) });
  });

  apiRoute(api, { method: 'post', path: '/teams/:id/invitations', summary: 'Invite someone by email (a link valid 7 days)', tags: ['teams'], auth: 'user', request: { params: TeamParams, body: InviteBody }, responses: { 201: R.InvitationResponse } }, requireAuth, async (req, res) => {
    const { id } = validate(TeamParams, req, 'params');
    const body = validate(InviteBody, req);
    const inv = await teams.invite(id, req.user!.id, body, requestContext(req));
    res.status(201).json({ invitation: { id: inv.id, email: inv.email, role: inv.role, expiresAt: inv.expiresAt } });
  });

  apiRoute(api, { method: 'post', path: '/invitations/:token/accept', summary: 'Accept an invitation (the token from its email)', tags: ['teams'], auth: 'user', request: { params: z.object({ token: z.string() }) }, responses: { 200: R.TeamResponse } }, requireAuth, async (req, res) => {
    const token = String(req.params.token).slice(0, 200);
    const team = await teams.accept(token, req.user!, requestContext(req));
    res.json({ team });
  });

  apiRoute(api, { method: 'patch', path: '/teams/:id/members/:userId', summary: "Change a member's role or budgets", tags: ['teams'], auth: 'user', request: { params: MemberParams, body: UpdateMemberBody }, responses: { 204: { description: 'Changed.' } } }, requireAuth, async (req, res) => {
    const { id, userId } = validate(MemberParams, req, 'params');
    const body = validate(UpdateMemberBody, req);
    await teams.updateMember(id, req.user!.id, userId, body, requestContext(req));
    res.status(204).end();
  });

  apiRoute(api, { method: 'delete', path: '/teams/:id/members/:userId', summary: 'Remove a member (a team keeps at least one owner)', tags: ['teams'], auth: 'user', request: { params: MemberParams }, responses: { 204: { description: 'Removed.' } } }, requireAuth, async (req, res) => {
    const { id, userId } = validate(MemberParams, req, 'params');
    await teams.removeMember(id, req.user!.id, userId, requestContext(req));
    res.status(204).end();
  });

  apiRoute(api, { method: 'post', path: '/teams/:id/contributions', summary: 'Move purchased credits from your wallet into the pool, each part keeping its expiry', tags: ['teams'], auth: 'user', request: { params: TeamParams, body: ContributionBody, idempotencyKey: true }, responses: { 201: R.ContributionResponse } }, requireAuth, async (req, res) => {
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
  apiRoute(api, { method: 'put', path: '/account/wallet', summary: 'The wallet your jobs use by default: `personal` or `team:<id>`', tags: ['teams'], auth: 'user', request: { body: WalletBody }, responses: { 200: R.WalletResponse } }, requireAuth, async (req, res) => {
    const { wallet } = validate(WalletBody, req);
    await teams.setDefaultWallet(req.user!.id, wallet === 'personal' ? null : wallet.slice(5).toLowerCase());
    res.json({ wallet });
  });

  return api;
}
