import express from 'express';
import { requestContext, type AuditLog } from '../auth/audit-log.ts';
import { requireAdmin } from '../auth/auth-middleware.ts';
import type { Config } from '../config.ts';
import { balanceJson, lotJson, transferJson } from '../credits/credits-json.ts';
import type { Db } from '../db/database.ts';
import { idempotencyKeyOf, validate } from '../http/validate.ts';
import { apiRoute } from '../http/api-routes.ts';
import * as R from './admin-responses.ts';
import { checkBooks } from '../ledger/ledger-check-store.ts';
import type { Payments } from '../payments/payments-service.ts';
import { AdjustmentBody, AuditExportQuery, AuditQuery, GrantBody, UserDetailQuery, UserParams, UsersQuery, WebhookProblemsQuery } from './admin-schemas.ts';
import type { AdminService } from './admin-service.ts';
import { adminTransferJson, auditExportJson, auditJson, profileJson, webhookProblemJson } from './admin-json.ts';

/**
 * `/api/admin/*`, admins only (401 without a session, 403 for other users, on every path below
 * /api/admin, known or not): users, their ledger, grants, adjustments, the audit log and the
 * ledger check, and the Stripe webhook deliveries that could not be used.
 */
export function createAdminRouter(deps: {
  admin: AdminService;
  audit: AuditLog;
  db: Db;
  config: Readonly<Config>;
  payments: Pick<Payments, 'listWebhookProblems'>;
}): express.Router {
  const { admin, audit, db, config, payments } = deps;
  const api = express.Router();
  api.use('/admin', requireAdmin);

  apiRoute(api, { method: 'get', path: '/admin/users', summary: 'Users, searched by email or name', auth: 'admin', request: { query: UsersQuery }, responses: { 200: R.UsersPage } }, async (req, res) => {
    const q = validate(UsersQuery, req, 'query');
    const page = await admin.listUsers(q);
    res.json({ users: page.items.map(profileJson), nextCursor: page.nextCursor });
  });

  apiRoute(api, { method: 'get', path: '/admin/users/:id', summary: 'A user, their balance and their ledger (pages of transfers)', auth: 'admin', request: { params: UserParams, query: UserDetailQuery }, responses: { 200: R.UserDetailResponse } }, async (req, res) => {
    const { id } = validate(UserParams, req, 'params');
    const q = validate(UserDetailQuery, req, 'query');
    const { user, balance, transfers } = await admin.getUser(id, q);
    // GDPR accountability: reading a person's data is recorded as well as changing it
    await audit.record({ actor: `admin:${req.user!.id}`, actorUserId: req.user!.id, action: 'admin.user_viewed', target: { type: 'user', id: user.id }, ...requestContext(req), details: { via: 'api' } });
    res.json({
      user: profileJson(user),
      balance: balanceJson(balance),
      transfers: transfers.items.map((e) => transferJson(e, { withActor: true })),
      nextCursor: transfers.nextCursor,
    });
  });

  apiRoute(api, { method: 'post', path: '/admin/users/:id/grants', summary: 'Grant credits (a lot, optionally expiring), with a reason; audited', auth: 'admin', request: { params: UserParams, body: GrantBody, idempotencyKey: true }, responses: { 201: R.GrantResponse } }, async (req, res) => {
    const { id } = validate(UserParams, req, 'params');
    const body = validate(GrantBody, req);
    const key = idempotencyKeyOf(req);
    const r = await admin.grant(req.user!, id, body, key, requestContext(req));
    if (r.replayed) res.setHeader('Idempotent-Replayed', 'true');
    res.status(201).json({ transfer: adminTransferJson(r.transfer), lot: lotJson(r.lot), balance: balanceJson(r.balance) });
  });

  apiRoute(api, { method: 'post', path: '/admin/users/:id/adjustments', summary: 'Adjust credits up or down (never below zero available), with a reason; audited', auth: 'admin', request: { params: UserParams, body: AdjustmentBody, idempotencyKey: true }, responses: { 201: R.AdjustmentResponse } }, async (req, res) => {
    const { id } = validate(UserParams, req, 'params');
    const body = validate(AdjustmentBody, req);
    const key = idempotencyKeyOf(req);
    const r = await admin.adjust(req.user!, id, body, key, requestContext(req));
    if (r.replayed) res.setHeader('Idempotent-Replayed', 'true');
    res.status(201).json({ transfer: adminTransferJson(r.transfer), balance: balanceJson(r.balance) });
  });

  apiRoute(api, { method: 'get', path: '/admin/audit', summary: 'The audit log, newest first', auth: 'admin', request: { query: AuditQuery }, responses: { 200: R.AuditPage } }, async (req, res) => {
    const q = validate(AuditQuery, req, 'query');
    const page = await audit.list({ actor: q.actor, action: q.action, targetQuery: q.target, from: q.from, to: q.to }, { limit: q.limit, cursor: q.cursor });
    res.json({ entries: page.items.map(auditJson), nextCursor: page.nextCursor });
  });

  /**
   * The audit log for an auditor: JSON Lines (one entry a line, oldest first, with `seq`,
   * `prevHash` and `hash`, so the chain can be checked line by line), streamed in pages.
   */
  apiRoute(
    api,
    {
      method: 'get',
      path: '/admin/audit/export',
      summary: 'The audit log as JSON Lines for an auditor, oldest first, with the hash chain',
      auth: 'admin',
      request: { query: AuditExportQuery },
      responses: { 200: { description: 'One audit entry per line (`seq`, `prevHash`, `hash`, …).', contentType: 'application/x-ndjson' } },
    },
    async (req, res) => {
    const q = validate(AuditExportQuery, req, 'query');
    await audit.record({
      actor: `admin:${req.user!.id}`,
      actorUserId: req.user!.id,
      action: 'admin.audit_exported',
      ...requestContext(req),
      details: { from: q.from?.toISOString() ?? null, to: q.to?.toISOString() ?? null },
    });
    await audit.seal();
    const stamp = new Date().toISOString().slice(0, 10);
    res.setHeader('Content-Type', 'application/x-ndjson; charset=utf-8');
    res.setHeader('Content-Disposition', `attachment; filename="tally-audit-${stamp}.jsonl"`);
    res.setHeader('Cache-Control', 'no-store');
    for await (const entry of audit.iterate({ actor: q.actor, action: q.action, targetQuery: q.target, from: q.from, to: q.to })) {
      if (!res.write(`${JSON.stringify(auditExportJson(entry))}\n`)) await new Promise((r) => res.once('drain', r));
    }
    res.end();
    },
  );

  apiRoute(api, { method: 'get', path: '/admin/webhook-problems', summary: 'Stripe webhook deliveries that could not be used', auth: 'admin', request: { query: WebhookProblemsQuery }, responses: { 200: R.WebhookProblemsPage } }, async (req, res) => {
    const q = validate(WebhookProblemsQuery, req, 'query');
    const page = await payments.listWebhookProblems({ limit: q.limit, cursor: q.cursor });
    res.json({ problems: page.items.map(webhookProblemJson), nextCursor: page.nextCursor });
  });

  apiRoute(api, { method: 'get', path: '/admin/ledger/check', summary: 'Check every ledger invariant against the database', auth: 'admin', responses: { 200: R.LedgerCheckResponse } }, async (_req, res) => {
    const violations = await checkBooks(db, { sweepIntervalMs: config.sweepIntervalMs });
    res.json({ ok: violations.length === 0, violations });
  });

  return api;
}
