import request from 'supertest';
import type { StripeEmulatorServer } from '@tally/stripe-emulator';
import type { TestApp } from '../helpers/app.ts';
import { payOnCheckoutPage, startStripeTestApp } from '../helpers/stripe-app.ts';

/** The app on a real HTTP port with the Stripe emulator delivering its webhooks to it (on demand). */
export async function buildEmulatedApp(env: Record<string, string> = {}): Promise<{ ta: TestApp; emulator: StripeEmulatorServer; close(): Promise<void> }> {
  return startStripeTestApp({ env });
}

/** Buys a pack as the agent's user: Checkout, the emulator's hosted page with `card`, then the webhooks. */
export async function buyPack(env: { emulator: StripeEmulatorServer }, agent: ReturnType<typeof request.agent>, card = '4242 4242 4242 4242', packageId = 'starter', extra: Record<string, unknown> = {}) {
  const checkout = await agent.post('/api/payments/checkout').send({ packageId, ...extra });
  if (checkout.status !== 201) throw new Error(`checkout failed: ${checkout.status} ${JSON.stringify(checkout.body)}`);
  await payOnCheckoutPage(env.emulator, checkout.body.sessionId, card, 'Buyer').expect(303);
  await env.emulator.emulator.deliverDue();
  return checkout.body as { paymentId: string; sessionId: string };
}

/** Refunds a payment in full as an admin agent, and delivers the `charge.refunded` webhook. */
export async function refundPayment(env: { emulator: StripeEmulatorServer }, adminAgent: ReturnType<typeof request.agent>, paymentId: string) {
  await adminAgent.post(`/api/admin/payments/${paymentId}/refunds`).send({}).expect(201);
  await env.emulator.emulator.deliverDue();
}
