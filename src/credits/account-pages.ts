import express from 'express';
import { requestContext } from '../auth/audit-log.ts';
import { requireAuth } from '../auth/auth-middleware.ts';
import type { SessionsService } from '../auth/sessions-service.ts';
import { setFlash, takeFlash } from '../auth/session.ts';
import { ValidationError } from '../http/errors.ts';
import type { Ledger } from '../ledger/ledger-service.ts';
import { paymentView } from '../payments/payments-json.ts';
import type { Payments } from '../payments/payments-service.ts';
import type { Subscriptions } from '../subscriptions/subscriptions-service.ts';
import { loadSubscriptionView } from '../subscriptions/subscriptions-json.ts';
import { TRANSFER_KINDS } from '../ledger/ledger-types.ts';
import { validate } from '../http/validate.ts';
import { balanceJson, transferJson } from './credits-json.ts';
import { TransfersQuery } from './transfers-schemas.ts';
import { viewHelpers } from './view-helpers.ts';
import { formatMoney } from '@tally/money';

/** Statement lines per page on /account. */
const PAGE_SIZE = 25;

/**
 * The /account page: balance, lots with their expiry, active holds, the transfer history (filters,
 * keyset pagination, CSV download), the user's sessions (sessions service) and their last 20
 * purchases (payments service; views/account/_payments.ejs).
 */
export function createAccountPages(deps: {
  ledger: Ledger;
  sessions: SessionsService;
  payments: Pick<Payments, 'listPayments'>;
  /** The subscription section (views/subscriptions/_account.ejs). */
  subscriptions: Pick<Subscriptions, 'summary' | 'listInvoices'>;
  /** Email verification and the alert history (views/notifications/_account.ejs). */
  notices: { forAccount(userId: string): Promise<unknown> };
  /** Auto-recharge's status, next allowed recharge and history (issue 14; views/account/_auto-recharge.ejs), as JSON. */
  autoRecharge?: { forAccount(userId: string): Promise<unknown> };
  /** The referral section and redeem form (views/growth/_account.ejs); it remembers the browser. */
  growth: { forAccount(userId: string, req: express.Request, res: express.Response): Promise<unknown> };
}): express.Router {
  const { ledger, sessions: sessionsService, payments } = deps;
  const pages = express.Router();

  pages.get('/account', requireAuth, async (req, res) => {
    const user = req.user!;
    let query: TransfersQuery = {};
    let filterError: string | undefined;
    try {
      query = validate(TransfersQuery, req, 'query');
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      filterError = err.errors.map((e) => `${e.field.replace(/^query\./, '')} ${e.message}`).join('; ');
    }
    const filters = { kind: query.kind, from: query.from, to: query.to };
    const [balance, page, sessions, purchases, notices, subscription, recharge, growth] = await Promise.all([
      ledger.getBalance(user.id),
      ledger.listTransfers(user.id, filters, { limit: PAGE_SIZE, cursor: query.cursor }),
      sessionsService.listSessions(user.id, req.sessionID),
      payments.listPayments(user.id, 20),
      deps.notices.forAccount(user.id),
      loadSubscriptionView(deps.subscriptions, user.id),
      deps.autoRecharge?.forAccount(user.id),
      deps.growth.forAccount(user.id, req, res),
    ]);
    // The filter form shows what was asked for, as typed.
    const raw = (name: string) => (typeof req.query[name] === 'string' ? (req.query[name] as string) : '');
    const filterParams = new URLSearchParams();
    for (const name of ['kind', 'from', 'to']) if (raw(name)) filterParams.set(name, raw(name));
    const csvParams = new URLSearchParams(filterParams);
    csvParams.set('format', 'csv');
    const olderParams = new URLSearchParams(filterParams);
    if (page.nextCursor) olderParams.set('cursor', page.nextCursor);
    res.status(filterError ? 400 : 200).render('account/index', {
      title: 'Your account',
      flash: takeFlash(req),
      user,
      balance: balanceJson(balance),
      transfers: page.items.map((e) => transferJson(e)),
      kinds: TRANSFER_KINDS,
      filters: { kind: raw('kind'), from: raw('from'), to: raw('to') },
      filterError,
      isFirstPage: !query.cursor,
      newestHref: `/account${filterParams.size ? `?${filterParams}` : ''}#history`,
      olderHref: page.nextCursor ? `/account?${olderParams}#history` : undefined,
      csvHref: `/api/credits/transfers?${csvParams}`,
      sessions,
      payments: purchases.map((p) => paymentView(p)),
      notices,
      subscription,
      recharge,
      money: formatMoney,
      growth,
      fmt: viewHelpers,
    });
  });

  pages.post('/account/sessions/revoke-others', requireAuth, async (req, res) => {
    const revoked = await sessionsService.revokeOtherSessions(req.user!, req.sessionID, requestContext(req));
    setFlash(req, { type: 'success', message: revoked === 1 ? 'Signed out 1 other session.' : `Signed out ${revoked} other sessions.` });
    res.redirect(303, '/account#sessions');
  });

  return pages;
}
