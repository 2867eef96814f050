import { z } from 'zod';
import { Credits, DateTime } from '../credits/credits-responses.ts';

/** zod schemas of the spend-controls JSON the API returns (spend-json.ts), for the OpenAPI document. */

const PeriodCapJson = z.object({
  limit: Credits.nullable().describe('What applies: the lower of `yours` and `hardCap`'),
  yours: Credits.nullable(),
  hardCap: Credits.nullable(),
  spent: Credits,
  held: Credits,
  remaining: Credits.nullable(),
  resetsAt: DateTime,
});

export const SpendSettingsJson = z.object({
  timeZone: z.string(),
  alertThresholds: z.array(z.number().int()),
  caps: z.object({
    daily: PeriodCapJson,
    monthly: PeriodCapJson,
    perJob: z.object({ limit: Credits.nullable(), yours: Credits.nullable(), hardCap: Credits.nullable() }),
  }),
});

export const SpendAlertJson = z.object({ cap: z.string(), threshold: z.number(), limit: Credits, used: Credits, periodStart: DateTime, createdAt: DateTime });

export const SpendSettingsWithAlerts = SpendSettingsJson.extend({ alerts: z.array(SpendAlertJson) });
