import PDFDocument from 'pdfkit';
import type Stripe from 'stripe';
import { formatMoney } from '@tally/money';
import type { Db, Trx } from '../db/database.ts';
import { inTransaction } from '../db/database.ts';
import { NotFoundError } from '../http/errors.ts';
import { formatCredits } from '../ledger/credits.ts';
import type { Logger } from '../logger.ts';
import type { PaymentHooks } from '../notifications/payment-notices.ts';
import type { Payments } from '../payments/payments-service.ts';
import { findPackage } from '../payments/payments-store.ts';
import { viewHelpers } from '../credits/view-helpers.ts';
import * as store from './receipts-store.ts';

/** The seller printed on receipts (`SELLER_NAME`, `SELLER_ADDRESS`, `SELLER_TAX_ID`). */
export interface Seller {
  name: string;
  /** Address lines. */
  address: string[];
  taxId: string | undefined;
}

const brandNames: Record<string, string> = { visa: 'Visa', mastercard: 'Mastercard', amex: 'American Express', discover: 'Discover', jcb: 'JCB', diners: 'Diners Club', unionpay: 'UnionPay' };

const refundStatus: Record<string, string> = { succeeded: 'Refunded', pending: 'Pending', failed: 'Failed', canceled: 'Cancelled', requires_action: 'Pending' };

/** Everything a receipt shows, formatted for people (the HTML and the PDF receipt show the same). */
export interface ReceiptView {
  /** Gapless receipt number, zero-padded: `000042`. */
  number: string;
  seller: Seller;
  buyer: { name: string; email: string };
  /** When it was paid, in the app's date format. */
  date: string;
  paidAt: string;
  pack: string;
  credits: string;
  bonusCredits: string | null;
  amount: string;
  card: string | null;
  status: string;
  refunds: Array<{ date: string; amount: string; status: string }>;
  refundedTotal: string | null;
  net: string;
}

/** `000042`: receipt numbers as printed. */
export const formatReceiptNumber = (n: number) => String(n).padStart(6, '0');

/**
 * Receipts of paid purchases: a gapless number per payment (allocated in the fulfillment
 * transaction through {@link withReceiptNumbers}, or on first view for payments paid before),
 * the view model shared by the HTML receipt and the PDF, and the PDF itself (pdfkit).
 */
export function createReceipts(deps: { db: Db; stripe: Stripe; payments: Pick<Payments, 'getPayment'>; seller: Seller; logger: Logger }) {
  const { db, stripe, payments, seller, logger } = deps;

  async function cardOf(receipt: store.ReceiptRow, paymentIntentId: string | null): Promise<string | null> {
    if (receipt.cardBrand && receipt.cardLast4) return `${brandNames[receipt.cardBrand] ?? receipt.cardBrand} ending in ${receipt.cardLast4}`;
    if (!paymentIntentId) return null;
    try {
      const pi = await stripe.paymentIntents.retrieve(paymentIntentId, { expand: ['latest_charge'] });
      const charge = pi.latest_charge;
      const card = charge && typeof charge !== 'string' ? charge.payment_method_details?.card : undefined;
      if (!card?.brand || !card.last4) return null;
      await store.saveReceiptCard(db, receipt.paymentId, card.brand, card.last4);
      return `${brandNames[card.brand] ?? card.brand} ending in ${card.last4}`;
    } catch (err) {
      logger.warn({ err, paymentIntentId }, 'card details for the receipt unavailable');
      return null;
    }
  }

  const receipts = {
    /** The payment's receipt number, allocated now if it has none (see {@link store.allocateReceipt}). */
    async ensureNumber(paymentId: string, issuedAt: Date, trx?: Trx): Promise<store.ReceiptRow> {
      const found = await store.findReceipt(trx ?? db, paymentId);
      if (found) return found;
      return inTransaction(trx ?? db, (t) => store.allocateReceipt(t, paymentId, issuedAt));
    },

    /**
     * The receipt of `paymentId` as `userId` sees it (null: an admin, any payment). Throws
     * NotFoundError (404) when the payment is not theirs or was never paid.
     */
    async view(paymentId: string, userId: string | null): Promise<ReceiptView> {
      const { payment, refunds } = await payments.getPayment(paymentId, userId);
      if (!payment.paidAt) throw new NotFoundError('receipt: this purchase was not paid');
      const receipt = await receipts.ensureNumber(payment.id, payment.paidAt);
      const [pack, buyer, card] = await Promise.all([
        findPackage(db, payment.packageId),
        db('users').where({ id: payment.userId }).first('name', 'email') as Promise<{ name: string; email: string }>,
        cardOf(receipt, payment.paymentIntentId),
      ]);
      const money = (cents: number) => formatMoney(cents, payment.currency);
      return {
        number: formatReceiptNumber(receipt.number),
        seller,
        buyer: { name: buyer.name, email: buyer.email },
        date: viewHelpers.date(payment.paidAt),
        paidAt: viewHelpers.dateTime(payment.paidAt),
        pack: pack?.name ?? payment.packageId,
        credits: formatCredits(payment.creditsMillicredits),
        bonusCredits: payment.bonusMillicredits > 0 ? formatCredits(payment.bonusMillicredits) : null,
        amount: money(payment.amountCents),
        card,
        status: { paid: 'Paid', refunded: 'Refunded', partially_refunded: 'Partly refunded' }[payment.status as string] ?? payment.status,
        refunds: refunds.map((r) => ({ date: viewHelpers.date(r.createdAt), amount: money(r.amountCents), status: refundStatus[r.status] ?? r.status })),
        refundedTotal: payment.refundedCents > 0 ? money(payment.refundedCents) : null,
        net: money(payment.amountCents - payment.refundedCents),
      };
    },

    /** The receipt as a PDF (A4, pdfkit's built-in Helvetica), the same fields as the HTML receipt. */
    async pdf(paymentId: string, userId: string | null): Promise<{ view: ReceiptView; pdf: Buffer }> {
      const view = await receipts.view(paymentId, userId);
      return { view, pdf: await renderReceiptPdf(view) };
    },
  };
  return receipts;
}

export type Receipts = ReturnType<typeof createReceipts>;

/**
 * Payment hooks that number the receipt in the fulfillment transaction (so numbers follow the
 * order of payment), then call `next` (the receipt email and notices).
 */
export function withReceiptNumbers(receipts: Pick<Receipts, 'ensureNumber'>, next: PaymentHooks): PaymentHooks {
  return {
    async paid(trx, payment) {
      await receipts.ensureNumber(payment.id, payment.paidAt ?? new Date(), trx);
      await next.paid(trx, payment);
    },
    refunded: (...args) => next.refunded(...args),
  };
}

/** Renders a receipt view as a PDF document. */
export async function renderReceiptPdf(v: ReceiptView): Promise<Buffer> {
  const doc = new PDFDocument({ size: 'A4', margin: 56, info: { Title: `Receipt ${v.number}`, Author: v.seller.name, Subject: `Receipt for ${v.pack}` } });
  const chunks: Buffer[] = [];
  doc.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<void>((resolve, reject) => {
    doc.on('end', () => resolve());
    doc.on('error', reject);
  });

  doc.font('Helvetica-Bold').fontSize(20).text(v.seller.name);
  doc.font('Helvetica').fontSize(10);
  for (const line of v.seller.address) doc.text(line);
  if (v.seller.taxId) doc.text(`Tax ID: ${v.seller.taxId}`);
  doc.moveDown(1.5);
  doc.font('Helvetica-Bold').fontSize(16).text(`Receipt no. ${v.number}`);
  doc.font('Helvetica').fontSize(10).text(`Date: ${v.date}`);
  doc.moveDown();
  doc.text(`Billed to: ${v.buyer.name} <${v.buyer.email}>`);
  doc.moveDown();

  const row = (label: string, value: string) => {
    const y = doc.y;
    doc.font('Helvetica-Bold').text(label, 56, y, { width: 150 });
    doc.font('Helvetica').text(value, 216, y, { width: 320 });
    doc.moveDown(0.4);
  };
  row('Pack', v.pack);
  row('Credits', v.bonusCredits ? `${v.credits} + ${v.bonusCredits} bonus` : v.credits);
  row('Amount', v.amount);
  row('Paid', v.paidAt);
  row('Payment method', v.card ?? 'Card (details unavailable)');
  row('Status', v.status);
  if (v.refunds.length > 0) {
    doc.moveDown();
    doc.font('Helvetica-Bold').fontSize(12).text('Refunds', 56);
    doc.fontSize(10);
    for (const r of v.refunds) row(r.date, `${r.amount} (${r.status})`);
    if (v.refundedTotal) row('Refunded in total', v.refundedTotal);
    row('Net paid', v.net);
  }
  doc.moveDown(2);
  doc.font('Helvetica').fontSize(8).fillColor('#555555').text('Paid through Stripe Checkout. Credits are integer millicredits in our ledger; a refund takes back the same share of the pack\'s credits.', 56);
  doc.end();
  await done;
  return Buffer.concat(chunks);
}
