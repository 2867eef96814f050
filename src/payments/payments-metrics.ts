import type { Metrics } from '../metrics/metrics.ts';
import { outcomeOf } from '../metrics/metrics.ts';
import type { Payments } from './payments-service.ts';
import type { StripeWebhook } from './stripe-webhook.ts';

/** An outcome as a label value: lower-case words, `:` kept (`not_paid:unpaid`), at most 60 characters. */
function label(outcome: string): string {
  return outcome.toLowerCase().replace(/[^a-z0-9_:]+/g, '_').slice(0, 60) || 'unknown';
}

/**
 * Payments with their steps counted in `tally_payments_total{step, outcome}`: `checkout`
 * (created / the error code), `confirm` (the success page's fulfillment: fulfilled,
 * already_fulfilled, not_paid), `refund` (requested / the error code). Fulfillment by webhook is
 * counted by {@link withWebhookMetrics}. The service's behaviour is unchanged.
 */
export function withPaymentMetrics(payments: Payments, metrics: Pick<Metrics, 'payments'>): Payments {
  async function count<T>(step: string, run: () => Promise<T>, outcome: (r: T) => string): Promise<T> {
    try {
      const result = await run();
      metrics.payments.inc({ step, outcome: outcome(result) });
      return result;
    } catch (err) {
      metrics.payments.inc({ step, outcome: outcomeOf(err) });
      throw err;
    }
  }
  return {
    ...payments,
    createCheckout: (...args) => count('checkout', () => payments.createCheckout(...args), () => 'created'),
    confirmCheckout: (...args) =>
      count('confirm', () => payments.confirmCheckout(...args), (r) => (r.granted ? 'fulfilled' : r.paid ? 'already_fulfilled' : 'not_paid')),
    refund: (...args) => count('refund', () => payments.refund(...args), () => 'requested'),
  };
}

/**
 * The Stripe webhook endpoint with each delivery counted in
 * `tally_stripe_webhook_events_total{outcome}`: the handler's outcome (`fulfilled`,
 * `refund_clawed_back`, `ignored`, …), `duplicate` for an event id seen before, or the error code
 * (`invalid_signature`, `invalid_event`, `webhook_failed`).
 */
export function withWebhookMetrics(webhook: StripeWebhook, metrics: Pick<Metrics, 'stripeWebhookEvents'>): StripeWebhook {
  return {
    ...webhook,
    async handle(rawBody, signature) {
      try {
        const result = await webhook.handle(rawBody, signature);
        metrics.stripeWebhookEvents.inc({ outcome: result.duplicate ? 'duplicate' : label(result.outcome) });
        return result;
      } catch (err) {
        metrics.stripeWebhookEvents.inc({ outcome: outcomeOf(err) });
        throw err;
      }
    },
  };
}
