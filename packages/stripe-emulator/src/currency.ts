/**
 * Amounts in minor units (cents) of a currency: display formatting and Stripe's minimum charge
 * amounts (https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts).
 */

/** Digits after the decimal point of `currency` (0 for JPY, 2 for USD, 3 for BHD). */
export function minorDigits(currency: string): number {
  try {
    return new Intl.NumberFormat('en', { style: 'currency', currency: currency.toUpperCase() }).resolvedOptions().maximumFractionDigits ?? 2;
  } catch {
    return 2;
  }
}

/** `formatAmount(2050, 'usd')` → `$20.50`; `formatAmount(500, 'jpy')` → `¥500`. */
export function formatAmount(amount: number, currency: string): string {
  const digits = minorDigits(currency);
  // Split integer and fraction as integers: no floating point in the amount itself.
  const negative = amount < 0;
  const abs = Math.abs(amount);
  const scale = 10 ** digits;
  const whole = Math.floor(abs / scale);
  const frac = abs % scale;
  try {
    const parts = new Intl.NumberFormat('en', { style: 'currency', currency: currency.toUpperCase() }).formatToParts(whole);
    const intPart = parts.filter((p) => p.type === 'integer' || p.type === 'group').map((p) => p.value).join('');
    const prefix = parts.filter((p) => p.type === 'currency' || p.type === 'literal').map((p) => p.value).join('');
    const fraction = digits > 0 ? `.${String(frac).padStart(digits, '0')}` : '';
    return `${negative ? '-' : ''}${prefix}${intPart}${fraction}`;
  } catch {
    return `${negative ? '-' : ''}${whole}${digits > 0 ? `.${String(frac).padStart(digits, '0')}` : ''} ${currency.toUpperCase()}`;
  }
}

const MINIMUMS: Record<string, number> = {
  usd: 50, aed: 200, aud: 50, bgn: 100, brl: 50, cad: 50, chf: 50, czk: 1500, dkk: 250, eur: 50,
  gbp: 30, hkd: 400, huf: 17500, inr: 50, jpy: 50, mxn: 1000, myr: 200, nok: 300, nzd: 50,
  pln: 200, ron: 200, sek: 300, sgd: 50, thb: 1000,
};

/** Smallest amount Stripe will charge in `currency`, in minor units (50 when not listed). */
export function minimumChargeAmount(currency: string): number {
  return MINIMUMS[currency] ?? 50;
}
