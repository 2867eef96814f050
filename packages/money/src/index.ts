/**
 * Money as integer minor units of a currency (what Stripe's API and Tally's tables hold:
 * `amount_cents`, `amount`). Formatting and parsing are exact (no floating point on amounts) and
 * use each currency's own number of decimals from ISO 4217 as the runtime's Intl data knows it:
 * 0 for JPY, 2 for USD, 3 for BHD (Stripe docs, "Zero-decimal currencies" / "Three-decimal currencies").
 */

const LOCALE = 'en-US';

/** Digits after the decimal point of `currency` (0 for JPY, 2 for USD, 3 for BHD); 2 when unknown. */
export function minorDigits(currency: string): number {
  try {
    return new Intl.NumberFormat(LOCALE, { style: 'currency', currency: currency.toUpperCase() }).resolvedOptions().maximumFractionDigits ?? 2;
  } catch {
    return 2;
  }
}

/** `scaled` / 10^`digits` as an exact decimal string: (123456n, 2) → "1234.56". */
function decimalString(scaled: bigint, digits: number): string {
  const negative = scaled < 0n;
  const abs = negative ? -scaled : scaled;
  const text = abs.toString().padStart(digits + 1, '0');
  const whole = digits > 0 ? text.slice(0, -digits) : text;
  const fraction = digits > 0 ? `.${text.slice(-digits)}` : '';
  return `${negative ? '-' : ''}${whole}${fraction}`;
}

function format(decimal: string, currency: string, digits: number): string {
  try {
    const nf = new Intl.NumberFormat(LOCALE, { style: 'currency', currency: currency.toUpperCase(), minimumFractionDigits: digits, maximumFractionDigits: digits });
    // A decimal string keeps every digit (Intl.NumberFormat v3); a number would round through binary floating point.
    return nf.format(decimal as unknown as number);
  } catch {
    return `${decimal} ${currency.toUpperCase()}`;
  }
}

/** Integer minor units as a plain decimal in the currency's unit, for form fields: (500, 'usd') → "5.00", (500, 'jpy') → "500". */
export function toDecimal(minor: number, currency: string): string {
  if (!Number.isSafeInteger(minor)) throw new RangeError(`amount ${minor} is not an integer number of minor units`);
  return decimalString(BigInt(minor), minorDigits(currency));
}

/** A form field `pattern` accepting amounts with at most the currency's decimals. */
export function decimalPattern(currency: string): string {
  const digits = minorDigits(currency);
  return digits === 0 ? '\\d+' : `\\d+(\\.\\d{1,${digits}})?`;
}

/**
 * Formats integer minor units for people: `formatMoney(500, 'usd')` → `$5.00`,
 * `formatMoney(500, 'jpy')` → `¥500`, `formatMoney(1500, 'bhd')` → `BHD 1.500`.
 * @throws {RangeError} unless `minor` is a safe integer
 */
export function formatMoney(minor: number, currency: string): string {
  if (!Number.isSafeInteger(minor)) throw new RangeError(`amount ${minor} is not an integer number of minor units`);
  const digits = minorDigits(currency);
  return format(decimalString(BigInt(minor), digits), currency, digits);
}

/**
 * A unit price for display with one more decimal than the currency has: `minor` spread over
 * `units` thousandths (e.g. millicredits), per whole unit, rounded half up.
 * `formatUnitPrice(500, 100_000, 'usd')` → `$0.050` per credit; `formatUnitPrice(500, 100_000, 'jpy')` → `¥5.0`.
 */
export function formatUnitPrice(minor: number, thousandths: number, currency: string): string {
  if (!Number.isSafeInteger(minor) || !Number.isSafeInteger(thousandths) || thousandths <= 0) {
    throw new RangeError('formatUnitPrice needs integer minor units and a positive integer count');
  }
  const digits = minorDigits(currency) + 1;
  // minor × 1000 / thousandths minor units per unit, in tenths of a minor unit, rounded half up.
  const numerator = BigInt(minor) * 1000n * 10n;
  const denominator = BigInt(thousandths);
  const scaled = (2n * numerator + denominator) / (2n * denominator);
  return format(decimalString(scaled, digits), currency, digits);
}

/**
 * Parses an amount typed by a person (`5`, `5.5`, `5.00`; for BHD up to 3 decimals, for JPY none)
 * into integer minor units of `currency`. Undefined for an empty string.
 * @throws {RangeError} for anything else (signs, separators, more decimals than the currency has)
 */
export function parseMoney(text: string, currency: string): number | undefined {
  const trimmed = text.trim();
  if (trimmed === '') return undefined;
  const digits = minorDigits(currency);
  const match = /^(\d{1,15})(?:\.(\d+))?$/.exec(trimmed);
  if (!match || (match[2] !== undefined && (match[2].length > digits || match[2].length === 0))) {
    throw new RangeError(digits === 0 ? 'must be a whole amount like 500' : `must be an amount like 5 or 5.${'0'.repeat(digits)}`);
  }
  const minor = BigInt(match[1]!) * 10n ** BigInt(digits) + BigInt((match[2] ?? '').padEnd(digits, '0') || '0');
  if (minor > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError('is too large');
  return Number(minor);
}
