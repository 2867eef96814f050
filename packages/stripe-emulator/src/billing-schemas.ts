import { z } from 'zod';
import { arrayOf, bool, currency, expandParam, int, metadata, oneOf, paginationParams, str, url } from './stripe-params.ts';
import { MAX_AMOUNT } from './stripe-emulator-schemas.ts';

/** Parameters of the Billing endpoints (https://docs.stripe.com/api), strict like the others. */

export const CreateProductParams = z.strictObject({
  name: str(250),
  description: str(40000).optional(),
  metadata: metadata().optional(),
  expand: expandParam,
});

export const CreatePriceParams = z.strictObject({
  currency: currency(),
  unit_amount: int(0, MAX_AMOUNT),
  product: str(500).optional(),
  product_data: z.strictObject({ name: str(250), metadata: metadata().optional() }).optional(),
  recurring: z.strictObject({ interval: oneOf(['day', 'week', 'month', 'year']), interval_count: int(1, 12).optional() }).optional(),
  lookup_key: str(200).optional(),
  transfer_lookup_key: bool().optional(),
  nickname: str(250).optional(),
  metadata: metadata().optional(),
  expand: expandParam,
});

export const ListPricesParams = z.strictObject({
  ...paginationParams,
  active: bool().optional(),
  product: str(500).optional(),
  lookup_keys: arrayOf(str(200), 10).optional(),
  type: oneOf(['one_time', 'recurring']).optional(),
  expand: expandParam,
});

export const CreateTestClockParams = z.strictObject({ frozen_time: int(0), name: str(300).optional() });
export const AdvanceTestClockParams = z.strictObject({ frozen_time: int(0) });
export const ListParams = z.strictObject({ ...paginationParams, expand: expandParam });

export const ListSubscriptionsParams = z.strictObject({
  ...paginationParams,
  customer: str(500).optional(),
  price: str(500).optional(),
  status: oneOf(['active', 'all', 'canceled', 'ended', 'incomplete', 'incomplete_expired', 'past_due', 'paused', 'trialing', 'unpaid']).optional(),
  test_clock: str(500).optional(),
  expand: expandParam,
});

export const UpdateSubscriptionParams = z.strictObject({
  cancel_at_period_end: bool().optional(),
  items: arrayOf(z.strictObject({ id: str(500).optional(), price: str(500).optional() }), 1).optional(),
  proration_behavior: oneOf(['always_invoice', 'create_prorations', 'none']).optional(),
  payment_behavior: oneOf(['allow_incomplete', 'default_incomplete', 'error_if_incomplete', 'pending_if_incomplete']).optional(),
  metadata: metadata().optional(),
  expand: expandParam,
});

export const CancelSubscriptionParams = z.strictObject({ expand: expandParam, prorate: bool().optional(), invoice_now: bool().optional() });

export const ListInvoicesParams = z.strictObject({
  ...paginationParams,
  customer: str(500).optional(),
  subscription: str(500).optional(),
  status: oneOf(['draft', 'open', 'paid', 'uncollectible', 'void']).optional(),
  expand: expandParam,
});

export const CreatePortalSessionParams = z.strictObject({
  customer: str(500),
  return_url: url().optional(),
  configuration: str(500).optional(),
  locale: str(10).optional(),
  expand: expandParam,
});
