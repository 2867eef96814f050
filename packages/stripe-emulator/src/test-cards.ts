import crypto from 'node:crypto';
import type { CardDetails } from './stripe-emulator-store.ts';

/**
 * The card form of the hosted checkout page: validation with Stripe Checkout's wording, and the
 * behaviour of Stripe's test card numbers (https://docs.stripe.com/testing#cards).
 */

/** What the checkout form posts. Field names follow Stripe Checkout's inputs. */
export interface CardForm {
  email: string;
  cardNumber: string;
  cardExpiry: string;
  cardCvc: string;
  billingName: string;
}

export type CardField = keyof CardForm;
export type FieldErrors = Partial<Record<CardField, string>>;

export interface ParsedCard {
  /** Digits only; kept in memory for this request, never stored or logged. */
  number: string;
  details: CardDetails;
  billingName: string;
  email: string;
}

export type CardBehaviour =
  | { kind: 'succeed' }
  | { kind: 'authenticate' }
  | { kind: 'decline'; code: string; declineCode: string | null; message: string; sellerMessage: string };

const DECLINED_SELLER = 'The bank did not return any further details with this decline.';

/** Stripe's test cards (https://docs.stripe.com/testing#declined-payments, #regulatory-cards). */
export const TEST_CARDS: Record<string, { label: string; behaviour: CardBehaviour }> = {
  '4242424242424242': { label: 'Visa: succeeds', behaviour: { kind: 'succeed' } },
  '5555555555554444': { label: 'Mastercard: succeeds', behaviour: { kind: 'succeed' } },
  '4000000000000002': {
    label: 'Declined (generic)',
    behaviour: { kind: 'decline', code: 'card_declined', declineCode: 'generic_decline', message: 'Your card was declined.', sellerMessage: DECLINED_SELLER },
  },
  '4000000000009995': {
    label: 'Declined: insufficient funds',
    behaviour: {
      kind: 'decline',
      code: 'card_declined',
      declineCode: 'insufficient_funds',
      message: 'Your card has insufficient funds.',
      sellerMessage: DECLINED_SELLER,
    },
  },
  '4000000000000069': {
    label: 'Declined: expired card',
    behaviour: { kind: 'decline', code: 'expired_card', declineCode: null, message: 'Your card has expired.', sellerMessage: DECLINED_SELLER },
  },
  '4000000000000127': {
    label: 'Declined: incorrect CVC',
    behaviour: { kind: 'decline', code: 'incorrect_cvc', declineCode: null, message: "Your card's security code is incorrect.", sellerMessage: DECLINED_SELLER },
  },
  '4000000000000119': {
    label: 'Processing error',
    behaviour: {
      kind: 'decline',
      code: 'processing_error',
      declineCode: null,
      message: 'An error occurred while processing your card. Try again in a little bit.',
      sellerMessage: 'The payment could not be processed.',
    },
  },
  '4000000000000341': {
    // Stripe: attaching succeeds, charging fails. The emulator lets a subscription's first payment in
    // Checkout through (the card is attached then) and declines every later (renewal) charge.
    label: 'Attaches; later charges declined',
    behaviour: { kind: 'decline', code: 'card_declined', declineCode: 'generic_decline', message: 'Your card was declined.', sellerMessage: DECLINED_SELLER },
  },
  '4000002760003184': { label: '3D Secure: authentication required', behaviour: { kind: 'authenticate' } },
  '4000002500003155': { label: '3D Secure: authentication required', behaviour: { kind: 'authenticate' } },
};

const LIVE_CARD_DECLINE: CardBehaviour = {
  kind: 'decline',
  code: 'card_declined',
  declineCode: 'test_mode_live_card',
  message:
    'Your card was declined. Your request was in test mode, but used a non test (live) card. For a list of valid test cards, visit: https://stripe.com/docs/testing.',
  sellerMessage: DECLINED_SELLER,
};

/** What Stripe does with `number` in test mode; unknown (live) numbers are declined. */
export function cardBehaviour(number: string): CardBehaviour {
  return TEST_CARDS[number]?.behaviour ?? LIVE_CARD_DECLINE;
}

/** Luhn checksum (ISO/IEC 7812-1), which every real card number satisfies. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/** Card network from the number's prefix (IIN ranges): visa, mastercard, amex, discover or unknown. */
export function cardBrand(digits: string): string {
  if (/^4/.test(digits)) return 'visa';
  if (/^(5[1-5]|2(2[2-9]|[3-6]\d|7[01]|720))/.test(digits)) return 'mastercard';
  if (/^3[47]/.test(digits)) return 'amex';
  if (/^(6011|65|64[4-9])/.test(digits)) return 'discover';
  return 'unknown';
}

/** Accepts `MM / YY`, `MM/YY`, `MMYY`, `MM/YYYY`. */
function parseExpiry(raw: string): { month: number; year: number } | undefined {
  const m = /^\s*(\d{1,2})\s*\/?\s*(\d{2}|\d{4})\s*$/.exec(raw);
  if (!m) return undefined;
  const month = Number(m[1]);
  const year = m[2]!.length === 2 ? 2000 + Number(m[2]) : Number(m[2]);
  if (month < 1 || month > 12) return undefined;
  return { month, year };
}

/**
 * Validates the checkout form like Stripe Checkout's inline errors. `emailRequired` is false when
 * the session already knows the customer's email (then `fallbackEmail` is used).
 * Spaces and dashes in the card number are accepted.
 */
export function validateCardForm(
  form: CardForm,
  options: { now: Date; emailRequired: boolean; fallbackEmail: string | null },
): { ok: true; card: ParsedCard } | { ok: false; errors: FieldErrors } {
  const errors: FieldErrors = {};
  const email = form.email.trim() || options.fallbackEmail || '';
  if (options.emailRequired && email === '') errors.email = 'Your email is incomplete.';
  else if (email !== '' && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email)) errors.email = 'Your email address is invalid.';

  const digits = form.cardNumber.replace(/[\s-]/g, '');
  if (digits === '') errors.cardNumber = 'Your card number is incomplete.';
  else if (!/^\d+$/.test(digits) || !luhnValid(digits)) errors.cardNumber = 'Your card number is invalid.';
  else if (digits.length < 13) errors.cardNumber = 'Your card number is incomplete.';
  else if (digits.length > 19) errors.cardNumber = 'Your card number is invalid.';

  const expiry = parseExpiry(form.cardExpiry);
  const nowYear = options.now.getUTCFullYear();
  const nowMonth = options.now.getUTCMonth() + 1;
  if (form.cardExpiry.trim() === '') errors.cardExpiry = "Your card's expiration date is incomplete.";
  else if (!expiry) errors.cardExpiry = "Your card's expiration date is incomplete.";
  else if (expiry.year < nowYear || (expiry.year === nowYear && expiry.month < nowMonth)) {
    errors.cardExpiry = "Your card's expiration year is in the past.";
  } else if (expiry.year > nowYear + 50) errors.cardExpiry = "Your card's expiration year is invalid.";

  const brand = cardBrand(digits);
  const cvcLength = brand === 'amex' ? 4 : 3;
  const cvc = form.cardCvc.trim();
  if (!/^\d+$/.test(cvc) || cvc.length < cvcLength) errors.cardCvc = "Your card's security code is incomplete.";
  else if (cvc.length > cvcLength) errors.cardCvc = "Your card's security code is invalid.";

  const billingName = form.billingName.trim();
  if (billingName === '') errors.billingName = 'Enter the name on your card.';
  else if (billingName.length > 200) errors.billingName = 'The name on your card is too long.';

  if (Object.keys(errors).length > 0 || !expiry) return { ok: false, errors };
  return {
    ok: true,
    card: {
      number: digits,
      billingName,
      email,
      details: {
        brand,
        last4: digits.slice(-4),
        exp_month: expiry.month,
        exp_year: expiry.year,
        funding: 'credit',
        country: 'US',
        fingerprint: crypto.createHash('sha256').update(`tally-emulator:${digits}`).digest('base64url').slice(0, 16),
      },
    },
  };
}
