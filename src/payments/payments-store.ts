import type { Db, Trx } from '../db/database.ts';

/** SQL of the payments feature. Credits are millicredits; money is integer cents + currency. */

export interface CreditPackage {
  id: string;
  name: string;
  creditsMillicredits: number;
  bonusMillicredits: number;
  amountCents: number;
  currency: string;
}

export type PaymentStatus = 'pending' | 'paid' | 'expired' | 'refunded' | 'partially_refunded';

export interface Payment {
  id: string;
  userId: string;
  /** The team whose pool receives the credits (a pack bought for a team), else null. */
  teamId: string | null;
  packageId: string;
  status: PaymentStatus;
  creditsMillicredits: number;
  bonusMillicredits: number;
  amountCents: number;
  currency: string;
  checkoutSessionId: string | null;
  checkoutUrl: string | null;
  paymentIntentId: string | null;
  refundedCents: number;
  createdAt: Date;
  paidAt: Date | null;
}

export interface PaymentRefund {
  id: string;
  paymentId: string;
  amountCents: number;
  status: string;
  reason: string | null;
  requestedBy: string | null;
  createdAt: Date;
}

interface DbPackageRow {
  id: string;
  name: string;
  credits_millicredits: number;
  bonus_millicredits: number;
  amount_cents: number;
  currency: string;
  active: boolean;
}

interface DbPaymentRow {
  team_id?: string | null;
  id: string;
  user_id: string;
  package_id: string;
  status: PaymentStatus;
  credits_millicredits: number;
  bonus_millicredits: number;
  amount_cents: number;
  currency: string;
  checkout_session_id: string | null;
  checkout_url: string | null;
  payment_intent_id: string | null;
  refunded_cents: number;
  idempotency_key: string | null;
  created_at: Date;
  paid_at: Date | null;
}

interface DbRefundRow {
  id: string;
  payment_id: string;
  amount_cents: number;
  status: string;
  reason: string | null;
  requested_by: string | null;
  created_at: Date;
}

const mapPackage = (r: DbPackageRow): CreditPackage => ({
  id: r.id,
  name: r.name,
  creditsMillicredits: r.credits_millicredits,
  bonusMillicredits: r.bonus_millicredits,
  amountCents: r.amount_cents,
  currency: r.currency,
});

export const mapPayment = (r: DbPaymentRow): Payment => ({
  id: r.id,
  userId: r.user_id,
  teamId: r.team_id ?? null,
  packageId: r.package_id,
  status: r.status,
  creditsMillicredits: r.credits_millicredits,
  bonusMillicredits: r.bonus_millicredits,
  amountCents: r.amount_cents,
  currency: r.currency,
  checkoutSessionId: r.checkout_session_id,
  checkoutUrl: r.checkout_url,
  paymentIntentId: r.payment_intent_id,
  refundedCents: r.refunded_cents,
  createdAt: r.created_at,
  paidAt: r.paid_at,
});

const mapRefund = (r: DbRefundRow): PaymentRefund => ({
  id: r.id,
  paymentId: r.payment_id,
  amountCents: r.amount_cents,
  status: r.status,
  reason: r.reason,
  requestedBy: r.requested_by,
  createdAt: r.created_at,
});

export async function listPackages(db: Db | Trx): Promise<CreditPackage[]> {
  const rows = await db<DbPackageRow>('credit_packages').where({ active: true }).orderBy([{ column: 'sort_order' }, { column: 'id' }]);
  return rows.map(mapPackage);
}

export async function findPackage(db: Db | Trx, id: string): Promise<CreditPackage | undefined> {
  const row = await db<DbPackageRow>('credit_packages').where({ id, active: true }).first();
  return row ? mapPackage(row) : undefined;
}

/**
 * Inserts a pending payment. With an idempotency key, a second insert for the same user and key
 * does nothing (unique constraint) and the existing payment is returned with `created: false`.
 */
export async function insertPendingPayment(
  db: Db | Trx,
  p: { userId: string; pack: CreditPackage; idempotencyKey: string | null; teamId?: string | null },
): Promise<{ payment: Payment; created: boolean }> {
  const rows = await db<DbPaymentRow>('payments')
    .insert({
      user_id: p.userId,
      package_id: p.pack.id,
      credits_millicredits: p.pack.creditsMillicredits,
      bonus_millicredits: p.pack.bonusMillicredits,
      amount_cents: p.pack.amountCents,
      currency: p.pack.currency,
      idempotency_key: p.idempotencyKey,
      team_id: p.teamId ?? null,
    })
    .onConflict(['user_id', 'idempotency_key'])
    .ignore()
    .returning('*');
  if (rows.length > 0) return { payment: mapPayment(rows[0] as DbPaymentRow), created: true };
  const existing = await db<DbPaymentRow>('payments').where({ user_id: p.userId, idempotency_key: p.idempotencyKey }).first();
  return { payment: mapPayment(existing!), created: false };
}

export async function setCheckoutSession(db: Db | Trx, paymentId: string, sessionId: string, url: string | null): Promise<void> {
  await db('payments').where({ id: paymentId }).update({ checkout_session_id: sessionId, checkout_url: url, updated_at: db.fn.now() });
}

export async function findPayment(db: Db | Trx, id: string, forUpdate = false): Promise<Payment | undefined> {
  if (!/^[0-9a-f-]{36}$/i.test(id)) return undefined;
  const q = db<DbPaymentRow>('payments').where({ id });
  const row = await (forUpdate ? q.forUpdate() : q).first();
  return row ? mapPayment(row) : undefined;
}

export async function findPaymentBy(
  db: Db | Trx,
  where: { checkout_session_id: string } | { payment_intent_id: string },
  forUpdate = false,
): Promise<Payment | undefined> {
  const q = db<DbPaymentRow>('payments').where(where);
  const row = await (forUpdate ? q.forUpdate() : q).first();
  return row ? mapPayment(row) : undefined;
}

export async function markPaid(trx: Trx, paymentId: string, paymentIntentId: string | null): Promise<void> {
  await trx('payments')
    .where({ id: paymentId })
    .update({ status: 'paid', paid_at: trx.fn.now(), payment_intent_id: paymentIntentId, updated_at: trx.fn.now() });
}

export async function markExpired(trx: Trx, paymentId: string): Promise<void> {
  await trx('payments').where({ id: paymentId, status: 'pending' }).update({ status: 'expired', updated_at: trx.fn.now() });
}

export async function setRefunded(trx: Trx, paymentId: string, refundedCents: number, status: PaymentStatus): Promise<void> {
  await trx('payments').where({ id: paymentId }).update({ refunded_cents: refundedCents, status, updated_at: trx.fn.now() });
}

export async function listUserPayments(
  db: Db | Trx,
  userId: string,
  limit: number,
  before?: { createdAt: Date; id: string },
): Promise<Payment[]> {
  const q = db<DbPaymentRow>('payments')
    .where({ user_id: userId })
    .orderBy([
      { column: 'created_at', order: 'desc' },
      { column: 'id', order: 'desc' },
    ])
    .limit(limit);
  if (before) q.whereRaw('(created_at, id) < (?, ?)', [before.createdAt, before.id]);
  return (await q).map(mapPayment);
}

export async function upsertRefund(
  db: Db | Trx,
  r: { id: string; paymentId: string; amountCents: number; status: string; reason: string | null; requestedBy: string | null },
): Promise<void> {
  await db('payment_refunds')
    .insert({ id: r.id, payment_id: r.paymentId, amount_cents: r.amountCents, status: r.status, reason: r.reason, requested_by: r.requestedBy })
    .onConflict('id')
    .merge(['status']);
}

export async function listRefunds(db: Db | Trx, paymentId: string): Promise<PaymentRefund[]> {
  const rows = await db<DbRefundRow>('payment_refunds').where({ payment_id: paymentId }).orderBy('created_at');
  return rows.map(mapRefund);
}

export async function findCustomerId(db: Db | Trx, userId: string): Promise<string | undefined> {
  const row = await db('stripe_customers').where({ user_id: userId }).first('customer_id');
  return row?.customer_id as string | undefined;
}

/** Records the user's Stripe customer; if another request recorded one first, returns that one. */
export async function saveCustomerId(db: Db | Trx, userId: string, customerId: string): Promise<string> {
  await db('stripe_customers').insert({ user_id: userId, customer_id: customerId }).onConflict('user_id').ignore();
  return (await findCustomerId(db, userId))!;
}

/**
 * Forgets the Stripe customer `customerId` (deleted at Stripe, `customer.deleted`), so the user's
 * next purchase creates a new one. Returns the id of the user it was stored for, or null when no
 * user has it (already forgotten, or not a Tally customer).
 */
export async function forgetCustomerId(db: Db | Trx, customerId: string): Promise<string | null> {
  const [row] = (await db('stripe_customers').where({ customer_id: customerId }).delete().returning('user_id')) as Array<{ user_id: string }>;
  return row?.user_id ?? null;
}

/**
 * Records a webhook event id before handling it. Returns false when the id was already recorded
 * (a redelivery). A concurrent delivery of the same id waits here on the unique index until the
 * first one commits (then false) or rolls back (then true).
 */
export async function recordWebhookEvent(trx: Trx, e: { id: string; type: string; created: number; outcome: string }): Promise<boolean> {
  const rows = await trx('stripe_webhook_events')
    .insert({ id: e.id, type: e.type, stripe_created_at: new Date(e.created * 1000), outcome: e.outcome })
    .onConflict('id')
    .ignore()
    .returning('id');
  return rows.length > 0;
}

export async function setWebhookOutcome(trx: Trx, id: string, outcome: string): Promise<void> {
  await trx('stripe_webhook_events').where({ id }).update({ outcome });
}

/** Why a signed webhook delivery could not be used as it was. */
export type WebhookProblemKind = 'malformed' | 'unknown_type' | 'unknown_payment_intent';

export interface WebhookProblem {
  id: string;
  receivedAt: Date;
  eventId: string | null;
  eventType: string | null;
  problem: WebhookProblemKind;
  detail: string;
  statusCode: number;
  payloadExcerpt: string;
}

interface DbWebhookProblemRow {
  id: string;
  received_at: Date;
  event_id: string | null;
  event_type: string | null;
  problem: WebhookProblemKind;
  detail: string;
  status_code: number;
  payload_excerpt: string;
}

/** Records a webhook problem for admins (in `q`: the event's transaction, or the pool after a rollback). */
export async function insertWebhookProblem(q: Db | Trx, p: Omit<WebhookProblem, 'id' | 'receivedAt'>): Promise<void> {
  await q('stripe_webhook_problems').insert({
    event_id: p.eventId,
    event_type: p.eventType,
    problem: p.problem,
    detail: p.detail,
    status_code: p.statusCode,
    payload_excerpt: p.payloadExcerpt,
  });
}

/** Webhook problems, newest first, before the id `beforeId` (keyset pagination). */
export async function listWebhookProblems(db: Db, limit: number, beforeId?: string): Promise<WebhookProblem[]> {
  const q = db<DbWebhookProblemRow>('stripe_webhook_problems').orderBy('id', 'desc').limit(limit);
  if (beforeId) q.where('id', '<', beforeId);
  return (await q).map((r) => ({
    id: String(r.id),
    receivedAt: r.received_at,
    eventId: r.event_id,
    eventType: r.event_type,
    problem: r.problem,
    detail: r.detail,
    statusCode: r.status_code,
    payloadExcerpt: r.payload_excerpt,
  }));
}

/** Remembers the payment intent of a payment (from `payment_intent.succeeded`). */
export async function setPaymentIntent(trx: Trx, paymentId: string, paymentIntentId: string): Promise<void> {
  await trx('payments').where({ id: paymentId }).update({ payment_intent_id: paymentIntentId });
}
