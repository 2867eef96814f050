/**
 * Amounts in minor units (cents) of a currency: display formatting and Stripe's minimum charge
 * amounts (https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts).
 */

/** Formatting is the one money formatter of the repository (@tally/money): `formatAmount(500, 'jpy')` → `¥500`. */
export { formatMoney as formatAmount, minorDigits } from '@tally/money';

const MINIMUMS: Record<string, number> = {
  usd: 50, aed: 200, aud: 50, bgn: 100, brl: 50, cad: 50, chf: 50, czk: 1500, dkk: 250, eur: 50,
  gbp: 30, hkd: 400, huf: 17500, inr: 50, jpy: 50, mxn: 1000, myr: 200, nok: 300, nzd: 50,
  pln: 200, ron: 200, sek: 300, sgd: 50, thb: 1000,
};

/** Smallest amount Stripe will charge in `currency`, in minor units (50 when not listed). */
export function minimumChargeAmount(currency: string): number {
  return MINIMUMS[currency] ?? 50;
}
