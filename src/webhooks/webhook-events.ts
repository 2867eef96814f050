/**
 * The outbound webhook event catalogue (issue 13). Later features add their types here. Each
 * event is delivered as `{type, timestamp, data}` with ids and credits as in the API (credits are
 * JSON numbers with at most 3 decimals).
 */
export const WEBHOOK_EVENT_TYPES = [
  'payment.succeeded',
  'payment.refunded',
  'credits.granted',
  'balance.low',
  'credits.expiring',
  'credits.expired',
  'hold.expired',
  'task.completed',
  'task.failed',
  'spend_cap.reached',
  'auto_recharge.succeeded',
  'auto_recharge.failed',
  'auto_recharge.action_required',
  'auto_recharge.limit_reached',
  'auto_recharge.disabled',
] as const;

export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** What goes over the wire: the Standard Webhooks payload shape. */
export interface WebhookPayload {
  type: WebhookEventType;
  /** ISO 8601 time of the event. */
  timestamp: string;
  data: Record<string, unknown>;
}
