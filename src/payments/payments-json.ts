import { millicreditsToCredits } from '../ledger/credits.ts';
import { decimalPattern, formatMoney, formatUnitPrice, toDecimal } from '@tally/money';
import type { CreditPackage, Payment, PaymentRefund } from './payments-store.ts';

/** JSON of a credit pack: credits as numbers (≤ 3 decimals), price in cents. */
export function packageJson(p: CreditPackage) {
  return {
    id: p.id,
    name: p.name,
    credits: millicreditsToCredits(p.creditsMillicredits),
    bonusCredits: millicreditsToCredits(p.bonusMillicredits),
    amountCents: p.amountCents,
    currency: p.currency,
  };
}

/** JSON of a payment (and its refunds when given). */
export function paymentJson(p: Payment, refunds?: PaymentRefund[]) {
  return {
    id: p.id,
    status: p.status,
    packageId: p.packageId,
    credits: millicreditsToCredits(p.creditsMillicredits),
    bonusCredits: millicreditsToCredits(p.bonusMillicredits),
    amountCents: p.amountCents,
    currency: p.currency,
    refundedCents: p.refundedCents,
    createdAt: p.createdAt.toISOString(),
    paidAt: p.paidAt?.toISOString() ?? null,
    ...(refunds
      ? { refunds: refunds.map((r) => ({ id: r.id, amountCents: r.amountCents, status: r.status, reason: r.reason, createdAt: r.createdAt.toISOString() })) }
      : {}),
  };
}

/** View model of a payment for pages (receipt, /account, the admin's user page): JSON plus formatted money. */
export function paymentView(p: Payment, refunds?: PaymentRefund[]) {
  return {
    ...paymentJson(p, refunds),
    price: formatMoney(p.amountCents, p.currency),
    refunded: p.refundedCents > 0 ? formatMoney(p.refundedCents, p.currency) : null,
    refundable: p.paymentIntentId !== null && (p.status === 'paid' || p.status === 'partially_refunded') ? p.amountCents - p.refundedCents : 0,
    refundableMoney: formatMoney(p.amountCents - p.refundedCents, p.currency),
    /** What is left to refund as a form field shows it ("5.00", "500"), and the field's pattern. */
    refundableInput: toDecimal(p.amountCents - p.refundedCents, p.currency),
    amountPattern: decimalPattern(p.currency),
    refundViews: refunds?.map((r) => ({ ...r, money: formatMoney(r.amountCents, p.currency) })),
  };
}

/** View model of a pack for the pricing page. */
export function packView(p: CreditPackage) {
  return {
    ...packageJson(p),
    price: formatMoney(p.amountCents, p.currency),
    perCredit: formatUnitPrice(p.amountCents, p.creditsMillicredits + p.bonusMillicredits, p.currency),
  };
}
