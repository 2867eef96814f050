import { z } from 'zod';
import {
  arrayOf,
  currency,
  email,
  expandParam,
  int,
  metadata,
  oneOf,
  paginationParams,
  rangeParam,
  str,
  url,
} from './stripe-params.ts';

/**
 * Parameters of each emulated endpoint, as the Stripe API reference lists them for the subset
 * Tally uses (https://docs.stripe.com/api). Every object is strict: a parameter real Stripe has
 * but the emulator does not support is rejected as unknown rather than silently ignored, so code
 * that passes here never relies on something the emulator only pretends to do.
 */

/** Stripe's largest amount for a single charge: 99,999,999 minor units ($999,999.99). */
export const MAX_AMOUNT = 99_999_999;

const ProductData = z.strictObject({
  name: str(250),
  description: str(40000).optional(),
  metadata: metadata().optional(),
});

const PriceData = z.strictObject({
  currency: currency(),
  unit_amount: int(0, MAX_AMOUNT).optional(),
  product: str(500).optional(),
  product_data: ProductData.optional(),
});

const CheckoutLineItem = z.strictObject({
  price: str(500).optional(),
  price_data: PriceData.optional(),
  quantity: int(1, 999_999).optional(),
  metadata: metadata().optional(),
});

/** POST /v1/checkout/sessions (https://docs.stripe.com/api/checkout/sessions/create). */
export const CreateCheckoutSessionParams = z.strictObject({
  mode: oneOf(['payment', 'setup', 'subscription']),
  /** mode setup: the currency of later payments (Stripe requires it without a customer's default). */
  currency: currency().optional(),
  line_items: arrayOf(CheckoutLineItem, 100).optional(),
  success_url: url().optional(),
  cancel_url: url().optional(),
  client_reference_id: str(200).optional(),
  customer: str(500).optional(),
  customer_email: email().optional(),
  metadata: metadata().optional(),
  payment_intent_data: z
    .strictObject({
      metadata: metadata().optional(),
      description: str(1000).optional(),
      receipt_email: email().optional(),
      setup_future_usage: oneOf(['off_session', 'on_session']).optional(),
    })
    .optional(),
  expires_at: int(0).optional(),
  expand: expandParam,
});
export type CreateCheckoutSessionParams = z.output<typeof CreateCheckoutSessionParams>;

/** GET /v1/checkout/sessions (https://docs.stripe.com/api/checkout/sessions/list). */
export const ListCheckoutSessionsParams = z.strictObject({
  ...paginationParams,
  created: rangeParam.optional(),
  customer: str(500).optional(),
  customer_details: z.strictObject({ email: str(800) }).optional(),
  payment_intent: str(500).optional(),
  status: oneOf(['complete', 'expired', 'open']).optional(),
  expand: expandParam,
});
export type ListCheckoutSessionsParams = z.output<typeof ListCheckoutSessionsParams>;

/** GET endpoints that take nothing but `expand` (retrieve, expire). */
export const ExpandOnlyParams = z.strictObject({ expand: expandParam });
export type ExpandOnlyParams = z.output<typeof ExpandOnlyParams>;

/** GET /v1/checkout/sessions/:id/line_items (https://docs.stripe.com/api/checkout/sessions/line_items). */
export const ListLineItemsParams = z.strictObject({ ...paginationParams, expand: expandParam });
export type ListLineItemsParams = z.output<typeof ListLineItemsParams>;

/** POST /v1/refunds (https://docs.stripe.com/api/refunds/create). */
export const CreateRefundParams = z.strictObject({
  payment_intent: str(500).optional(),
  charge: str(500).optional(),
  amount: int(1, MAX_AMOUNT).optional(),
  reason: oneOf(['duplicate', 'fraudulent', 'requested_by_customer']).optional(),
  metadata: metadata().optional(),
  expand: expandParam,
});
export type CreateRefundParams = z.output<typeof CreateRefundParams>;

/** GET /v1/refunds (https://docs.stripe.com/api/refunds/list). */
export const ListRefundsParams = z.strictObject({
  ...paginationParams,
  charge: str(500).optional(),
  payment_intent: str(500).optional(),
  created: rangeParam.optional(),
  expand: expandParam,
});
export type ListRefundsParams = z.output<typeof ListRefundsParams>;

/** POST /v1/customers (https://docs.stripe.com/api/customers/create). */
export const CreateCustomerParams = z.strictObject({
  email: email().optional(),
  test_clock: str(500).optional(),
  name: str(256).optional(),
  description: str(350).optional(),
  phone: str(20).optional(),
  metadata: metadata().optional(),
  expand: expandParam,
});
export type CreateCustomerParams = z.output<typeof CreateCustomerParams>;

/** GET /v1/customers (https://docs.stripe.com/api/customers/list). */
export const ListCustomersParams = z.strictObject({
  ...paginationParams,
  email: str(512).optional(),
  created: rangeParam.optional(),
  expand: expandParam,
});
export type ListCustomersParams = z.output<typeof ListCustomersParams>;

/** GET /v1/events (https://docs.stripe.com/api/events/list); `type` may use `*` (`charge.*`). */
export const ListEventsParams = z.strictObject({
  ...paginationParams,
  type: str(200).optional(),
  types: arrayOf(str(200), 20).optional(),
  created: rangeParam.optional(),
  expand: expandParam,
});
export type ListEventsParams = z.output<typeof ListEventsParams>;
