import { z } from 'zod';
import { Credits, DateTime } from '../credits/credits-responses.ts';

/** zod schemas of the payments JSON the API returns (payments-json.ts), for the OpenAPI document. */

/** An amount of money in the currency's minor unit (cents; whole yen). */
const MinorUnits = z.number().int().describe('Integer minor units of `currency`');

export const PackageJson = z
  .object({ id: z.string(), name: z.string(), credits: Credits, bonusCredits: Credits, amountCents: MinorUnits, currency: z.string() })
  .meta({ id: 'CreditPackage' });

export const RefundJson = z.object({ id: z.string(), amountCents: MinorUnits, status: z.string(), reason: z.string().nullable(), createdAt: DateTime });

export const PaymentJson = z
  .object({
    id: z.uuid(),
    status: z.string().describe('pending, paid, partially_refunded, refunded, expired, …'),
    packageId: z.string(),
    credits: Credits,
    bonusCredits: Credits,
    amountCents: MinorUnits,
    currency: z.string(),
    refundedCents: MinorUnits,
    createdAt: DateTime,
    paidAt: DateTime.nullable(),
    refunds: z.array(RefundJson).optional(),
  })
  .meta({ id: 'Payment' });

export const PackagesResponse = z.object({ packages: z.array(PackageJson) });
export const CheckoutResponse = z.object({ paymentId: z.uuid(), sessionId: z.string(), checkoutUrl: z.url() });
export const PaymentsPage = z.object({ payments: z.array(PaymentJson), nextCursor: z.string().nullable() });
export const PaymentResponse = z.object({ payment: PaymentJson });
export const RefundResponse = z.object({ refund: z.object({ id: z.string(), amountCents: MinorUnits, status: z.string().nullable() }), payment: PaymentJson });
export const WebhookReceipt = z.object({ received: z.literal(true), duplicate: z.boolean(), outcome: z.string() });

/** The Stripe event envelope the webhook reads (signed, raw body): only what Tally relies on. */
export const StripeEventBody = z.object({ id: z.string(), type: z.string(), created: z.number().int(), data: z.object({ object: z.record(z.string(), z.unknown()) }) }).loose();
