import type { Knex } from 'knex';
import { SCHEMA, type Db, type Trx } from './db.ts';
import { resourceMissing } from './stripe-errors.ts';

/**
 * All SQL of the Stripe emulator. Rows are snake_case like the tables (and like the Stripe
 * objects they become in stripe-emulator-objects.ts). Amounts are integer minor units (cents).
 * Every function takes the Knex instance or the open transaction to run on.
 */

type Q = Db | Trx;
export type Metadata = Record<string, string>;

export const TABLES = {
  customers: `${SCHEMA}.customers`,
  sessions: `${SCHEMA}.checkout_sessions`,
  lineItems: `${SCHEMA}.line_items`,
  paymentIntents: `${SCHEMA}.payment_intents`,
  charges: `${SCHEMA}.charges`,
  refunds: `${SCHEMA}.refunds`,
  events: `${SCHEMA}.events`,
  deliveries: `${SCHEMA}.webhook_deliveries`,
  idempotencyKeys: `${SCHEMA}.idempotency_keys`,
} as const;

export interface DbCustomerRow {
  id: string;
  seq: number;
  created: Date;
  email: string | null;
  name: string | null;
  description: string | null;
  phone: string | null;
  metadata: Metadata;
  /** The test clock the customer lives on (Billing), if any. */
  test_clock_id?: string | null;
  /** The saved card subscriptions charge (billing-service.ts `SavedCard`). */
  default_payment_method?: { id: string } | null;
  /** Set when the customer was deleted (`DELETE /v1/customers/:id`). */
  deleted_at?: Date | null;
}

export interface PaymentIntentData {
  metadata: Metadata;
  description: string | null;
  receipt_email: string | null;
}

export interface CustomerDetails {
  email: string | null;
  name: string | null;
}

export type SessionStatus = 'open' | 'complete' | 'expired';

export interface DbSessionRow {
  id: string;
  seq: number;
  created: Date;
  expires_at: Date;
  status: SessionStatus;
  payment_status: 'paid' | 'unpaid' | 'no_payment_required';
  mode: 'payment' | 'subscription';
  /** mode subscription: the recurring price bought, and what paying created. */
  price_id?: string | null;
  subscription_id?: string | null;
  invoice_id?: string | null;
  currency: string;
  amount_subtotal: number;
  amount_total: number;
  success_url: string | null;
  cancel_url: string | null;
  client_reference_id: string | null;
  customer_id: string | null;
  customer_email: string | null;
  customer_details: CustomerDetails | null;
  metadata: Metadata;
  payment_intent_data: PaymentIntentData;
  payment_intent_id: string | null;
  completed_at: Date | null;
  expired_at: Date | null;
}

export interface DbLineItemRow {
  id: string;
  seq: number;
  session_id: string;
  position: number;
  created: Date;
  price_id: string;
  product_id: string;
  product_name: string;
  product_description: string | null;
  product_metadata: Metadata;
  metadata: Metadata;
  currency: string;
  unit_amount: number;
  quantity: number;
  amount_total: number;
}

/** What the emulator keeps of a card: never the full number or the CVC. */
export interface CardDetails {
  brand: string;
  last4: string;
  exp_month: number;
  exp_year: number;
  funding: 'credit' | 'debit';
  country: string;
  fingerprint: string;
}

/** A card awaiting its 3-D Secure step. */
export interface PendingCard {
  payment_method_id: string;
  card: CardDetails;
  billing_name: string;
  email: string | null;
}

export type PaymentIntentStatus =
  | 'requires_payment_method'
  | 'requires_confirmation'
  | 'requires_action'
  | 'processing'
  | 'requires_capture'
  | 'canceled'
  | 'succeeded';

export interface DbPaymentIntentRow {
  id: string;
  seq: number;
  created: Date;
  amount: number;
  currency: string;
  status: PaymentIntentStatus;
  client_secret: string;
  customer_id: string | null;
  description: string | null;
  receipt_email: string | null;
  metadata: Metadata;
  payment_method_id: string | null;
  latest_charge_id: string | null;
  amount_received: number;
  last_payment_error: Record<string, unknown> | null;
  next_action: Record<string, unknown> | null;
  pending_card: PendingCard | null;
  canceled_at: Date | null;
  cancellation_reason: string | null;
}

export interface ChargeOutcome {
  network_status: string;
  reason: string | null;
  risk_level: string;
  risk_score: number;
  seller_message: string;
  type: string;
}

export interface DbChargeRow {
  id: string;
  seq: number;
  created: Date;
  payment_intent_id: string;
  amount: number;
  amount_refunded: number;
  currency: string;
  status: 'succeeded' | 'pending' | 'failed';
  customer_id: string | null;
  description: string | null;
  receipt_email: string | null;
  metadata: Metadata;
  payment_method_id: string;
  card: CardDetails;
  billing_details: CustomerDetails;
  failure_code: string | null;
  failure_message: string | null;
  outcome: ChargeOutcome;
  balance_transaction_id: string | null;
}

export type RefundReason = 'duplicate' | 'fraudulent' | 'requested_by_customer';

export interface DbRefundRow {
  id: string;
  seq: number;
  created: Date;
  charge_id: string;
  payment_intent_id: string | null;
  amount: number;
  currency: string;
  reason: RefundReason | null;
  status: 'pending' | 'requires_action' | 'succeeded' | 'failed' | 'canceled';
  metadata: Metadata;
  balance_transaction_id: string | null;
}

export interface EventData {
  object: Record<string, unknown>;
  previous_attributes?: Record<string, unknown>;
}

export interface DbEventRow {
  id: string;
  seq: number;
  created: Date;
  type: string;
  api_version: string;
  data: EventData;
  request_id: string | null;
  idempotency_key: string | null;
}

export interface DbDeliveryRow {
  id: number;
  event_id: string;
  endpoint_url: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  next_attempt_at: Date;
  last_attempt_at: Date | null;
  last_response_status: number | null;
  last_error: string | null;
  delivered_at: Date | null;
  created_at: Date;
}

export interface DbIdempotencyRow {
  key: string;
  method: string;
  path: string;
  params_hash: string;
  request_id: string;
  status_code: number | null;
  response: unknown;
  created_at: Date;
}

// jsonb values go in as JSON text: node-postgres would turn a JS array into a Postgres array.
const JSON_COLUMNS = new Set([
  'metadata',
  'customer_details',
  'payment_intent_data',
  'product_metadata',
  'last_payment_error',
  'next_action',
  'pending_card',
  'card',
  'billing_details',
  'outcome',
  'data',
  'response',
]);

function toDb<T extends object>(row: T): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) {
    out[k] = JSON_COLUMNS.has(k) && v !== null && v !== undefined ? JSON.stringify(v) : v;
  }
  return out;
}

async function insertOne<T>(q: Q, table: string, row: object): Promise<T> {
  const [inserted] = (await q(table).insert(toDb(row)).returning('*')) as T[];
  return inserted!;
}

async function updateOne<T>(q: Q, table: string, id: string, patch: object): Promise<T> {
  const [updated] = (await q(table).where({ id }).update(toDb(patch)).returning('*')) as T[];
  if (!updated) throw new Error(`${table} ${id} vanished during update`);
  return updated;
}

async function findOne<T>(q: Q, table: string, id: string, forUpdate: boolean): Promise<T | undefined> {
  const query = q(table).where({ id }).first();
  return (await (forUpdate ? query.forUpdate() : query)) as T | undefined;
}

// ---------------------------------------------------------------------------------------------
// Pagination (https://docs.stripe.com/api/pagination)

export interface PageRequest {
  limit: number;
  startingAfter?: string | undefined;
  endingBefore?: string | undefined;
}

export interface Page<T> {
  rows: T[];
  hasMore: boolean;
}

/** A filter for unix-second ranges such as `created[gte]`. */
export type TimeRange = number | { gt?: number | undefined; gte?: number | undefined; lt?: number | undefined; lte?: number | undefined };

function applyTimeRange(qb: Knex.QueryBuilder, column: string, range: TimeRange | undefined): void {
  if (range === undefined) return;
  const at = (s: number) => new Date(s * 1000);
  if (typeof range === 'number') {
    qb.where(column, '>=', at(range)).where(column, '<', at(range + 1));
    return;
  }
  if (range.gt !== undefined) qb.where(column, '>=', at(range.gt + 1));
  if (range.gte !== undefined) qb.where(column, '>=', at(range.gte));
  if (range.lt !== undefined) qb.where(column, '<', at(range.lt));
  if (range.lte !== undefined) qb.where(column, '<', at(range.lte + 1));
}

/**
 * One page of `table` in `order` of `column` (`seq` newest first for most lists), after
 * `startingAfter` or before `endingBefore` (object ids).
 * @throws StripeApiError 400 resource_missing when a cursor id does not exist.
 */
async function paginate<T>(
  q: Q,
  table: string,
  objectName: string,
  filter: (qb: Knex.QueryBuilder) => void,
  page: PageRequest,
  options: { order: 'asc' | 'desc'; column?: string } = { order: 'desc' },
): Promise<Page<T>> {
  const column = options.column ?? 'seq';
  const cursorId = page.startingAfter ?? page.endingBefore;
  const backwards = page.startingAfter === undefined && page.endingBefore !== undefined;
  const qb = q(table).select('*');
  filter(qb);
  if (cursorId !== undefined) {
    const cursor = (await q(table).select(column).where({ id: cursorId }).first()) as Record<string, number> | undefined;
    if (!cursor) throw resourceMissing(objectName, cursorId, backwards ? 'ending_before' : 'starting_after', 400);
    const forwardOp = options.order === 'desc' ? '<' : '>';
    const backwardOp = options.order === 'desc' ? '>' : '<';
    qb.where(column, backwards ? backwardOp : forwardOp, cursor[column]!);
  }
  const direction = backwards ? (options.order === 'desc' ? 'asc' : 'desc') : options.order;
  const rows = (await qb.orderBy(column, direction).limit(page.limit + 1)) as T[];
  const hasMore = rows.length > page.limit;
  const pageRows = rows.slice(0, page.limit);
  if (backwards) pageRows.reverse();
  return { rows: pageRows, hasMore };
}

// ---------------------------------------------------------------------------------------------
// Customers

/** Inserts a customer; returns the stored row. */
export function insertCustomer(q: Q, row: Omit<DbCustomerRow, 'seq'>): Promise<DbCustomerRow> {
  return insertOne(q, TABLES.customers, row);
}

/** The customer with `id`, or undefined. */
export function findCustomer(q: Q, id: string): Promise<DbCustomerRow | undefined> {
  return findOne(q, TABLES.customers, id, false);
}

/**
 * Marks a customer deleted and clears what identifies a person (email, name, phone, description,
 * metadata), as Stripe keeps only the id of a deleted customer. Returns false when there was none.
 */
export async function markCustomerDeleted(q: Q, id: string, at: Date): Promise<boolean> {
  const n = await q(TABLES.customers).where({ id }).update({ deleted_at: at, email: null, name: null, phone: null, description: null, metadata: JSON.stringify({}) });
  return n > 0;
}

/** One page of customers, newest first, optionally by exact `email` and `created` range. Deleted customers are left out. */
export function listCustomers(q: Q, filter: { email?: string | undefined; created?: TimeRange | undefined }, page: PageRequest): Promise<Page<DbCustomerRow>> {
  return paginate(q, TABLES.customers, 'customer', (qb) => {
    qb.whereNull('deleted_at');
    if (filter.email !== undefined) qb.where({ email: filter.email });
    applyTimeRange(qb, 'created', filter.created);
  }, page);
}

// ---------------------------------------------------------------------------------------------
// Checkout sessions and their line items

/** Inserts a checkout session (its line items go in with {@link insertLineItems}). */
export function insertSession(q: Q, row: Omit<DbSessionRow, 'seq'>): Promise<DbSessionRow> {
  return insertOne(q, TABLES.sessions, row);
}

/** Inserts a session's line items in `position` order. */
export async function insertLineItems(q: Q, rows: Omit<DbLineItemRow, 'seq'>[]): Promise<void> {
  // One by one so `seq` follows `position`.
  for (const row of rows) await insertOne(q, TABLES.lineItems, row);
}

/** The checkout session with `id` (row-locked with `forUpdate`), or undefined. */
export function findSession(q: Q, id: string, options: { forUpdate?: boolean } = {}): Promise<DbSessionRow | undefined> {
  return findOne(q, TABLES.sessions, id, options.forUpdate ?? false);
}

/** Updates a session; returns the new row. */
export function updateSession(q: Q, id: string, patch: Partial<Omit<DbSessionRow, 'id' | 'seq'>>): Promise<DbSessionRow> {
  return updateOne(q, TABLES.sessions, id, patch);
}

export interface SessionFilter {
  status?: SessionStatus | undefined;
  customerId?: string | undefined;
  paymentIntentId?: string | undefined;
  customerEmail?: string | undefined;
  created?: TimeRange | undefined;
}

/** One page of checkout sessions, newest first, filtered as Stripe's list endpoint allows. */
export function listSessions(q: Q, filter: SessionFilter, page: PageRequest): Promise<Page<DbSessionRow>> {
  return paginate(q, TABLES.sessions, 'checkout.session', (qb) => {
    if (filter.status) qb.where({ status: filter.status });
    if (filter.customerId) qb.where({ customer_id: filter.customerId });
    if (filter.paymentIntentId) qb.where({ payment_intent_id: filter.paymentIntentId });
    if (filter.customerEmail) {
      qb.where((w) => w.where({ customer_email: filter.customerEmail }).orWhereRaw(`customer_details->>'email' = ?`, [filter.customerEmail!]));
    }
    applyTimeRange(qb, 'created', filter.created);
  }, page);
}

/**
 * Marks every open session whose `expires_at` has passed as expired, and returns those rows.
 * A session being paid is row-locked by that payment; this UPDATE waits for it and then skips
 * the row if the payment completed it, so a session is never both completed and expired.
 */
export async function expireDueSessions(q: Q, now: Date): Promise<DbSessionRow[]> {
  return (await q(TABLES.sessions)
    .where({ status: 'open' })
    .where('expires_at', '<=', now)
    .update({ status: 'expired', expired_at: now })
    .returning('*')) as DbSessionRow[];
}

/** One page of a session's line items, in the order they were given. */
export function listLineItems(q: Q, sessionId: string, page: PageRequest): Promise<Page<DbLineItemRow>> {
  return paginate(q, TABLES.lineItems, 'line_item', (qb) => qb.where({ session_id: sessionId }), page, { order: 'asc' });
}

/** Every line item of a session, in order (for the checkout page). */
export async function allLineItems(q: Q, sessionId: string): Promise<DbLineItemRow[]> {
  return (await q(TABLES.lineItems).where({ session_id: sessionId }).orderBy('position')) as DbLineItemRow[];
}

// ---------------------------------------------------------------------------------------------
// Payment intents and charges

/** Inserts a payment intent; returns the stored row. */
export function insertPaymentIntent(q: Q, row: Omit<DbPaymentIntentRow, 'seq'>): Promise<DbPaymentIntentRow> {
  return insertOne(q, TABLES.paymentIntents, row);
}

/** The payment intent with `id` (row-locked with `forUpdate`), or undefined. */
export function findPaymentIntent(q: Q, id: string, options: { forUpdate?: boolean } = {}): Promise<DbPaymentIntentRow | undefined> {
  return findOne(q, TABLES.paymentIntents, id, options.forUpdate ?? false);
}

/** Updates a payment intent; returns the new row. */
export function updatePaymentIntent(q: Q, id: string, patch: Partial<Omit<DbPaymentIntentRow, 'id' | 'seq'>>): Promise<DbPaymentIntentRow> {
  return updateOne(q, TABLES.paymentIntents, id, patch);
}

/** Inserts a charge (succeeded or failed); returns the stored row. */
export function insertCharge(q: Q, row: Omit<DbChargeRow, 'seq'>): Promise<DbChargeRow> {
  return insertOne(q, TABLES.charges, row);
}

/** The charge with `id` (row-locked with `forUpdate`), or undefined. */
export function findCharge(q: Q, id: string, options: { forUpdate?: boolean } = {}): Promise<DbChargeRow | undefined> {
  return findOne(q, TABLES.charges, id, options.forUpdate ?? false);
}

/**
 * Adds `amount` to a charge's `amount_refunded` if that stays within the charge amount;
 * undefined when it would not (the CHECK constraint backs this up).
 */
export async function addRefundedAmount(q: Q, chargeId: string, amount: number): Promise<DbChargeRow | undefined> {
  const [row] = (await q(TABLES.charges)
    .where({ id: chargeId, status: 'succeeded' })
    .whereRaw('amount_refunded + ? <= amount', [amount])
    .increment('amount_refunded', amount)
    .returning('*')) as DbChargeRow[];
  return row;
}

// ---------------------------------------------------------------------------------------------
// Refunds

/** Inserts a refund; the caller has already added its amount with {@link addRefundedAmount}. */
export function insertRefund(q: Q, row: Omit<DbRefundRow, 'seq'>): Promise<DbRefundRow> {
  return insertOne(q, TABLES.refunds, row);
}

/** The refund with `id`, or undefined. */
export function findRefund(q: Q, id: string): Promise<DbRefundRow | undefined> {
  return findOne(q, TABLES.refunds, id, false);
}

/** One page of refunds, newest first, optionally of one charge or payment intent. */
export function listRefunds(
  q: Q,
  filter: { chargeId?: string | undefined; paymentIntentId?: string | undefined; created?: TimeRange | undefined },
  page: PageRequest,
): Promise<Page<DbRefundRow>> {
  return paginate(q, TABLES.refunds, 'refund', (qb) => {
    if (filter.chargeId) qb.where({ charge_id: filter.chargeId });
    if (filter.paymentIntentId) qb.where({ payment_intent_id: filter.paymentIntentId });
    applyTimeRange(qb, 'created', filter.created);
  }, page);
}

// ---------------------------------------------------------------------------------------------
// Events and webhook deliveries

/** Inserts an event; returns the stored row. */
export function insertEvent(q: Q, row: Omit<DbEventRow, 'seq'>): Promise<DbEventRow> {
  return insertOne(q, TABLES.events, row);
}

/** The event with `id`, or undefined. */
export function findEvent(q: Q, id: string): Promise<DbEventRow | undefined> {
  return findOne(q, TABLES.events, id, false);
}

/** `LIKE` pattern for Stripe's event type filter, where `*` is a wildcard (`charge.*`). */
function typePattern(type: string): string {
  return type.replace(/[\\%_]/g, (c) => `\\${c}`).replace(/\*/g, '%');
}

/** One page of events, newest first; `types` may use `*` wildcards (`charge.*`). */
export function listEvents(
  q: Q,
  filter: { types?: string[] | undefined; created?: TimeRange | undefined },
  page: PageRequest,
): Promise<Page<DbEventRow>> {
  return paginate(q, TABLES.events, 'event', (qb) => {
    if (filter.types && filter.types.length > 0) {
      qb.where((w) => {
        for (const t of filter.types!) w.orWhereRaw(`type LIKE ? ESCAPE '\\'`, [typePattern(t)]);
      });
    }
    applyTimeRange(qb, 'created', filter.created);
  }, page);
}

/** Number of deliveries still pending, per event id (Stripe's `pending_webhooks`). */
export async function pendingWebhookCounts(q: Q, eventIds: string[]): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  if (eventIds.length === 0) return counts;
  const rows = (await q(TABLES.deliveries)
    .select('event_id')
    .count<{ event_id: string; n: string }[]>({ n: '*' })
    .whereIn('event_id', eventIds)
    .where({ status: 'pending' })
    .groupBy('event_id')) as { event_id: string; n: string | number }[];
  for (const r of rows) counts.set(r.event_id, Number(r.n));
  return counts;
}

/** Queues the delivery of an event to an endpoint, due at `next_attempt_at` (once per event and endpoint). */
export async function insertDelivery(q: Q, row: { event_id: string; endpoint_url: string; next_attempt_at: Date }): Promise<void> {
  await q(TABLES.deliveries).insert({ ...row, status: 'pending', attempts: 0 }).onConflict(['event_id', 'endpoint_url']).ignore();
}

/**
 * Claims up to `limit` pending deliveries due at `now` (oldest first), skipping rows another
 * process has locked (`FOR UPDATE SKIP LOCKED`), and leases them: `attempts` is incremented and
 * `next_attempt_at` moved to `now + leaseMs`, so a crashed sender's rows come back after the lease.
 */
export async function claimDueDeliveries(
  q: Q,
  options: { now: Date; leaseMs: number; limit: number; excludeIds?: number[] },
): Promise<(DbDeliveryRow & { event: DbEventRow })[]> {
  const { now, leaseMs, limit, excludeIds = [] } = options;
  const claimed = (await q.raw(
    `UPDATE ${TABLES.deliveries} d
        SET attempts = d.attempts + 1, last_attempt_at = ?, next_attempt_at = ?
      WHERE d.id IN (
        SELECT id FROM ${TABLES.deliveries}
         WHERE status = 'pending' AND next_attempt_at <= ? AND NOT (id = ANY(?::bigint[]))
         ORDER BY next_attempt_at, id
         LIMIT ?
         FOR UPDATE SKIP LOCKED)
      RETURNING d.*`,
    [now, new Date(now.getTime() + leaseMs), now, `{${excludeIds.join(',')}}`, limit],
  )) as { rows: DbDeliveryRow[] };
  if (claimed.rows.length === 0) return [];
  const events = (await q(TABLES.events).whereIn('id', claimed.rows.map((r) => r.event_id))) as DbEventRow[];
  const byId = new Map(events.map((e) => [e.id, e]));
  return claimed.rows
    .sort((a, b) => a.next_attempt_at.getTime() - b.next_attempt_at.getTime() || Number(a.id) - Number(b.id))
    .map((r) => ({ ...r, id: Number(r.id), event: byId.get(r.event_id)! }));
}

/** Records a successful (2xx) delivery. */
export async function markDelivered(q: Q, id: number, at: Date, status: number): Promise<void> {
  await q(TABLES.deliveries).where({ id }).update({ status: 'delivered', delivered_at: at, last_response_status: status, last_error: null });
}

/** Records a failed attempt: retry at `retryAt`, or give up (`failed`) when `retryAt` is null. */
export async function markAttemptFailed(
  q: Q,
  id: number,
  result: { status: number | null; error: string; retryAt: Date | null },
): Promise<void> {
  await q(TABLES.deliveries)
    .where({ id })
    .update({
      status: result.retryAt ? 'pending' : 'failed',
      last_response_status: result.status,
      last_error: result.error.slice(0, 1000),
      ...(result.retryAt ? { next_attempt_at: result.retryAt } : {}),
    });
}

/** The deliveries of one event (diagnostics and tests). */
export async function findDeliveries(q: Q, eventId: string): Promise<DbDeliveryRow[]> {
  return (await q(TABLES.deliveries).where({ event_id: eventId }).orderBy('id')) as DbDeliveryRow[];
}

// ---------------------------------------------------------------------------------------------
// Idempotency keys (https://docs.stripe.com/api/idempotent_requests)

/**
 * Reserves `key` for this request. Inside a transaction, a concurrent request with the same key
 * waits on the unique index until the first commits, then sees its stored response.
 * Keys older than `expiredBefore` are forgotten first (Stripe keeps them for 24 hours).
 * @returns the existing row when the key was already used, undefined when reserved for us.
 */
export async function reserveIdempotencyKey(
  q: Q,
  row: Omit<DbIdempotencyRow, 'status_code' | 'response'>,
  expiredBefore: Date,
): Promise<DbIdempotencyRow | undefined> {
  await q(TABLES.idempotencyKeys).where({ key: row.key }).where('created_at', '<', expiredBefore).delete();
  const inserted = await q(TABLES.idempotencyKeys).insert(row).onConflict('key').ignore().returning('key');
  if (inserted.length > 0) return undefined;
  return (await q(TABLES.idempotencyKeys).where({ key: row.key }).first()) as DbIdempotencyRow;
}

/** Stores the response to replay for an idempotency key reserved by {@link reserveIdempotencyKey}. */
export async function saveIdempotentResponse(q: Q, key: string, statusCode: number, response: unknown): Promise<void> {
  await q(TABLES.idempotencyKeys).where({ key }).update({ status_code: statusCode, response: JSON.stringify(response) });
}
