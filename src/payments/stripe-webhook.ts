import type Stripe from 'stripe';
import { z } from 'zod';
import { inTransaction, type Db, type Trx } from '../db/database.ts';
import { AppError, BadRequestError } from '../http/errors.ts';
import type { Logger } from '../logger.ts';
import type { Payments, SessionFacts } from './payments-service.ts';
import * as store from './payments-store.ts';

/** Stripe's default tolerance for webhook timestamps, in seconds (Stripe docs, "Verify webhook signatures"). */
export const WEBHOOK_TOLERANCE_SECONDS = 300;

/** The envelope every Stripe event has (Stripe API reference, "The Event object"). */
const EventEnvelope = z.object({
  id: z.string().min(1).max(255),
  type: z.string().min(1).max(255),
  created: z.number().int().nonnegative(),
  data: z.object({ object: z.record(z.string(), z.unknown()) }),
});
type Envelope = z.infer<typeof EventEnvelope>;

const IdOrObject = z.union([z.string().min(1), z.object({ id: z.string().min(1) })]);
const SessionObject = z.looseObject({
  id: z.string().min(1),
  payment_status: z.enum(['paid', 'unpaid', 'no_payment_required']),
  amount_total: z.number().int().nullable(),
  currency: z.string().nullable(),
  payment_intent: IdOrObject.nullish().transform((v) => v ?? null),
});
const ExpiredSessionObject = z.looseObject({ id: z.string().min(1) });
const PaymentIntentObject = z.looseObject({
  id: z.string().min(1),
  status: z.string().optional(),
  amount: z.number().int().optional(),
  currency: z.string().optional(),
  metadata: z.record(z.string(), z.string()).nullish(),
});
const ChargeObject = z.looseObject({
  id: z.string().min(1),
  payment_intent: IdOrObject.nullable(),
  amount_refunded: z.number().int().nonnegative(),
  refunds: z
    .object({
      data: z.array(
        z.looseObject({
          id: z.string().min(1),
          amount: z.number().int().positive(),
          status: z.string().nullish(),
          reason: z.string().nullish(),
          metadata: z.record(z.string(), z.string()).nullish(),
        }),
      ),
    })
    .nullish(),
});

/** A signed event Tally cannot use as it is: recorded for admins and answered 400 (retrying cannot help). */
export class MalformedEventError extends BadRequestError {
  constructor(
    detail: string,
    readonly event: { id: string | null; type: string | null },
  ) {
    super(`The webhook event is malformed: ${detail}`, 'invalid_event');
  }
}

/** Parses `object` with `schema`, or throws {@link MalformedEventError} naming the event. */
function objectOf<S extends z.ZodType>(schema: S, event: Envelope): z.output<S> {
  const parsed = schema.safeParse(event.data.object);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  throw new MalformedEventError(`data.object.${issue.path.join('.')} ${issue.message}`, { id: event.id, type: event.type });
}

interface HandlerContext {
  trx: Trx;
  /** Records a problem for admins in the event's transaction (the event is still answered 2xx). */
  problem(kind: store.WebhookProblemKind, detail: string): Promise<void>;
}
type Handler = (event: Envelope, ctx: HandlerContext) => Promise<string>;

export interface StripeWebhookDeps {
  db: Db;
  stripe: Stripe;
  /** The signing secret of our webhook endpoint (whsec_…). */
  webhookSecret: string;
  payments: Pick<Payments, 'webhook'>;
  logger: Logger;
  /**
   * Payments charged off-session (auto-recharge, src/recharge/): given a succeeded PaymentIntent
   * first, in the event's transaction; returns the outcome, or null when it is not one of theirs.
   */
  offSession?: { paymentIntentSucceeded(pi: PaymentIntentFacts, trx: Trx): Promise<string | null> };
  /**
   * Handlers of other features (subscriptions), by event type. Tried before the payments handler
   * of the same type (and before `offSession`); one answering null leaves the event to it.
   * `prefetch` runs before the event's transaction, so calls to Stripe never hold a database connection.
   */
  more?: Record<string, MoreHandler>;
}

/** A webhook handler of another feature: what to read first (outside the transaction), then what to do in it. */
export interface MoreHandler {
  prefetch?: (event: Stripe.Event) => Promise<unknown>;
  handle: (event: Stripe.Event, trx: Trx, prefetched: unknown) => Promise<string | null>;
  /** Runs after the event's transaction committed (calls to Stripe that follow from it); errors are logged. */
  after?: (event: Stripe.Event, outcome: string, prefetched: unknown) => Promise<void>;
}

/** The id of the customer a `customer.*` event is about (`data.object.id`), or undefined when it has none. */
export function customerIdOf(event: Stripe.Event): string | undefined {
  const id = (event.data.object as { id?: unknown }).id;
  return typeof id === 'string' && id !== '' ? id : undefined;
}

/**
 * The `more` maps of several features as one: where two features handle the same event type, their
 * handlers run one after the other, in the order given, in the event's one transaction (so a later
 * handler may rely on what an earlier one wrote). The outcome is the non-null outcomes joined with
 * " + " (null when every handler passed, leaving the event to payments' own handler: so a type
 * where one feature's handler passes and another's answers is answered); each `after` gets the
 * joined outcome (match with `includes`) and its own prefetch.
 */
export function mergeMoreHandlers(...maps: Array<Record<string, MoreHandler>>): Record<string, MoreHandler> {
  const byType = new Map<string, MoreHandler[]>();
  for (const m of maps) for (const [type, h] of Object.entries(m)) byType.set(type, [...(byType.get(type) ?? []), h]);
  const merged: Record<string, MoreHandler> = {};
  for (const [type, hs] of byType) {
    merged[type] =
      hs.length === 1
        ? hs[0]!
        : {
            prefetch: async (event) => Promise.all(hs.map((h) => (h.prefetch ? h.prefetch(event) : undefined))),
            handle: async (event, trx, prefetched) => {
              const outcomes: string[] = [];
              for (const [i, h] of hs.entries()) {
                const o = await h.handle(event, trx, (prefetched as unknown[])[i]);
                if (o !== null) outcomes.push(o);
              }
              return outcomes.length > 0 ? outcomes.join(' + ') : null;
            },
            // Every follow-up runs, even after another one failed; then the first failure is reported.
            after: async (event, outcome, prefetched) => {
              const results = await Promise.allSettled(hs.map((h, i) => (h.after ? h.after(event, outcome, (prefetched as unknown[])[i]) : undefined)));
              const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
              if (failed) throw failed.reason;
            },
          };
  }
  return merged;
}

/** What an off-session handler reads of a PaymentIntent event. */
export type PaymentIntentFacts = { id: string; status?: string; amount?: number; currency?: string; metadata?: Record<string, string> | null };

export interface WebhookResult {
  eventId: string;
  duplicate: boolean;
  outcome: string;
}

/**
 * Tally's Stripe webhook endpoint: verify, parse, deduplicate, dispatch. Each event id is handled
 * once, in one transaction with its effect; 2xx only after that transaction committed.
 * - a missing or wrong signature, or a timestamp older than 300 s → 400, nothing stored;
 * - signed but malformed (not an object, no id, `data.object` null or missing what its type
 *   needs) → 400 `invalid_event`, recorded in `stripe_webhook_problems`;
 * - a type not in the handler map → 200 `ignored`, recorded as a problem;
 * - `charge.refunded` for a payment intent Tally does not know → 200, recorded as a problem;
 * - anything else that fails (database, Stripe unreachable) → 5xx: Stripe retries for 3 days.
 */
export function createStripeWebhook(deps: StripeWebhookDeps) {
  const { db, stripe, logger } = deps;
  const ops = deps.payments.webhook;

  /** What Tally does with each event type (Stripe docs, "Fulfill orders" / "Handle refunds"). A Map: no inherited keys. */
  const handlers = new Map<string, Handler>([
    ['checkout.session.completed', (event, { trx }) => ops.fulfillSession(objectOf(SessionObject, event) as SessionFacts, trx)],
    ['checkout.session.async_payment_succeeded', (event, { trx }) => ops.fulfillSession(objectOf(SessionObject, event) as SessionFacts, trx)],
    ['checkout.session.expired', (event, { trx }) => ops.expireSession(objectOf(ExpiredSessionObject, event).id, trx)],
    [
      'payment_intent.succeeded',
      async (event, { trx }) => {
        const pi = objectOf(PaymentIntentObject, event);
        return (await deps.offSession?.paymentIntentSucceeded(pi, trx)) ?? ops.recordPaymentIntent(pi, trx);
      },
    ],
    ['charge.refunded', handleChargeRefunded],
  ]);

  /** Refund targets are looked up before the transaction (they may ask Stripe). */
  const prefetched = new WeakMap<Envelope, Awaited<ReturnType<typeof ops.refundTarget>>>();

  async function handleChargeRefunded(event: Envelope, ctx: HandlerContext): Promise<string> {
    const charge = objectOf(ChargeObject, event);
    const target = prefetched.get(event) ?? {};
    if (!target.payment) {
      const pi = typeof charge.payment_intent === 'string' ? charge.payment_intent : (charge.payment_intent?.id ?? 'none');
      await ctx.problem('unknown_payment_intent', `Refund of charge ${charge.id} for payment intent ${pi}, which is not a Tally payment.`);
      return 'ignored:unknown_payment';
    }
    return ops.applyChargeRefund(charge, { ...target, payment: target.payment }, ctx.trx);
  }

  /** Verifies the signature and parses the envelope. */
  function verify(rawBody: Buffer, signature: string | undefined): Envelope {
    let parsed: unknown;
    try {
      if (!signature) throw new Error('missing Stripe-Signature header');
      parsed = stripe.webhooks.constructEvent(rawBody, signature, deps.webhookSecret, WEBHOOK_TOLERANCE_SECONDS);
    } catch (err) {
      throw new BadRequestError(`Webhook signature verification failed: ${(err as Error).message}`, 'invalid_signature');
    }
    const envelope = EventEnvelope.safeParse(parsed);
    if (envelope.success) return envelope.data;
    const raw = parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
    const issue = envelope.error.issues[0]!;
    throw new MalformedEventError(issue.path.length > 0 ? `${issue.path.join('.')} ${issue.message}` : `the body is not an event object (${issue.message})`, {
      id: typeof raw.id === 'string' ? raw.id.slice(0, 255) : null,
      type: typeof raw.type === 'string' ? raw.type.slice(0, 255) : null,
    });
  }

  const excerpt = (rawBody: Buffer) => rawBody.subarray(0, 4096).toString('utf8').slice(0, 4096);

  return {
    /** The event types with a handler. */
    handledTypes: (): string[] => [...new Set([...handlers.keys(), ...Object.keys(deps.more ?? {})])],

    /**
     * Handles one delivery. `rawBody` must be the exact bytes Stripe sent.
     * @throws {BadRequestError} 400 `invalid_signature` (nothing stored) or {@link MalformedEventError}
     *   400 `invalid_event` (recorded); other errors propagate (5xx, so Stripe retries).
     */
    async handle(rawBody: Buffer, signature: string | undefined): Promise<WebhookResult> {
      let event: Envelope;
      try {
        event = verify(rawBody, signature);
        if (event.type === 'charge.refunded') prefetched.set(event, await ops.refundTarget(objectOf(ChargeObject, event)));
        const more = deps.more && Object.hasOwn(deps.more, event.type) ? deps.more[event.type] : undefined;
        const morePrefetched = more?.prefetch ? await more.prefetch(event as unknown as Stripe.Event) : undefined;
        const result = await inTransaction(db, async (trx) => {
          const fresh = await store.recordWebhookEvent(trx, { id: event.id, type: event.type, created: event.created, outcome: 'processing' });
          if (!fresh) return { eventId: event.id, duplicate: true, outcome: 'duplicate' };
          const problem = (kind: store.WebhookProblemKind, detail: string) =>
            ops.recordProblem(trx, { eventId: event.id, eventType: event.type, problem: kind, detail, statusCode: 200, payloadExcerpt: excerpt(rawBody) });
          const handler = handlers.get(event.type);
          const moreOutcome = more ? await more.handle(event as unknown as Stripe.Event, trx, morePrefetched) : null;
          let outcome: string;
          if (moreOutcome !== null) {
            outcome = moreOutcome;
          } else if (handler) {
            outcome = await handler(event, { trx, problem });
          } else {
            await problem('unknown_type', `Tally does not handle ${event.type} events.`);
            outcome = 'ignored';
          }
          await store.setWebhookOutcome(trx, event.id, outcome);
          logger.info({ eventId: event.id, type: event.type, outcome }, 'stripe webhook handled');
          return { eventId: event.id, duplicate: false, outcome };
        });
        if (more?.after && !result.duplicate) {
          await more.after(event as unknown as Stripe.Event, result.outcome, morePrefetched).catch((err: unknown) => logger.error({ err, eventId: event.id }, 'stripe webhook: follow-up failed'));
        }
        return result;
      } catch (err) {
        if (err instanceof MalformedEventError) {
          await ops.recordProblem(db, {
            eventId: err.event.id,
            eventType: err.event.type,
            problem: 'malformed',
            detail: err.detail,
            statusCode: err.status,
            payloadExcerpt: excerpt(rawBody),
          });
          logger.warn({ eventId: err.event.id, type: err.event.type, detail: err.detail }, 'stripe webhook malformed');
          throw err;
        }
        if (err instanceof AppError) throw err;
        // Transient (database, Stripe unreachable; or a Stripe API refusal while handling, which is
        // not the sender's fault either): 5xx, so Stripe delivers the event again later.
        logger.error({ err }, 'stripe webhook failed; Stripe will retry');
        throw new AppError(500, 'webhook_failed', 'Webhook not handled', 'The event could not be handled now; Stripe will retry it.');
      }
    },
  };
}

export type StripeWebhook = ReturnType<typeof createStripeWebhook>;
