import express from 'express';
import { requestContext, type AuditLog } from '../auth/audit-log.ts';
import { requireAdmin } from '../auth/auth-middleware.ts';
import type { Config } from '../config.ts';
import { balanceJson, lotJson, transferJson } from '../credits/credits-json.ts';
import type { Db } from '../db/database.ts';
import { idempotencyKeyOf, validate } from '../http/validate.ts';
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

  api.get('/admin/users', async (req, res) => {
    const q = validate(UsersQuery, req, 'query');
    const page = await admin.listUsers(q);
    res.json({ users: page.items.map(profileJson), nextCursor: page.nextCursor });
  });

  api.get('/admin/users/:id', async (req, res) => {
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

  api.post('/admin/users/:id/grants', async (req, res) => {
    const { id } = validate(UserParams, req, 'params');
    const body = validate(GrantBody, req);
    const key = idempotencyKeyOf(req);
    const r = await admin.grant(req.user!, id, body, key, requestContext(req));
    if (r.replayed) res.setHeader('Idempotent-Replayed', 'true');
    res.status(201).json({ transfer: adminTransferJson(r.transfer), lot: lotJson(r.lot), balance: balanceJson(r.balance) });
  });

  api.post('/admin/users/:id/adjustments', async (req, res) => {
    const { id } = validate(UserParams, req, 'params');
    const body = validate(AdjustmentBody, req);
    const key = idempotencyKeyOf(req);
    const r = await admin.adjust(req.user!, id, body, key, requestContext(req));
    if (r.replayed) res.setHeader('Idempotent-Replayed', 'true');
    res.status(201).json({ transfer: adminTransferJson(r.transfer), balance: balanceJson(r.balance) });
  });

  api.get('/admin/audit', async (req, res) => {
    const q = validate(AuditQuery, req, 'query');
    const page = await audit.list({ actor: q.actor, action: q.action, targetQuery: q.target, from: q.from, to: q.to }, { limit: q.limit, cursor: q.cursor });
    res.json({ entries: page.items.map(auditJson), nextCursor: page.nextCursor });
  });

  /**
   * The audit log for an auditor: JSON Lines (one entry a line, oldest first, with `seq`,
   * `prevHash` and `hash`, so the chain can be checked line by line), streamed in pages.
   */
  api.get('/admin/audit/export', async (req, res) => {
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
  });

  api.get('/admin/webhook-problems', async (req, res) => {
    const q = validate(WebhookProblemsQuery, req, 'query');
    const page = await payments.listWebhookProblems({ limit: q.limit, cursor: q.cursor });
    res.json({ problems: page.items.map(webhookProblemJson), nextCursor: page.nextCursor });
  });

  api.get('/admin/ledger/check', async (_req, res) => {
    const violations = await checkBooks(db, { sweepIntervalMs: config.sweepIntervalMs });
    res.json({ ok: violations.length === 0, violations });
  });

  return api;
}
