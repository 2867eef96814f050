import express from 'express';
import { requireAuth } from '../auth/auth-middleware.ts';
import { fieldErrorsOf, formBody } from '../auth/page-forms.ts';
import { setFlash, takeFlash } from '../auth/session.ts';
import { viewHelpers } from '../credits/view-helpers.ts';
import { parseOrThrow } from '../http/validate.ts';
import { SpendSettingsBody } from './spend-schemas.ts';
import type { SpendControls } from './spend-service.ts';
import type { AutoRecharge } from '../recharge/auto-recharge-service.ts';
import { autoRechargeJson } from '../recharge/auto-recharge-router.ts';
import { formatMoney } from '@tally/money';
import { spendAlertJson, spendSettingsJson } from './spend-json.ts';

/**
 * `/account/settings/credits`: the user's daily and monthly caps, per-job maximum, time zone and
 * alert thresholds (one form, the API's schema), what is spent and held in the current periods,
 * and the recent cap alerts. A value above an administrator's hard cap is shown beside its field.
 */
export function createSpendPages(deps: { spend: SpendControls; autoRecharge?: AutoRecharge }): express.Router {
  const { spend, autoRecharge } = deps;
  const pages = express.Router();

  async function render(req: express.Request, res: express.Response, status: number, errors: Record<string, string> = {}, values?: Record<string, unknown>) {
    const userId = req.user!.id;
    const [settings, alerts, recharge] = await Promise.all([
      spend.getSettings(userId),
      spend.listAlerts(userId, 10),
      autoRecharge ? autoRecharge.overview(userId).then(autoRechargeJson) : undefined,
    ]);
    const s = spendSettingsJson(settings);
    res.status(status).render('account/settings-credits', {
      title: 'Spending limits',
      flash: takeFlash(req),
      settings: s,
      alerts: alerts.map(spendAlertJson),
      recharge,
      money: formatMoney,
      errors,
      values: values ?? {
        dailyCap: s.caps.daily.yours ?? '',
        monthlyCap: s.caps.monthly.yours ?? '',
        perJobMax: s.caps.perJob.yours ?? '',
        timeZone: s.timeZone,
        alertThresholds: s.alertThresholds.join(', '),
      },
      fmt: viewHelpers,
    });
  }

  pages.get('/account/settings/credits', requireAuth, async (req, res) => {
    await render(req, res, 200);
  });

  pages.post('/account/settings/credits/card/delete', requireAuth, async (req, res) => {
    await autoRecharge?.removeCard(req.user!.id);
    setFlash(req, { type: 'success', message: 'Your saved card is deleted; auto-recharge is off.' });
    res.redirect(303, '/account/settings/credits#auto-recharge');
  });

  pages.post('/account/settings/credits', requireAuth, async (req, res) => {
    const raw = formBody(req);
    try {
      await spend.updateSettings(req.user!.id, parseOrThrow(SpendSettingsBody, raw, 'body'));
    } catch (err) {
      const errors = fieldErrorsOf(err);
      if (!errors) throw err;
      await render(req, res, 400, errors, raw);
      return;
    }
    setFlash(req, { type: 'success', message: 'Your spending limits are saved.' });
    res.redirect(303, '/account/settings/credits');
  });

  return pages;
}
