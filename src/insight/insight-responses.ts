import { z } from 'zod';
import { Credits, DateTime, ReferenceJson } from '../credits/credits-responses.ts';

/**
 * zod schemas of the insight JSON the API returns (usage-service.ts, reports-service.ts), for the
 * OpenAPI document (src/http/api-routes.ts) and the tests that check responses against it.
 * Credits are JSON numbers (≤ 3 decimals); money is integer minor units per currency.
 */

/** A percentage with one decimal (e.g. `97.5`), or null when its base is zero. */
const Percent = z.number().nullable().describe('Percent, one decimal; null when the base is zero');

/** Money: integer minor units and the same formatted for people. */
export const MoneyJson = z.object({ minor: z.number().int(), formatted: z.string() });

/** A lowercase ISO 4217 code (`eur`). */
const Currency = z.string().describe('ISO 4217 currency code, lowercase');

const OperationTotal = z.object({ operation: z.string(), credits: Credits, jobs: z.number().int() });
const UsageTotals = z.object({ credits: Credits, jobs: z.number().int(), operations: z.array(OperationTotal).optional().describe('Only with `groupBy=operation`') });

export const UsageResponse = z.object({
  from: DateTime,
  to: DateTime,
  granularity: z.enum(['day', 'week', 'month']),
  series: z.array(UsageTotals.extend({ periodStart: DateTime })),
  totals: UsageTotals,
  previousTotals: UsageTotals.describe('The same length of time just before `from`'),
});

export const StatsResponse = z.object({
  available: Credits,
  held: Credits,
  debt: Credits,
  spentThisMonth: Credits,
  spentLast30Days: Credits,
  averageDailySpend: Credits,
  runwayDays: z.number().int().nullable().describe('Null: no spend in the last 30 days'),
  projectedEmptyAt: DateTime.nullable(),
  nextExpiry: z.object({ at: DateTime, credits: Credits }).nullable(),
});

export const JobsResponse = z.object({
  jobs: z.array(
    z.object({
      taskId: z.string().nullable(),
      fileName: z.string().nullable(),
      estimated: Credits,
      actual: Credits,
      percentOfEstimate: Percent,
      completedAt: DateTime,
    }),
  ),
  averagePercent: Percent,
});

const Month = z.string().regex(/^\d{4}-\d{2}$/).describe('YYYY-MM (UTC)');

export const StatementMonthsResponse = z.object({ months: z.array(Month).describe('Newest first') });

const StatementCategory = z.enum(['grant', 'spend', 'expiry', 'refund', 'adjustment']);

export const StatementResponse = z.object({
  month: Month,
  periodStart: DateTime,
  periodEnd: DateTime,
  openingBalance: Credits,
  summary: z.object({ grant: Credits, spend: Credits, expiry: Credits, refund: Credits, adjustment: Credits }),
  entries: z.array(
    z.object({
      id: z.string(),
      date: DateTime,
      category: StatementCategory,
      kind: z.string(),
      credits: Credits,
      balanceAfter: Credits,
      description: z.string().nullable(),
      reference: ReferenceJson.nullable(),
    }),
  ),
  closingBalance: Credits,
  nextCursor: z.string().nullable(),
});

const ReportGranularity = z.enum(['day', 'month']);
const MoneyTriple = { gross: MoneyJson, refunds: MoneyJson, net: MoneyJson };

export const RevenueReport = z.object({
  from: DateTime,
  to: DateTime,
  granularity: ReportGranularity,
  series: z.array(z.object({ periodStart: DateTime, currency: Currency, ...MoneyTriple })),
  byProduct: z.array(z.object({ type: z.enum(['pack', 'plan']), id: z.string(), name: z.string(), currency: Currency, sales: z.number().int(), ...MoneyTriple })),
  totals: z.array(z.object({ currency: Currency, ...MoneyTriple })),
});

export const LiabilityReport = z.object({
  at: DateTime,
  deferredRevenue: z.array(z.object({ currency: Currency, purchasedCreditsUnspent: Credits, value: MoneyJson, payments: z.number().int() })),
  outstandingBySource: z.array(z.object({ source: z.string(), credits: Credits, held: Credits, lots: z.number().int() })),
  outstandingCredits: Credits,
  expiredUnsweptCredits: Credits,
  debtCredits: Credits,
});

export const BreakageReport = z.object({
  from: DateTime,
  to: DateTime,
  granularity: ReportGranularity,
  series: z.array(z.object({ periodStart: DateTime, credits: Credits, bySource: z.record(z.string(), Credits) })),
  totals: z.array(z.object({ source: z.string(), credits: Credits })),
  totalCredits: Credits,
});

export const FunnelReport = z.object({
  from: DateTime,
  to: DateTime,
  signups: z.number().int(),
  firstPurchase: z.number().int(),
  activeSpenders: z.number().int(),
  conversion: z.object({ signupToPurchase: Percent, signupToActive: Percent }),
  perCurrency: z.array(z.object({ currency: Currency, payingUsers: z.number().int(), ...MoneyTriple, arppu: MoneyJson.nullable(), refundRate: Percent })),
  topUsers: z.array(z.object({ userId: z.string(), name: z.string(), email: z.string(), currency: Currency, paid: MoneyJson, payments: z.number().int() })),
});
