import express from 'express';
import { requireAuth } from '../auth/auth-middleware.ts';
import { fieldErrorsOf, formBody } from '../auth/page-forms.ts';
import { setFlash, takeFlash } from '../auth/session.ts';
import { viewHelpers } from '../credits/view-helpers.ts';
import { parseOrThrow } from '../http/validate.ts';
import { SpendSettingsBody } from './spend-schemas.ts';
import type { SpendControls } from './spend-service.ts';
import type { AutoRecharge } from '../recharge/auto-recharge-service.ts';
import { AutoRechargeForm, autoRechargeJson } from '../recharge/auto-recharge-router.ts';
import { ValidationError } from '../http/errors.ts';
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

  async function render(
    req: express.Request,
    res: express.Response,
    status: number,
    errors: Record<string, string> = {},
    values?: Record<string, unknown>,
    rechargeForm: { values?: Record<string, unknown>; errors: Record<string, string> } = { errors: {} },
  ) {
    const userId = req.user!.id;
    const [settings, alerts, recharge, packs] = await Promise.all([
      spend.getSettings(userId),
      spend.listAlerts(userId, 10),
      autoRecharge ? autoRecharge.overview(userId).then(autoRechargeJson) : undefined,
      autoRecharge ? autoRecharge.packages() : [],
    ]);
    const s = spendSettingsJson(settings);
    res.status(status).render('account/settings-credits', {
      title: 'Spending limits',
      flash: takeFlash(req),
      settings: s,
      alerts: alerts.map(spendAlertJson),
      recharge,
      packs: packs.map((p) => ({ id: p.id, name: p.name, price: formatMoney(p.amountCents, p.currency), credits: p.creditsMillicredits / 1000 })),
      rechargeForm: {
        errors: rechargeForm.errors,
        values: rechargeForm.values ?? {
          threshold: recharge?.threshold ?? 20,
          packageId: recharge?.packageId ?? packs[0]?.id ?? '',
          maxPerDay: recharge?.maxPerDay ?? 3,
          monthlyCeiling: recharge?.monthlyCeilingCents != null ? (recharge.monthlyCeilingCents / 100).toFixed(2) : '',
        },
      },
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
    setFlash(req, { type: 'success', message: 'Your saved card is removed; auto-recharge is off.' });
    res.redirect(303, '/account/settings/credits#auto-recharge');
  });

  // "Save a card": Stripe Checkout in setup mode, then back to .../card/saved.
  pages.post('/account/settings/credits/card', requireAuth, async (req, res) => {
    if (!autoRecharge) return res.redirect(303, '/account/settings/credits');
    res.redirect(303, await autoRecharge.startCardSetup(req.user!));
  });

  pages.get('/account/settings/credits/card/saved', requireAuth, async (req, res) => {
    const sessionId = typeof req.query.session_id === 'string' ? req.query.session_id.slice(0, 255) : '';
    const card = autoRecharge && sessionId ? await autoRecharge.finishCardSetup(req.user!, sessionId) : null;
    setFlash(
      req,
      card
        ? { type: 'success', message: `Your ${card.brand ? card.brand.charAt(0).toUpperCase() + card.brand.slice(1) : ''} card ending ${card.last4} is saved.` }
        : { type: 'error', message: 'The card was not saved. Try again.' },
    );
    res.redirect(303, '/account/settings/credits#auto-recharge');
  });

  pages.post('/account/settings/credits/auto-recharge', requireAuth, async (req, res) => {
    if (!autoRecharge) return res.redirect(303, '/account/settings/credits');
    const raw = formBody(req);
    try {
      const form = parseOrThrow(AutoRechargeForm, raw, 'body');
      if (form.action === 'off') {
        await autoRecharge.turnOff(req.user!.id);
        setFlash(req, { type: 'success', message: 'Auto-recharge is off. Your card stays saved.' });
        return res.redirect(303, '/account/settings/credits#auto-recharge');
      }
      const saved = (await autoRecharge.overview(req.user!.id)).settings;
      if (!saved?.payment_method_id) throw new ValidationError([{ field: 'body.form', message: 'Save a card first.' }]);
      const missing = (['threshold', 'packageId'] as const).filter((f) => form[f] === undefined);
      if (missing.length > 0) throw new ValidationError(missing.map((f) => ({ field: `body.${f}`, message: 'is required' })));
      await autoRecharge.enable(req.user!, {
        paymentMethodId: saved.payment_method_id,
        thresholdMillicredits: form.threshold!,
        packageId: form.packageId!,
        ...(form.maxPerDay !== undefined ? { maxPerDay: form.maxPerDay } : {}),
        ...(form.monthlyCeiling !== undefined ? { monthlyCeilingCents: form.monthlyCeiling } : {}),
      });
    } catch (err) {
      const errors = fieldErrorsOf(err);
      if (!errors) throw err;
      if (errors.monthlyCeilingCents) errors.monthlyCeiling = errors.monthlyCeilingCents;
      await render(req, res, 400, {}, undefined, { values: raw, errors });
      return;
    }
    setFlash(req, { type: 'success', message: 'Auto-recharge is on.' });
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
