import crypto from 'node:crypto';
import express, { type Request, type Response } from 'express';
import { requestContext, type AuditLog } from '../auth/audit-log.ts';
import { requireAdmin } from '../auth/auth-middleware.ts';
import { fieldErrorsOf, formBody } from '../auth/page-forms.ts';
import { setFlash, takeFlash } from '../auth/session.ts';
import { balanceJson, transferJson } from '../credits/credits-json.ts';
import { viewHelpers } from '../credits/view-helpers.ts';
import { asProblem } from '../http/domain-problems.ts';
import { ValidationError } from '../http/errors.ts';
import { parseOrThrow, schemas, validate } from '../http/validate.ts';
import { formatCredits } from '../ledger/credits.ts';
import { AdjustmentBody, AuditQuery, GrantBody, UserDetailQuery, UsersQuery } from './admin-schemas.ts';
import type { AdminService } from './admin-service.ts';
import { actorUserId, auditWords } from './audit-words.ts';
import { paymentView } from '../payments/payments-json.ts';
import type { Payments } from '../payments/payments-service.ts';
import type { Subscriptions } from '../subscriptions/subscriptions-service.ts';
import { loadSubscriptionView } from '../subscriptions/subscriptions-json.ts';

type FormName = 'grant' | 'adjust';

/**
 * The admin pages, admins only: /admin (find a user), /admin/users/:id (their ledger, grant or
 * adjust credits), /admin/audit (the audit log). Forms post back with a CSRF token and a one-time
 * idempotency key (so a double submit grants once), then redirect (303) or re-render with inline
 * errors (400 invalid, 402 not enough credits for a negative adjustment, 409 conflict).
 */
export function createAdminPages(deps: {
  admin: AdminService;
  audit: AuditLog;
  payments: Pick<Payments, 'listPayments' | 'getPayment' | 'listWebhookProblems'>;
  /** The subscription section with its invoices and the manual grant form (views/subscriptions/_admin.ejs). */
  subscriptions: Pick<Subscriptions, 'summary' | 'listInvoices'>;
}): express.Router {
  const { admin, audit, payments } = deps;
  const pages = express.Router();
  pages.use('/admin', requireAdmin);

  function queryOrEmpty<T>(parse: () => T): { value: T | Record<string, never>; error?: string } {
    try {
      return { value: parse() };
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      return { value: {}, error: err.errors.map((e) => `${e.field.replace(/^query\./, '')} ${e.message}`).join('; ') };
    }
  }

  pages.get('/admin', async (req, res) => {
    const { value: q, error } = queryOrEmpty(() => validate(UsersQuery, req, 'query'));
    const page = await admin.listUsers(q);
    const webhookProblems = (await payments.listWebhookProblems({ limit: 5 })).items;
    const olderParams = new URLSearchParams();
    if (q.query) olderParams.set('query', q.query);
    if (page.nextCursor) olderParams.set('cursor', page.nextCursor);
    res.status(error ? 400 : 200).render('admin/index', {
      title: 'Admin',
      flash: takeFlash(req),
      query: typeof req.query.query === 'string' ? req.query.query : '',
      queryError: error,
      users: page.items,
      isFirstPage: !q.cursor,
      nextHref: page.nextCursor ? `/admin?${olderParams}` : undefined,
      webhookProblems,
      fmt: viewHelpers,
    });
  });

  async function renderUser(
    req: Request,
    res: Response,
    id: string,
    status: number,
    form?: { name: FormName; values: Record<string, unknown>; errors: Record<string, string> },
  ) {
    const { value: q, error } = queryOrEmpty(() => validate(UserDetailQuery, req, 'query'));
    const { user, balance, transfers } = await admin.getUser(id, { cursor: q.cursor, limit: 25 });
    const auditEntries = await admin.userAudit(user.id, 10);
    const people = await admin.peopleByIds(transfers.items.map((e) => actorUserId(e.actor) ?? '').filter(Boolean));
    // The payments section, with refund forms (posted to the payments feature).
    const list = await payments.listPayments(user.id, 20);
    const adminPayments = await Promise.all(list.map(async (p) => paymentView(p, (await payments.getPayment(p.id, null)).refunds)));
    const subscription = await loadSubscriptionView(deps.subscriptions, user.id);
    const blank = () => ({ idempotencyKey: crypto.randomUUID() });
    res.status(status).render('admin/user', {
      title: `${user.name} · Admin`,
      flash: takeFlash(req),
      profile: user,
      balance: balanceJson(balance),
      transfers: transfers.items.map((e) => transferJson(e, { withActor: true })),
      olderHref: transfers.nextCursor ? `/admin/users/${user.id}?cursor=${encodeURIComponent(transfers.nextCursor)}#ledger` : undefined,
      isFirstPage: !q.cursor,
      historyError: error,
      auditEntries,
      adminPayments,
      subscription,
      grant: form?.name === 'grant' ? form : { values: blank(), errors: {} },
      adjust: form?.name === 'adjust' ? form : { values: blank(), errors: {} },
      people,
      words: auditWords,
      fmt: viewHelpers,
    });
  }

  pages.get('/admin/users/:id', async (req, res) => {
    await renderUser(req, res, String(req.params.id), 200);
    // GDPR accountability: reading a person's data is recorded as well as changing it
    await audit.record({ actor: `admin:${req.user!.id}`, actorUserId: req.user!.id, action: 'admin.user_viewed', target: { type: 'user', id: String(req.params.id) }, ...requestContext(req), details: { via: 'page' } });
  });

  /** Handles one admin form: validate, call the service, redirect; or re-render with errors. */
  async function handleForm(req: Request, res: Response, name: FormName) {
    const id = String(req.params.id);
    const { idempotencyKey, ...fields } = formBody(req);
    const values = { ...fields, idempotencyKey };
    try {
      const key = parseOrThrow(schemas.idempotencyKey.optional(), idempotencyKey === '' ? undefined : idempotencyKey, 'body.idempotencyKey');
      const ctx = requestContext(req);
      if (name === 'grant') {
        const body = parseOrThrow(GrantBody, fields, 'body');
        const r = await admin.grant(req.user!, id, body, key, ctx);
        const expiry = r.lot.expiresAt ? `, expiring ${viewHelpers.date(r.lot.expiresAt)}` : '';
        setFlash(req, { type: 'success', message: `Granted ${formatCredits(r.transfer.amount)} credits${expiry}.` });
      } else {
        const body = parseOrThrow(AdjustmentBody, fields, 'body');
        const r = await admin.adjust(req.user!, id, body, key, ctx);
        const sign = body.credits > 0 ? '+' : '−';
        setFlash(req, { type: 'success', message: `Adjusted the balance by ${sign}${formatCredits(r.transfer.amount)} credits.` });
      }
      res.redirect(303, `/admin/users/${encodeURIComponent(id)}`);
    } catch (err) {
      const errors = fieldErrorsOf(err);
      if (errors) return renderUser(req, res, id, 400, { name, values, errors });
      const problem = asProblem(err);
      if (problem && (problem.status === 402 || problem.status === 409)) {
        return renderUser(req, res, id, problem.status, { name, values, errors: { [problem.status === 402 ? 'credits' : 'form']: problem.detail } });
      }
      throw err;
    }
  }

  pages.post('/admin/users/:id/grants', (req, res) => handleForm(req, res, 'grant'));
  pages.post('/admin/users/:id/adjustments', (req, res) => handleForm(req, res, 'adjust'));

  pages.get('/admin/audit', async (req, res) => {
    const { value: q, error } = queryOrEmpty(() => validate(AuditQuery, req, 'query'));
    const page = await audit.list({ actor: q.actor, action: q.action, targetQuery: q.target, from: q.from, to: q.to }, { limit: 50, cursor: q.cursor });
    const params = new URLSearchParams();
    for (const k of ['actor', 'action', 'target', 'from', 'to'] as const) {
      const v = req.query[k];
      if (typeof v === 'string' && v !== '' && !error) params.set(k, v);
    }
    const exportParams = new URLSearchParams([...params].filter(([k]) => k !== 'cursor'));
    const firstHref = `/admin/audit${params.size ? `?${params}` : ''}`;
    if (page.nextCursor) params.set('cursor', page.nextCursor);
    res.status(error ? 400 : 200).render('admin/audit', {
      title: 'Audit log · Admin',
      filters: Object.fromEntries((['actor', 'action', 'target', 'from', 'to'] as const).map((k) => [k, typeof req.query[k] === 'string' ? req.query[k] : ''])),
      exportHref: `/api/admin/audit/export${exportParams.size ? `?${exportParams}` : ''}`,
      filterError: error,
      entries: page.items,
      isFirstPage: !q.cursor,
      firstHref,
      nextHref: page.nextCursor ? `/admin/audit?${params}` : undefined,
      words: auditWords,
      fmt: viewHelpers,
    });
  });

  return pages;
}
