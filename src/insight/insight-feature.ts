import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import express, { type Response } from 'express';
import { stringify } from 'csv-stringify';
import { toDecimal } from '@tally/money';
import { requireAdmin, requireAuth } from '../auth/auth-middleware.ts';
import { viewHelpers } from '../credits/view-helpers.ts';
import type { Feature } from '../feature.ts';
import { contentDisposition } from '../http/content-disposition.ts';
import { ValidationError } from '../http/errors.ts';
import { validate } from '../http/validate.ts';
import { apiRoute } from '../http/api-routes.ts';
import { z } from 'zod';
import type { Services } from '../services.ts';
import { BreakageReport, FunnelReport, JobsResponse, LiabilityReport, RevenueReport, StatementMonthsResponse, StatementResponse, StatsResponse, UsageResponse } from './insight-responses.ts';
import { PaymentIdParams, ReportQuery, StatementParams, StatementQuery, UsageQuery } from './insight-schemas.ts';
import { operationLabel } from './usage-service.ts';

/** Writes `rows` as a CSV attachment (UTF-8 with a BOM, formulas escaped: OWASP CSV Injection). */
async function sendCsv(res: Response, filename: string, columns: string[], rows: Iterable<Record<string, unknown>> | AsyncIterable<Record<string, unknown>>): Promise<void> {
  res.status(200);
  res.setHeader('Content-Type', 'text/csv; charset=utf-8');
  res.setHeader('Content-Disposition', contentDisposition('attachment', filename));
  res.setHeader('Cache-Control', 'private, no-store');
  await pipeline(Readable.from(rows), stringify({ header: true, columns, bom: true, escape_formulas: true }), res);
}

/** JSON for a `<script type="application/json">` data block (never executed; `<` escaped). */
const dataBlock = (v: unknown) => JSON.stringify(v).replace(/</g, '\\u003c');

/** `14 Jan 2027`: the app's one date format. */
const day = (iso: string | null | undefined) => viewHelpers.date(iso ?? null);

/** A response that is JSON (`format=json`, described by `json`) or CSV. */
const jsonOrCsv = (json: z.ZodType) => ({ description: 'JSON (`format=json`) or CSV.', content: { 'application/json': json, 'text/csv': z.string() } });

/** Validates a query for a page: the parsed value, or the field errors as one sentence. */
function pageQuery<T>(parse: () => T): { value?: T; error?: string } {
  try {
    return { value: parse() };
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    return { error: err.errors.map((e) => `${e.field.replace(/^query\./, '')} ${e.message}`).join('; ') };
  }
}

/**
 * Insight (issue 18): the user's usage, stats, estimate accuracy and monthly statements
 * (`/api/credits/usage|stats|jobs|statements…`, `/account/usage`, `/account/statements`), PDF
 * receipts (`/api/payments/:id/receipt.pdf`) and the admin reports (`/api/admin/reports/*`,
 * `/admin/reports`).
 */
export function createInsightFeature(services: Services): Feature {
  const { usage, reports, receipts } = services.insight;
  const api = express.Router();
  const pages = express.Router();

  // ---- the user's own ----

  apiRoute(api, { method: 'get', path: '/credits/usage', summary: 'Spend per day, week or month, with totals and the previous range', auth: 'user', request: { query: UsageQuery }, responses: { 200: UsageResponse } }, requireAuth, async (req, res) => {
    const q = validate(UsageQuery, req, 'query');
    res.json(await usage.usage(req.user!.id, q));
  });
  apiRoute(api, { method: 'get', path: '/credits/stats', summary: 'Balance, spend this month and last 30 days, runway and next expiry', auth: 'user', responses: { 200: StatsResponse } }, requireAuth, async (req, res) => {
    res.json(await usage.stats(req.user!.id));
  });
  apiRoute(api, { method: 'get', path: '/credits/jobs', summary: 'Estimate vs actual per job', auth: 'user', responses: { 200: JobsResponse } }, requireAuth, async (req, res) => {
    res.json(await usage.jobs(req.user!.id));
  });
  apiRoute(api, { method: 'get', path: '/credits/statements', summary: 'The months with a statement', auth: 'user', responses: { 200: StatementMonthsResponse } }, requireAuth, async (req, res) => {
    res.json({ months: await usage.statementMonths(req.user!.id) });
  });
  apiRoute(api, { method: 'get', path: '/credits/statements/:month', summary: 'A monthly statement: opening balance, each movement, closing balance (`format=csv` for CSV)', auth: 'user', request: { params: StatementParams, query: StatementQuery }, responses: { 200: jsonOrCsv(StatementResponse) } }, requireAuth, async (req, res) => {
    const { month } = validate(StatementParams, req, 'params');
    const q = validate(StatementQuery, req, 'query');
    if (q.format === 'json') {
      res.json(await usage.statement(req.user!.id, month, { limit: q.limit, cursor: q.cursor }));
      return;
    }
    // The CSV has every entry of the month, read page by page (memory stays flat).
    const userId = req.user!.id;
    const first = await usage.statement(userId, month, { limit: 1000 });
    async function* rows() {
      yield { date_utc: first.periodStart, category: 'opening_balance', kind: '', credits: '', balance_after: first.openingBalance, description: 'Opening balance', reference: '' };
      let page: typeof first = first;
      for (;;) {
        for (const e of page.entries) {
          yield {
            date_utc: e.date,
            category: e.category,
            kind: e.kind,
            credits: e.credits,
            balance_after: e.balanceAfter,
            description: e.description ?? '',
            reference: e.reference ? `${e.reference.type}:${e.reference.id}` : '',
          };
        }
        if (!page.nextCursor) break;
        page = await usage.statement(userId, month, { limit: 1000, cursor: page.nextCursor });
      }
      yield { date_utc: first.periodEnd, category: 'closing_balance', kind: '', credits: '', balance_after: first.closingBalance, description: 'Closing balance', reference: '' };
    }
    await sendCsv(res, `tally-statement-${month}.csv`, ['date_utc', 'category', 'kind', 'credits', 'balance_after', 'description', 'reference'], rows());
  });

  apiRoute(api, { method: 'get', path: '/payments/:id/receipt.pdf', summary: 'The receipt of a payment as PDF', tags: ['payments'], auth: 'user', request: { params: PaymentIdParams }, responses: { 200: { description: 'The receipt.', contentType: 'application/pdf', schema: z.string().meta({ format: 'binary' }) } } }, requireAuth, async (req, res) => {
    const { id } = validate(PaymentIdParams, req, 'params');
    const { view, pdf } = await receipts.pdf(id, req.user!.role === 'admin' ? null : req.user!.id);
    res.setHeader('Content-Type', 'application/pdf');
    res.setHeader('Content-Disposition', contentDisposition(req.query.download !== undefined ? 'attachment' : 'inline', `receipt-${view.number}.pdf`));
    res.setHeader('Cache-Control', 'private, no-store');
    res.send(pdf);
  });

  pages.get('/account/usage', requireAuth, async (req, res) => {
    const { value, error } = pageQuery(() => validate(UsageQuery, req, 'query'));
    const q = value ?? { granularity: 'day' as const };
    const [report, stats, jobs] = await Promise.all([usage.usage(req.user!.id, { ...q, groupBy: 'operation' }), usage.stats(req.user!.id), usage.jobs(req.user!.id)]);
    const operations = [...new Set(report.series.flatMap((s) => (s.operations ?? []).map((o) => o.operation)))].sort();
    const raw = (name: string) => (typeof req.query[name] === 'string' ? (req.query[name] as string) : '');
    res.status(error ? 400 : 200).render('insight/usage', {
      title: 'Usage',
      report,
      stats,
      jobs,
      operations: operations.map((o) => ({ id: o, label: operationLabel(o) })),
      chartData: dataBlock({
        granularity: report.granularity,
        labels: report.series.map((s) => s.periodStart),
        datasets: operations.map((o) => ({ label: operationLabel(o), data: report.series.map((s) => s.operations?.find((x) => x.operation === o)?.credits ?? 0) })),
      }),
      filters: { from: raw('from'), to: raw('to'), granularity: raw('granularity') || 'day' },
      filterError: error,
      fmt: viewHelpers,
      day,
      lastDay: (iso: string) => day(new Date(new Date(iso).getTime() - 1).toISOString()),
    });
  });

  pages.get('/account/statements', requireAuth, async (req, res) => {
    const months = await usage.statementMonths(req.user!.id);
    res.render('insight/statements', { title: 'Statements', months: months.map((m) => ({ id: m, label: new Intl.DateTimeFormat('en-GB', { month: 'long', year: 'numeric', timeZone: 'UTC' }).format(new Date(`${m}-01T00:00:00Z`)) })) });
  });
  pages.get('/account/statements/:month', requireAuth, async (req, res) => {
    const { month } = validate(StatementParams, req, 'params');
    const q = validate(StatementQuery, req, 'query');
    const s = await usage.statement(req.user!.id, month, { limit: 200, cursor: q.cursor });
    res.render('insight/statement', {
      title: `Statement ${month}`,
      s,
      firstPage: !q.cursor,
      nextHref: s.nextCursor ? `/account/statements/${month}?cursor=${encodeURIComponent(s.nextCursor)}#entries` : undefined,
      monthLabel: new Intl.DateTimeFormat('en-GB', { month: 'long', year: 'numeric', timeZone: 'UTC' }).format(new Date(s.periodStart)),
      fmt: viewHelpers,
    });
  });

  // ---- admin reports ----

  apiRoute(api, { method: 'get', path: '/admin/reports/revenue', summary: 'Revenue by day or month: gross, refunds, net, by pack and plan, per currency', auth: 'admin', request: { query: ReportQuery }, responses: { 200: jsonOrCsv(RevenueReport) } }, requireAdmin, async (req, res) => {
    const q = validate(ReportQuery, req, 'query');
    const r = await reports.revenue(q);
    if (q.format === 'json') return void res.json(r);
    await sendCsv(
      res,
      `tally-revenue-${q.granularity}.csv`,
      ['period_start', 'currency', 'gross', 'refunds', 'net'],
      r.series.map((s) => ({ period_start: s.periodStart.slice(0, 10), currency: s.currency.toUpperCase(), gross: toDecimal(s.gross.minor, s.currency), refunds: toDecimal(s.refunds.minor, s.currency), net: toDecimal(s.net.minor, s.currency) })),
    );
  });
  apiRoute(api, { method: 'get', path: '/admin/reports/liability', summary: 'Credit liability: unspent purchased credits at what was paid, outstanding by source', auth: 'admin', request: { query: ReportQuery }, responses: { 200: jsonOrCsv(LiabilityReport) } }, requireAdmin, async (req, res) => {
    const q = validate(ReportQuery, req, 'query');
    const r = await reports.liability();
    if (q.format === 'json') return void res.json(r);
    await sendCsv(res, 'tally-liability.csv', ['kind', 'key', 'credits', 'value'], [
      ...r.deferredRevenue.map((d) => ({ kind: 'deferred_revenue', key: d.currency.toUpperCase(), credits: d.purchasedCreditsUnspent, value: toDecimal(d.value.minor, d.currency) })),
      ...r.outstandingBySource.map((s) => ({ kind: 'outstanding_by_source', key: s.source, credits: s.credits, value: '' })),
      { kind: 'expired_unswept', key: '', credits: r.expiredUnsweptCredits, value: '' },
      { kind: 'debt', key: '', credits: r.debtCredits, value: '' },
    ]);
  });
  apiRoute(api, { method: 'get', path: '/admin/reports/breakage', summary: 'Breakage: credits expired per month, by source', auth: 'admin', request: { query: ReportQuery }, responses: { 200: jsonOrCsv(BreakageReport) } }, requireAdmin, async (req, res) => {
    const q = validate(ReportQuery, req, 'query');
    const r = await reports.breakage(q);
    if (q.format === 'json') return void res.json(r);
    const sources = r.totals.map((t) => t.source);
    await sendCsv(res, `tally-breakage-${q.granularity}.csv`, ['period_start', 'credits', ...sources], r.series.map((s) => ({ period_start: s.periodStart.slice(0, 10), credits: s.credits, ...s.bySource })));
  });
  apiRoute(api, { method: 'get', path: '/admin/reports/funnel', summary: 'Sign-ups → first purchase → active spenders, ARPPU, refund rate, top users', auth: 'admin', request: { query: ReportQuery }, responses: { 200: jsonOrCsv(FunnelReport) } }, requireAdmin, async (req, res) => {
    const q = validate(ReportQuery, req, 'query');
    const r = await reports.funnel(q);
    if (q.format === 'json') return void res.json(r);
    await sendCsv(res, 'tally-funnel.csv', ['metric', 'currency', 'value'], [
      { metric: 'signups', currency: '', value: r.signups },
      { metric: 'first_purchase', currency: '', value: r.firstPurchase },
      { metric: 'active_spenders', currency: '', value: r.activeSpenders },
      { metric: 'conversion_signup_to_purchase_pct', currency: '', value: r.conversion.signupToPurchase ?? '' },
      { metric: 'conversion_signup_to_active_pct', currency: '', value: r.conversion.signupToActive ?? '' },
      ...r.perCurrency.flatMap((c) => [
        { metric: 'paying_users', currency: c.currency.toUpperCase(), value: c.payingUsers },
        { metric: 'net_revenue', currency: c.currency.toUpperCase(), value: toDecimal(c.net.minor, c.currency) },
        { metric: 'arppu', currency: c.currency.toUpperCase(), value: c.arppu ? toDecimal(c.arppu.minor, c.currency) : '' },
        { metric: 'refund_rate_pct', currency: c.currency.toUpperCase(), value: c.refundRate ?? '' },
      ]),
    ]);
  });

  pages.get('/admin/reports', requireAdmin, async (req, res) => {
    const { value, error } = pageQuery(() => validate(ReportQuery, req, 'query'));
    const q = value ?? { granularity: 'day' as const, format: 'json' as const };
    const [revenue, liability, breakage, funnel] = await Promise.all([reports.revenue(q), reports.liability(), reports.breakage({ ...q, granularity: 'month' }), reports.funnel(q)]);
    const raw = (name: string) => (typeof req.query[name] === 'string' ? (req.query[name] as string) : '');
    const params = new URLSearchParams();
    for (const n of ['from', 'to', 'granularity']) if (raw(n)) params.set(n, raw(n));
    const csv = (name: string, extra: Record<string, string> = {}) => {
      const p = new URLSearchParams(params);
      for (const [k, v] of Object.entries(extra)) p.set(k, v);
      p.set('format', 'csv');
      return `/api/admin/reports/${name}?${p}`;
    };
    const currencies = revenue.totals.map((t) => t.currency);
    res.status(error ? 400 : 200).render('insight/admin-reports', {
      title: 'Reports',
      revenue,
      liability,
      breakage,
      funnel,
      filters: { from: raw('from'), to: raw('to'), granularity: raw('granularity') || 'day' },
      filterError: error,
      csv: { revenue: csv('revenue'), liability: csv('liability'), breakage: csv('breakage', { granularity: 'month' }), funnel: csv('funnel') },
      revenueChart: dataBlock({
        granularity: revenue.granularity,
        labels: [...new Set(revenue.series.map((s) => s.periodStart))],
        datasets: currencies.map((c) => ({ label: `Net revenue (${c.toUpperCase()})`, data: revenue.series.filter((s) => s.currency === c).map((s) => Number(toDecimal(s.net.minor, c))) })),
      }),
      breakageChart: dataBlock({
        granularity: 'month',
        labels: breakage.series.map((s) => s.periodStart),
        datasets: breakage.totals.map((t) => ({ label: viewHelpers.kindLabel(t.source), data: breakage.series.map((s) => (s.bySource as Record<string, number>)[t.source] ?? 0) })),
      }),
      fmt: viewHelpers,
      day,
    });
  });

  return { api, pages };
}
