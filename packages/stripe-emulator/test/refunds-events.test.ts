import Stripe from 'stripe';
import { describe, expect, it } from 'vitest';
import type { StripeEmulatorServer } from '../src/stripe-emulator.ts';
import { useEmulatorServer } from './emulator-server.ts';

let server: StripeEmulatorServer;
let stripe: Stripe;

useEmulatorServer('sk_test_refunds', (env) => ({ server, stripe } = env));

/** Creates a session for `amount` cents and pays it with 4242 on the checkout page. */
async function paidSession(amount = 2000): Promise<{ session: Stripe.Checkout.Session; paymentIntentId: string; chargeId: string }> {
  const s = await stripe.checkout.sessions.create({
    mode: 'payment',
    line_items: [{ price_data: { currency: 'usd', unit_amount: amount, product_data: { name: 'Credits' } }, quantity: 1 }],
    success_url: 'http://localhost:3000/ok?id={CHECKOUT_SESSION_ID}',
  });
  const res = await fetch(`${server.url}/c/pay/${s.id}`, {
    method: 'POST',
    redirect: 'manual',
    body: new URLSearchParams({ email: 'b@example.com', cardNumber: '4242424242424242', cardExpiry: '12/34', cardCvc: '123', billingName: 'B' }),
  });
  expect(res.status).toBe(303);
  const session = await stripe.checkout.sessions.retrieve(s.id, { expand: ['payment_intent'] });
  const pi = session.payment_intent as Stripe.PaymentIntent;
  return { session, paymentIntentId: pi.id, chargeId: pi.latest_charge as string };
}

describe('refunds', () => {
  it('refunds everything by payment intent when no amount is given; a second refund is refused', async () => {
    const { paymentIntentId, chargeId } = await paidSession(2000);
    const refund = await stripe.refunds.create({ payment_intent: paymentIntentId, reason: 'requested_by_customer', metadata: { by: 'admin' } });
    expect(refund.id).toMatch(/^re_/);
    expect(refund).toMatchObject({
      object: 'refund',
      amount: 2000,
      currency: 'usd',
      charge: chargeId,
      payment_intent: paymentIntentId,
      status: 'succeeded',
      reason: 'requested_by_customer',
      metadata: { by: 'admin' },
    });
    expect(await stripe.refunds.retrieve(refund.id)).toEqual(refund);
    expect(await stripe.charges.retrieve(chargeId)).toMatchObject({ amount_refunded: 2000, refunded: true, paid: true });

    const again = await stripe.refunds.create({ payment_intent: paymentIntentId }).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(again).toMatchObject({ code: 'charge_already_refunded', message: `Charge ${chargeId} has already been refunded.` });
  });

  it('refunds partially by charge, refuses more than is left, then refunds the rest', async () => {
    const { chargeId, paymentIntentId } = await paidSession(2000);
    await stripe.refunds.create({ charge: chargeId, amount: 500 });
    await stripe.refunds.create({ charge: chargeId, amount: 700 });
    expect(await stripe.charges.retrieve(chargeId)).toMatchObject({ amount_refunded: 1200, refunded: false });

    const over = await stripe.refunds.create({ charge: chargeId, amount: 900 }).catch((e: unknown) => e);
    expect(over).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(over).toMatchObject({
      statusCode: 400,
      code: 'amount_too_large',
      param: 'amount',
      message: 'Refund amount ($9.00) is greater than unrefunded amount on charge ($8.00)',
    });

    const rest = await stripe.refunds.create({ payment_intent: paymentIntentId });
    expect(rest.amount).toBe(800);
    expect(await stripe.charges.retrieve(chargeId)).toMatchObject({ amount_refunded: 2000, refunded: true });

    const byCharge = await stripe.refunds.list({ charge: chargeId });
    expect(byCharge.data.map((r) => r.amount)).toEqual([800, 700, 500]);
    const byPi = await stripe.refunds.list({ payment_intent: paymentIntentId, limit: 2 });
    expect(byPi).toMatchObject({ object: 'list', url: '/v1/refunds', has_more: true });

    const events = await stripe.events.list({ type: 'charge.refunded', limit: 100 });
    const mine = events.data.filter((e) => (e.data.object as Stripe.Charge).id === chargeId).reverse();
    expect(mine.map((e) => [(e.data.object as Stripe.Charge).amount_refunded, (e.data.object as Stripe.Charge).refunded])).toEqual([
      [500, false],
      [1200, false],
      [2000, true],
    ]);
    expect(mine[2]!.data.previous_attributes).toEqual({ amount_refunded: 1200, refunded: false });
  });

  it('never refunds more than the charge when refunds race', async () => {
    const { chargeId } = await paidSession(2000);
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => stripe.refunds.create({ charge: chargeId, amount: 500 })));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(4);
    expect(await stripe.charges.retrieve(chargeId)).toMatchObject({ amount_refunded: 2000, refunded: true });
  });

  it('refuses a payment intent without a successful charge, and unknown objects', async () => {
    const s = await stripe.checkout.sessions.create({
      mode: 'payment',
      line_items: [{ price_data: { currency: 'usd', unit_amount: 1000, product_data: { name: 'x' } }, quantity: 1 }],
    });
    await fetch(`${server.url}/c/pay/${s.id}`, {
      method: 'POST',
      redirect: 'manual',
      body: new URLSearchParams({ email: 'b@example.com', cardNumber: '4000000000000002', cardExpiry: '12/34', cardCvc: '123', billingName: 'B' }),
    });
    const pi = (await stripe.checkout.sessions.retrieve(s.id)).payment_intent as string;
    expect(await stripe.refunds.create({ payment_intent: pi }).catch((e: unknown) => e)).toMatchObject({
      param: 'payment_intent',
      message: `This PaymentIntent (${pi}) does not have a successful charge to refund.`,
    });
    expect(await stripe.refunds.create({ charge: 'ch_nope' }).catch((e: unknown) => e)).toMatchObject({
      statusCode: 400,
      code: 'resource_missing',
      param: 'charge',
    });
    expect(await stripe.refunds.create({}).catch((e: unknown) => e)).toMatchObject({ code: 'parameter_missing' });
    expect(await stripe.refunds.create({ charge: 'ch_x', amount: 0 }).catch((e: unknown) => e)).toMatchObject({ param: 'amount' });
    expect(await stripe.refunds.retrieve('re_nope').catch((e: unknown) => e)).toMatchObject({ statusCode: 404 });
  });
});

describe('events', () => {
  it('records API-triggered events with their request id and idempotency key', async () => {
    const { chargeId } = await paidSession(1000);
    const refund = await stripe.refunds.create({ charge: chargeId }, { idempotencyKey: 'refund-key-1' });
    const events = await stripe.events.list({ type: 'refund.created', limit: 5 });
    const ev = events.data.find((e) => (e.data.object as Stripe.Refund).id === refund.id)!;
    expect(ev).toMatchObject({ object: 'event', livemode: false, api_version: Stripe.API_VERSION, pending_webhooks: 0 });
    expect(ev.id).toMatch(/^evt_/);
    expect(ev.request).toEqual({ id: refund.lastResponse.requestId, idempotency_key: 'refund-key-1' });
    expect(await stripe.events.retrieve(ev.id)).toEqual(ev);
    expect(await stripe.events.retrieve('evt_nope').catch((e: unknown) => e)).toMatchObject({ statusCode: 404, code: 'resource_missing' });
  });

  it('filters by type (exact, wildcard, or several) and paginates newest first', async () => {
    for (let i = 0; i < 3; i++) await paidSession(1000 + i);
    const completed = await stripe.events.list({ type: 'checkout.session.completed', limit: 100 });
    expect(completed.data.length).toBeGreaterThanOrEqual(3);
    expect(completed.data.every((e) => e.type === 'checkout.session.completed')).toBe(true);
    const created = completed.data.map((e) => e.created);
    expect([...created].sort((a, b) => b - a)).toEqual(created);

    const charges = await stripe.events.list({ type: 'charge.*', limit: 100 });
    expect(new Set(charges.data.map((e) => e.type))).toEqual(new Set(['charge.succeeded', 'charge.refunded', 'charge.failed']));

    const several = await stripe.events.list({ types: ['payment_intent.succeeded', 'checkout.session.completed'], limit: 100 });
    expect(new Set(several.data.map((e) => e.type))).toEqual(new Set(['payment_intent.succeeded', 'checkout.session.completed']));

    const page1 = await stripe.events.list({ type: 'checkout.session.completed', limit: 2 });
    expect(page1.has_more).toBe(true);
    const page2 = await stripe.events.list({ type: 'checkout.session.completed', limit: 2, starting_after: page1.data[1]!.id });
    expect(page2.data[0]!.id).toBe(completed.data[2]!.id);
    const back = await stripe.events.list({ type: 'checkout.session.completed', limit: 2, ending_before: page2.data[0]!.id });
    expect(back.data.map((e) => e.id)).toEqual(page1.data.map((e) => e.id));

    const all: string[] = [];
    for await (const e of stripe.events.list({ type: 'checkout.session.completed', limit: 2 })) all.push(e.id);
    expect(all).toEqual(completed.data.map((e) => e.id));
  });

  it('rejects unknown list parameters and bad cursors', async () => {
    expect(await stripe.events.list({ delivery_success: true }).catch((e: unknown) => e)).toMatchObject({
      code: 'parameter_unknown',
      param: 'delivery_success',
    });
    expect(await stripe.events.list({ limit: 101 }).catch((e: unknown) => e)).toMatchObject({ param: 'limit' });
    expect(await stripe.events.list({ starting_after: 'evt_nope' }).catch((e: unknown) => e)).toMatchObject({
      code: 'resource_missing',
      param: 'starting_after',
    });
  });
});
