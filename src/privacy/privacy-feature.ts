import express, { type Request, type Response } from 'express';
import { z } from 'zod';
import { requestContext } from '../auth/audit-log.ts';
import { requireAdmin, requireAuth } from '../auth/auth-middleware.ts';
import { fieldErrorsOf, formBody } from '../auth/page-forms.ts';
import { setFlash, takeFlash } from '../auth/session.ts';
import { viewHelpers } from '../credits/view-helpers.ts';
import type { Feature } from '../feature.ts';
import { contentDisposition } from '../http/content-disposition.ts';
import { AppError } from '../http/errors.ts';
import { parseOrThrow, validate } from '../http/validate.ts';
import { apiRoute } from '../http/api-routes.ts';
import * as R from './privacy-responses.ts';
import type { Services } from '../services.ts';
import type { AccountExport } from './privacy-service.ts';

const IdParams = z.object({ id: z.string().min(1).max(64) }).strict();
const DeletionBody = z.object({ password: z.string().min(1, 'is required').max(1000) }).strict();
const EraseBody = z.object({ reason: z.string().trim().min(3, 'must say why (at least 3 characters)').max(500) }).strict();

/** An export for the API: status, dates, and links (never the storage key). */
function exportJson(e: AccountExport) {
  return {
    id: e.id,
    status: e.status,
    sizeBytes: e.sizeBytes,
    createdAt: e.createdAt.toISOString(),
    readyAt: e.readyAt?.toISOString() ?? null,
    expiresAt: e.expiresAt?.toISOString() ?? null,
    downloadedAt: e.downloadedAt?.toISOString() ?? null,
    links: { self: `/api/account/exports/${e.id}`, download: e.status === 'ready' ? `/api/account/exports/${e.id}/download` : null },
  };
}

const deletionJson = (d: { status: string; requestedAt: Date; scheduledFor: Date; completedAt: Date | null } | null) =>
  d && { status: d.status, requestedAt: d.requestedAt.toISOString(), scheduledFor: d.scheduledFor.toISOString(), completedAt: d.completedAt?.toISOString() ?? null };

/**
 * The privacy feature (issue 19): `POST /api/account/exports` (202), `GET /api/account/exports/:id`
 * and its download; `POST /api/account/deletion {password}` (erasure in 7 days) and `DELETE` to
 * cancel; `POST /api/admin/users/:id/erasure {reason}` (erase now). Pages: /account/privacy, and
 * the erase-now form posted from the admin user page.
 */
export function createPrivacyFeature(services: Services): Feature {
  const { privacy } = services;
  const api = express.Router();
  const pages = express.Router();

  async function sendDownload(req: Request, res: Response) {
    const { id } = validate(IdParams, req, 'params');
    const d = await privacy.openDownload(req.user!, id, requestContext(req));
    res.setHeader('Content-Type', 'application/zip');
    res.setHeader('Content-Disposition', contentDisposition('attachment', d.fileName));
    res.setHeader('Content-Length', String(d.sizeBytes));
    res.setHeader('Cache-Control', 'no-store');
    d.stream.pipe(res);
  }

  apiRoute(api, { method: 'post', path: '/account/exports', summary: 'Ask for an export of all your data (a ZIP, made in the background)', tags: ['privacy'], auth: 'user', responses: { 202: R.ExportResponse } }, requireAuth, async (req, res) => {
    const e = await privacy.requestExport(req.user!, requestContext(req));
    res.status(202).setHeader('Location', `/api/account/exports/${e.id}`).json({ export: exportJson(e) });
  });
  apiRoute(api, { method: 'get', path: '/account/exports', summary: 'Your data exports', tags: ['privacy'], auth: 'user', responses: { 200: R.ExportsResponse } }, requireAuth, async (req, res) => {
    res.json({ exports: (await privacy.listExports(req.user!.id)).map(exportJson) });
  });
  apiRoute(api, { method: 'get', path: '/account/exports/:id', summary: 'One data export', tags: ['privacy'], auth: 'user', request: { params: IdParams }, responses: { 200: R.ExportResponse } }, requireAuth, async (req, res) => {
    const { id } = validate(IdParams, req, 'params');
    res.json({ export: exportJson(await privacy.getExport(req.user!, id)) });
  });
  apiRoute(api, { method: 'get', path: '/account/exports/:id/download', summary: 'Download a ready export (ZIP)', tags: ['privacy'], auth: 'user', request: { params: IdParams }, responses: { 200: { description: 'The ZIP.', contentType: 'application/zip', schema: z.string().meta({ format: 'binary' }) } } }, requireAuth, sendDownload);

  apiRoute(api, { method: 'get', path: '/account/deletion', summary: 'Your account deletion request, if any', tags: ['privacy'], auth: 'user', responses: { 200: R.DeletionResponse } }, requireAuth, async (req, res) => {
    res.json({ deletion: deletionJson(await privacy.deletionStatus(req.user!.id)) });
  });
  apiRoute(api, { method: 'post', path: '/account/deletion', summary: 'Ask for your account to be erased (in 7 days; your password confirms it)', tags: ['privacy'], auth: 'user', request: { body: DeletionBody }, responses: { 202: R.DeletionResponse } }, requireAuth, async (req, res) => {
    const body = validate(DeletionBody, req);
    res.status(202).json({ deletion: deletionJson(await privacy.requestDeletion(req.user!, body.password, requestContext(req))) });
  });
  apiRoute(api, { method: 'delete', path: '/account/deletion', summary: 'Cancel your deletion request', tags: ['privacy'], auth: 'user', responses: { 204: { description: 'Cancelled.' } } }, requireAuth, async (req, res) => {
    await privacy.cancelDeletion(req.user!, requestContext(req));
    res.status(204).end();
  });

  apiRoute(api, { method: 'post', path: '/admin/users/:id/erasure', summary: "Erase a user's personal data now, with a reason; audited", tags: ['admin'], auth: 'admin', request: { params: IdParams, body: EraseBody }, responses: { 200: R.ErasureResponse } }, requireAdmin, async (req, res) => {
    const { id } = validate(IdParams, req, 'params');
    const body = validate(EraseBody, req);
    const r = await privacy.eraseNow(req.user!, id, body.reason, requestContext(req));
    res.json({ erased: true, pseudonym: r.pseudonym, deletion: deletionJson(await privacy.deletionStatus(id)) });
  });

  // ---- pages ----
  async function renderPrivacy(req: Request, res: Response, status = 200, form?: { errors: Record<string, string> }) {
    res.status(status).render('account/privacy', {
      title: 'Privacy and your data',
      flash: takeFlash(req),
      exports: await privacy.listExports(req.user!.id),
      deletion: await privacy.deletionStatus(req.user!.id),
      errors: form?.errors ?? {},
      fmt: viewHelpers,
    });
  }

  pages.get('/account/privacy', requireAuth, (req, res) => renderPrivacy(req, res));
  pages.get('/account/privacy/exports/:id/download', requireAuth, sendDownload);
  pages.post('/account/privacy/exports', requireAuth, async (req, res) => {
    try {
      await privacy.requestExport(req.user!, requestContext(req));
      setFlash(req, { type: 'success', message: 'We are preparing your data. We will email you a link when it is ready; it also appears below.' });
    } catch (err) {
      if (!(err instanceof AppError) || err.status !== 409) throw err;
      setFlash(req, { type: 'error', message: err.detail });
    }
    res.redirect(303, '/account/privacy');
  });
  pages.post('/account/privacy/deletion', requireAuth, async (req, res) => {
    try {
      const body = parseOrThrow(DeletionBody, formBody(req), 'body');
      const d = await privacy.requestDeletion(req.user!, body.password, requestContext(req));
      setFlash(req, { type: 'success', message: `Your account will be erased on ${viewHelpers.date(d.scheduledFor)}. You can cancel until then.` });
      res.redirect(303, '/account/privacy');
    } catch (err) {
      const errors = fieldErrorsOf(err);
      if (errors) return renderPrivacy(req, res, 400, { errors });
      throw err;
    }
  });
  pages.post('/account/privacy/deletion/cancel', requireAuth, async (req, res) => {
    await privacy.cancelDeletion(req.user!, requestContext(req));
    setFlash(req, { type: 'success', message: 'The deletion of your account is cancelled.' });
    res.redirect(303, '/account/privacy');
  });
  pages.post('/admin/users/:id/erasure', requireAdmin, async (req, res) => {
    const id = String(req.params.id);
    try {
      const body = parseOrThrow(EraseBody, formBody(req), 'body');
      await privacy.eraseNow(req.user!, id, body.reason, requestContext(req));
      setFlash(req, { type: 'success', message: 'The account was erased: its email, name and files are gone; its ledger and payments remain under a pseudonym.' });
    } catch (err) {
      const errors = fieldErrorsOf(err);
      if (!errors && !(err instanceof AppError && err.status === 409)) throw err;
      setFlash(req, { type: 'error', message: errors ? `Reason ${errors.reason ?? Object.values(errors)[0]}.` : (err as AppError).detail });
    }
    res.redirect(303, `/admin/users/${encodeURIComponent(id)}`);
  });

  return { api, pages };
}
