import { formatMoney } from '@tally/money';
import type { Db } from '../db/database.ts';
import { millicreditsToCredits } from '../ledger/credits.ts';
import * as store from './reports-store.ts';
import type { ReportGranularity } from './reports-store.ts';
import { periodFloor, periodNext } from './usage-service.ts';

const DAY = 86_400_000;

/** A report's range: the given one, or the last 30 days (day) / 12 months (month) up to the end of today. */
export function reportRange(q: { from?: Date; to?: Date; granularity: ReportGranularity }, now: Date): { from: Date; to: Date } {
  const to = q.to ?? new Date(periodFloor(now, 'day').getTime() + DAY);
  const from = q.from ?? (q.granularity === 'day' ? new Date(to.getTime() - 30 * DAY) : new Date(Date.UTC(to.getUTCFullYear(), to.getUTCMonth() - 11, 1)));
  return { from, to };
}

/** Money as JSON: integer minor units and the same formatted for people. */
const money = (minor: number, currency: string) => ({ minor, formatted: formatMoney(minor, currency) });

/**
 * The admin reports (revenue, credit liability, breakage, funnel) as JSON. Money is per currency in
 * integer minor units (`{minor, formatted}`); credits are JSON numbers (≤ 3 decimals).
 */
export function createReports(deps: { db: Db; clock?: () => Date }) {
  const { db } = deps;
  const clock = deps.clock ?? (() => new Date());

  return {
    /**
     * Revenue per period and currency (gross, refunds, net), per product (packs and plans) and in
     * total per currency, over [from, to).
     */
    async revenue(q: { from?: Date; to?: Date; granularity: ReportGranularity }) {
      const { from, to } = reportRange(q, clock());
      const rows = await store.revenueRows(db, from, to, q.granularity);
      const currencies = [...new Set(rows.map((r) => r.currency))].sort();
      const key = (p: Date, c: string) => `${p.toISOString()}|${c}`;
      const cell = new Map<string, { gross: number; refunds: number }>();
      const products = new Map<string, { type: 'pack' | 'plan'; id: string; name: string; currency: string; gross: number; refunds: number; count: number }>();
      for (const r of rows) {
        const k = key(r.periodStart, r.currency);
        const c = cell.get(k) ?? { gross: 0, refunds: 0 };
        c.gross += r.gross;
        c.refunds += r.refunds;
        cell.set(k, c);
        const pk = `${r.productType}|${r.productId}|${r.currency}`;
        const p = products.get(pk) ?? { type: r.productType, id: r.productId, name: r.productName, currency: r.currency, gross: 0, refunds: 0, count: 0 };
        p.gross += r.gross;
        p.refunds += r.refunds;
        p.count += r.count;
        products.set(pk, p);
      }
      const series: Array<{ periodStart: string; currency: string; gross: ReturnType<typeof money>; refunds: ReturnType<typeof money>; net: ReturnType<typeof money> }> = [];
      for (let p = periodFloor(from, q.granularity); p < to; p = periodNext(p, q.granularity)) {
        for (const c of currencies) {
          const v = cell.get(key(p, c)) ?? { gross: 0, refunds: 0 };
          series.push({ periodStart: p.toISOString(), currency: c, gross: money(v.gross, c), refunds: money(v.refunds, c), net: money(v.gross - v.refunds, c) });
        }
      }
      const totals = currencies.map((c) => {
        const rs = rows.filter((r) => r.currency === c);
        const gross = rs.reduce((s, r) => s + r.gross, 0);
        const refunds = rs.reduce((s, r) => s + r.refunds, 0);
        return { currency: c, gross: money(gross, c), refunds: money(refunds, c), net: money(gross - refunds, c) };
      });
      return {
        from: from.toISOString(),
        to: to.toISOString(),
        granularity: q.granularity,
        series,
        byProduct: [...products.values()].map((p) => ({
          type: p.type,
          id: p.id,
          name: p.name,
          currency: p.currency,
          sales: p.count,
          gross: money(p.gross, p.currency),
          refunds: money(p.refunds, p.currency),
          net: money(p.gross - p.refunds, p.currency),
        })),
        totals,
      };
    },

    /** Credit liability now: deferred revenue per currency and outstanding credits by lot source. */
    async liability() {
      const now = clock();
      const r = await store.liabilityRows(db, now);
      const outstanding = r.bySource.reduce((s, x) => s + x.remaining, 0);
      return {
        at: now.toISOString(),
        deferredRevenue: r.deferred.map((d) => ({ currency: d.currency, purchasedCreditsUnspent: millicreditsToCredits(d.millicredits), value: money(d.valueMinor, d.currency), payments: d.payments })),
        outstandingBySource: r.bySource.map((s) => ({ source: s.source, credits: millicreditsToCredits(s.remaining), held: millicreditsToCredits(s.held), lots: s.lots })),
        /** Every unexpired lot remainder (held included). */
        outstandingCredits: millicreditsToCredits(outstanding),
        /** Past their expiry, not yet moved to `expired` by the sweeper (not counted above). */
        expiredUnsweptCredits: millicreditsToCredits(r.expiredUnswept),
        /** Refund debt users owe (it lowers what is owed to them). */
        debtCredits: millicreditsToCredits(r.debt),
      };
    },

    /** Credits expired per period and lot source over [from, to), with totals per source. */
    async breakage(q: { from?: Date; to?: Date; granularity: ReportGranularity }) {
      const { from, to } = reportRange(q, clock());
      const rows = await store.breakageRows(db, from, to, q.granularity);
      const sources = [...new Set(rows.map((r) => r.source))].sort();
      const series = [];
      for (let p = periodFloor(from, q.granularity); p < to; p = periodNext(p, q.granularity)) {
        const rs = rows.filter((r) => r.periodStart.getTime() === p.getTime());
        series.push({
          periodStart: p.toISOString(),
          credits: millicreditsToCredits(rs.reduce((s, r) => s + r.millicredits, 0)),
          bySource: Object.fromEntries(sources.map((s) => [s, millicreditsToCredits(rs.filter((r) => r.source === s).reduce((t, r) => t + r.millicredits, 0))])),
        });
      }
      return {
        from: from.toISOString(),
        to: to.toISOString(),
        granularity: q.granularity,
        series,
        totals: sources.map((s) => ({ source: s, credits: millicreditsToCredits(rows.filter((r) => r.source === s).reduce((t, r) => t + r.millicredits, 0)) })),
        totalCredits: millicreditsToCredits(rows.reduce((s, r) => s + r.millicredits, 0)),
      };
    },

    /**
     * The funnel over [from, to): sign-ups → first purchase → active spenders with conversion
     * rates (%, one decimal), and per currency the paying users, ARPPU (net ÷ paying users, rounded
     * to a minor unit), refund rate (refunds ÷ gross, %), and the top users by money paid.
     */
    async funnel(q: { from?: Date; to?: Date }) {
      const { from, to } = reportRange({ ...q, granularity: 'day' }, clock());
      const f = await store.funnelRows(db, from, to);
      const pct = (a: number, b: number) => (b > 0 ? Math.round((a / b) * 1000) / 10 : null);
      return {
        from: from.toISOString(),
        to: to.toISOString(),
        signups: f.signups,
        firstPurchase: f.purchased,
        activeSpenders: f.activeSpenders,
        conversion: { signupToPurchase: pct(f.purchased, f.signups), signupToActive: pct(f.activeSpenders, f.signups) },
        perCurrency: f.perCurrency.map((c) => ({
          currency: c.currency,
          payingUsers: c.payingUsers,
          gross: money(c.gross, c.currency),
          refunds: money(c.refunds, c.currency),
          net: money(c.gross - c.refunds, c.currency),
          arppu: c.payingUsers > 0 ? money(Math.round((c.gross - c.refunds) / c.payingUsers), c.currency) : null,
          refundRate: pct(c.refunds, c.gross),
        })),
        topUsers: f.topUsers.map((t) => ({ userId: t.userId, name: t.name, email: t.email, currency: t.currency, paid: money(t.paidMinor, t.currency), payments: t.payments })),
      };
    },
  };
}

export type Reports = ReturnType<typeof createReports>;
