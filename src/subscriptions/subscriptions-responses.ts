import { z } from 'zod';
import { Credits, DateTime } from '../credits/credits-responses.ts';

/** zod schemas of the subscriptions JSON the API returns (subscriptions-json.ts), for the OpenAPI document. */

/** Not a named component: zod-to-openapi 9 turns a nullable $ref into an `allOf` that refuses null (`nextPlan`). */
export const PlanJson = z.object({
  id: z.string(),
  name: z.string(),
  credits: Credits,
  interval: z.string(),
  amountCents: z.number().int(),
  currency: z.string(),
  rolloverCapCredits: Credits,
  rolloverPeriods: z.number().int(),
});

export const SubscriptionJson = z
  .object({
    status: z.string(),
    plan: PlanJson,
    nextPlan: PlanJson.nullable(),
    periodStart: DateTime,
    periodEnd: DateTime,
    cancelAtPeriodEnd: z.boolean(),
    canceledAt: DateTime.nullable(),
    endedAt: DateTime.nullable(),
    creditsGrantedThisPeriod: Credits,
    creditsPeriodStart: DateTime.nullable(),
    creditsPeriodEnd: DateTime.nullable(),
    periodCreditsLeft: Credits,
    rolloverCredits: Credits,
    rolloverCreditsLeft: Credits,
    rolloverExpiresAt: DateTime.nullable(),
  })
  .meta({ id: 'Subscription' });

export const InvoiceJson = z
  .object({
    number: z.string().nullable(),
    status: z.string().nullable(),
    billingReason: z.string().nullable(),
    amountDueCents: z.number().int(),
    amountPaidCents: z.number().int(),
    currency: z.string(),
    periodStart: DateTime,
    periodEnd: DateTime,
    attemptCount: z.number().int(),
    nextPaymentAttempt: DateTime.nullable(),
    created: DateTime,
    paidAt: DateTime.nullable(),
    proratedCredits: Credits.nullable(),
  })
  .meta({ id: 'SubscriptionInvoice' });

export const PlansResponse = z.object({ plans: z.array(PlanJson) });
export const SubscriptionCheckoutResponse = z.object({ sessionId: z.string(), checkoutUrl: z.url() });
export const SubscriptionResponse = z.object({ subscription: SubscriptionJson });
export const InvoicesResponse = z.object({ invoices: z.array(InvoiceJson) });
export const PlanChangeResponse = z.object({ change: z.enum(['upgraded', 'downgrade_scheduled']), subscription: SubscriptionJson });
export const PortalResponse = z.object({ url: z.url() });
export const AdminSubscriptionResponse = z.object({ subscription: SubscriptionJson, invoices: z.array(InvoiceJson) });
export const SubscriptionGrantResponse = z.object({ granted: z.boolean(), periodStart: DateTime, periodEnd: DateTime, subscription: SubscriptionJson });
