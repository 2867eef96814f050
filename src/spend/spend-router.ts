import express from 'express';
import { requestContext } from '../auth/audit-log.ts';
import { requireAdmin, requireAuth } from '../auth/auth-middleware.ts';
import { NotFoundError } from '../http/errors.ts';
import { schemas, validate } from '../http/validate.ts';
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

  api.get('/credits/settings', requireAuth, async (req, res) => {
    const [settings, alerts] = await Promise.all([spend.getSettings(req.user!.id), spend.listAlerts(req.user!.id)]);
    res.json({ ...spendSettingsJson(settings), alerts: alerts.map(spendAlertJson) });
  });

  api.put('/credits/settings', requireAuth, async (req, res) => {
    const body = validate(SpendSettingsBody, req);
    res.json(spendSettingsJson(await spend.updateSettings(req.user!.id, body)));
  });

  api.put('/admin/users/:id/limits', requireAdmin, async (req, res) => {
    const { id } = validate(UserParams, req, 'params');
    const body = validate(HardCapsBody, req);
    const settings = await spend.setHardCaps(req.user!, id, body, requestContext(req));
    if (!settings) throw new NotFoundError('user');
    res.json(spendSettingsJson(settings));
  });

  return api;
}
