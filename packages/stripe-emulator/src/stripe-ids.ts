import crypto from 'node:crypto';

/**
 * Object ids in Stripe's format: a type prefix and a random base62 tail
 * (`cs_test_a1…` 58 characters, `pi_3Mtw…` 24, `cus_Nffr…` 14; https://docs.stripe.com/api).
 */

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** `length` random base62 characters (rejection sampling, so every character is uniform). */
export function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of crypto.randomBytes(length * 2)) {
      if (byte < 248) out += ALPHABET[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

const PREFIXES = {
  checkoutSession: ['cs_test_', 58],
  paymentIntent: ['pi_', 24],
  charge: ['ch_', 24],
  refund: ['re_', 24],
  customer: ['cus_', 14],
  event: ['evt_', 24],
  lineItem: ['li_', 24],
  price: ['price_', 24],
  product: ['prod_', 14],
  paymentMethod: ['pm_', 24],
  setupIntent: ['seti_', 24],
  balanceTransaction: ['txn_', 24],
  request: ['req_', 14],
} as const;

export type IdKind = keyof typeof PREFIXES;

/** A new id of `kind`, e.g. `newId('paymentIntent')` → `pi_3Mtw…`. */
export function newId(kind: IdKind): string {
  const [prefix, length] = PREFIXES[kind];
  return prefix + randomBase62(length);
}

/** A PaymentIntent's client secret: `<pi id>_secret_<random>`. */
export function clientSecret(paymentIntentId: string): string {
  return `${paymentIntentId}_secret_${randomBase62(25)}`;
}
