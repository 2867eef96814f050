import { millicreditsToCredits } from '../ledger/credits.ts';
import type { PeriodCap, SpendCapAlert, SpendSettings } from './spend-service.ts';

const credits = (v: number | null) => (v === null ? null : millicreditsToCredits(v));

function periodJson(p: PeriodCap) {
  return {
    limit: credits(p.limit),
    yours: credits(p.yours),
    hardCap: credits(p.hardCap),
    spent: millicreditsToCredits(p.spent),
    held: millicreditsToCredits(p.held),
    remaining: credits(p.remaining),
    resetsAt: p.resetsAt.toISOString(),
  };
}

/**
 * Spend settings as the API shows them (credits): `{timeZone, alertThresholds, caps: {daily,
 * monthly, perJob}}`; each cap has `limit` (what applies: the lower of `yours` and `hardCap`).
 */
export function spendSettingsJson(s: SpendSettings) {
  return {
    timeZone: s.timeZone,
    alertThresholds: s.alertThresholds,
    caps: {
      daily: periodJson(s.daily),
      monthly: periodJson(s.monthly),
      perJob: { limit: credits(s.perJob.limit), yours: credits(s.perJob.yours), hardCap: credits(s.perJob.hardCap) },
    },
  };
}

export function spendAlertJson(a: SpendCapAlert) {
  return {
    cap: a.cap,
    threshold: a.threshold,
    limit: millicreditsToCredits(a.limit),
    used: millicreditsToCredits(a.used),
    periodStart: a.periodStart.toISOString(),
    createdAt: a.createdAt.toISOString(),
  };
}
