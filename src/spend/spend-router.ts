import express from 'express';
import { requestContext } from '../auth/audit-log.ts';
import { requireAdmin, requireAuth } from '../auth/auth-middleware.ts';
import { NotFoundError } from '../http/errors.ts';
import { schemas, validate } from '../http/validate.ts';
import { apiRoute } from '../http/api-routes.ts';
import { SpendSettingsJson, SpendSettingsWithAlerts } from './spend-responses.ts';
import { z } from 'zod';
import { HardCapsBody, SpendSettingsBody } from './spend-schemas.ts';
import type { SpendControls } from './spend-service.ts';
import { spendAlertJson, spendSettingsJson } from './spend-json.ts';

const UserParams = z.object({ id: schemas.uuid }).strict();

/**
 * `GET/PUT /api/credits/settings` (the signed-in user's caps, time zone and alert thresholds, with
 * what is spent and held in the current periods and the recent cap alerts) and
 * `PUT /api/admin/users/:id/limits` (an admin's hard caps; admins only).
 */
export function createSpendRouter(deps: { spend: SpendControls }): express.Router {
  const { spend } = deps;
  const api = express.Router();

  apiRoute(api, { method: 'get', path: '/credits/settings', summary: 'Your spend caps, time zone and alert thresholds, with what is spent and held this period and recent cap alerts', auth: 'user', responses: { 200: SpendSettingsWithAlerts } }, requireAuth, async (req, res) => {
    const [settings, alerts] = await Promise.all([spend.getSettings(req.user!.id), spend.listAlerts(req.user!.id)]);
    res.json({ ...spendSettingsJson(settings), alerts: alerts.map(spendAlertJson) });
  });

  apiRoute(api, { method: 'put', path: '/credits/settings', summary: 'Change your spend caps (`null` removes one), time zone and alert thresholds', auth: 'user', request: { body: SpendSettingsBody }, responses: { 200: SpendSettingsJson } }, requireAuth, async (req, res) => {
    const body = validate(SpendSettingsBody, req);
    res.json(spendSettingsJson(await spend.updateSettings(req.user!.id, body)));
  });

  apiRoute(api, { method: 'put', path: '/admin/users/:id/limits', summary: "Set a user's hard spend caps (`null` removes one); audited", auth: 'admin', request: { params: UserParams, body: HardCapsBody }, responses: { 200: SpendSettingsJson } }, requireAdmin, async (req, res) => {
    const { id } = validate(UserParams, req, 'params');
    const body = validate(HardCapsBody, req);
    const settings = await spend.setHardCaps(req.user!, id, body, requestContext(req));
    if (!settings) throw new NotFoundError('user');
    res.json(spendSettingsJson(settings));
  });

  return api;
}
