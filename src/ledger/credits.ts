/**
 * Credits ⇄ millicredits. Credits are what people see (`12.5`); millicredits (1 credit = 1000) are
 * what the code and the database hold, as integers. Conversion goes through the decimal string, so
 * no binary floating-point arithmetic ever touches an amount.
 */

export const MILLICREDITS_PER_CREDIT = 1000;
/** Largest millicredit amount accepted: 2^53 − 1 (JS numbers are exact up to there). */
export const MAX_MILLICREDITS = Number.MAX_SAFE_INTEGER;

export class InvalidAmountError extends Error {
  constructor(readonly value: unknown, reason: string) {
    super(`${JSON.stringify(value) ?? String(value)} is not a valid amount of credits: ${reason}`);
    this.name = 'InvalidAmountError';
  }
}

export interface AmountRules {
  /** Accept negative amounts (adjustments). Default false. */
  allowNegative?: boolean;
  /** Accept zero. Default false. */
  allowZero?: boolean;
}

/**
 * Converts credits (a JSON number or decimal string, at most 3 decimals) to integer millicredits.
 * Throws {@link InvalidAmountError} for NaN, ±Infinity, exponent notation, more than 3 decimals,
 * magnitudes above 2^53 millicredits, and negatives or zero unless `rules` allow them.
 */
export function creditsToMillicredits(credits: number | string, rules: AmountRules = {}): number {
  if (typeof credits === 'number' && !Number.isFinite(credits)) throw new InvalidAmountError(credits, 'not a finite number');
  const text = typeof credits === 'number' ? String(credits) : credits.trim();
  const m = /^(-?)(\d+)(?:\.(\d{1,3}))?$/.exec(text);
  if (!m) {
    throw new InvalidAmountError(credits, /\.\d{4,}$/.test(text) ? 'more than 3 decimals' : 'not a decimal number');
  }
  const [, sign, whole, frac = ''] = m;
  const magnitude = BigInt(whole!) * 1000n + BigInt(frac.padEnd(3, '0'));
  if (magnitude > BigInt(MAX_MILLICREDITS)) throw new InvalidAmountError(credits, 'too large');
  const value = Number(magnitude) * (sign === '-' ? -1 : 1);
  if (value < 0 && !rules.allowNegative) throw new InvalidAmountError(credits, 'must not be negative');
  if (value === 0 && !rules.allowZero) throw new InvalidAmountError(credits, 'must be greater than zero');
  return value === 0 ? 0 : value; // no -0
}

/**
 * Converts integer millicredits to credits for display and JSON (`8500` → `8.5`). The result has at
 * most 3 decimals and round-trips through {@link creditsToMillicredits}.
 */
export function millicreditsToCredits(millicredits: number): number {
  assertMillicredits(millicredits, { allowNegative: true, allowZero: true });
  const sign = millicredits < 0 ? '-' : '';
  const abs = Math.abs(millicredits);
  const whole = Math.trunc(abs / 1000);
  const frac = String(abs % 1000).padStart(3, '0').replace(/0+$/, '');
  return Number(`${sign}${whole}${frac ? `.${frac}` : ''}`);
}

/** Formats millicredits as a credits string for people: `8500` → `"8.5"`, `10000` → `"10"`. */
export function formatCredits(millicredits: number): string {
  return String(millicreditsToCredits(millicredits));
}

/** Throws {@link InvalidAmountError} unless `value` is a safe integer amount of millicredits. */
export function assertMillicredits(value: number, rules: AmountRules = {}): void {
  if (!Number.isSafeInteger(value)) throw new InvalidAmountError(value, 'millicredits must be a safe integer');
  if (value < 0 && !rules.allowNegative) throw new InvalidAmountError(value, 'must not be negative');
  if (value === 0 && !rules.allowZero) throw new InvalidAmountError(value, 'must be greater than zero');
}
