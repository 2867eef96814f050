import http from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { startStripeEmulatorServer, type StripeEmulatorServer } from '@tally/stripe-emulator';
import { createLogger } from '../../src/logger.ts';
import { createStripeClient } from '../../src/payments/stripe-client.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';

const SECRET = 'whsec_test_secret';

/** The app on a real HTTP port with the Stripe emulator delivering its webhooks to it (on demand). */
export async function buildEmulatedApp(env: Record<string, string> = {}): Promise<{ ta: TestApp; emulator: StripeEmulatorServer; close(): Promise<void> }> {
  const server = http.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const appUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let emulator!: StripeEmulatorServer;
  const ta = await buildTestApp({
    env: { APP_URL: appUrl, STRIPE_WEBHOOK_SECRET: SECRET, ...env },
    overrides: async (t, config) => {
      emulator = await startStripeEmulatorServer({
        db: t.db,
        logger: createLogger('silent', { pretty: false }),
        port: 0,
        webhook: { url: `${appUrl}/api/payments/webhook`, secret: SECRET },
        deliver: false,
        retry: { baseMs: 10, maxAttempts: 5 },
      });
      return { stripe: createStripeClient(config, emulator.url) };
    },
  });
  server.on('request', ta.app);
  return {
    ta,
    emulator,
    async close() {
      await emulator.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await ta.close();
    },
  };
}

/** Buys a pack as the agent's user: Checkout, the emulator's hosted page with `card`, then the webhooks. */
export async function buyPack(env: { emulator: StripeEmulatorServer }, agent: ReturnType<typeof request.agent>, card = '4242 4242 4242 4242', packageId = 'starter', extra: Record<string, unknown> = {}) {
  const checkout = await agent.post('/api/payments/checkout').send({ packageId, ...extra });
  if (checkout.status !== 201) throw new Error(`checkout failed: ${checkout.status} ${JSON.stringify(checkout.body)}`);
  await request(env.emulator.emulator.app)
    .post(`/c/pay/${checkout.body.sessionId}`)
    .type('form')
    .send({ email: 'buyer@example.test', cardNumber: card, cardExpiry: '12 / 34', cardCvc: '123', billingName: 'Buyer' })
    .expect(303);
  await env.emulator.emulator.deliverDue();
  return checkout.body as { paymentId: string; sessionId: string };
}

/** Refunds a payment in full as an admin agent, and delivers the `charge.refunded` webhook. */
export async function refundPayment(env: { emulator: StripeEmulatorServer }, adminAgent: ReturnType<typeof request.agent>, paymentId: string) {
  await adminAgent.post(`/api/admin/payments/${paymentId}/refunds`).send({}).expect(201);
  await env.emulator.emulator.deliverDue();
}
