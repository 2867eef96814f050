import Stripe from 'stripe';
import { describe, expect, it } from 'vitest';
import type { StripeEmulatorServer } from '../src/stripe-emulator.ts';
import { useEmulatorServer } from './emulator-server.ts';

let server: StripeEmulatorServer;
let stripe: Stripe;

useEmulatorServer('sk_test_offsession', (env) => ({ server, stripe } = env));

async function savedCard(number: string) {
  const customer = await stripe.customers.create({ email: 'saver@example.com' });
  const pm = await stripe.paymentMethods.create({ type: 'card', card: { number, exp_month: 12, exp_year: 2034, cvc: '123' } });
  await stripe.paymentMethods.attach(pm.id, { customer: customer.id });
  return { customer, pm };
}

async function eventTypesFor(paymentIntentId: string): Promise<string[]> {
  const events = await stripe.events.list({ limit: 100 });
  return events.data.filter((e) => (e.data.object as { id?: string; payment_intent?: string }).id === paymentIntentId || (e.data.object as { payment_intent?: string }).payment_intent === paymentIntentId).map((e) => e.type).reverse();
}

const charge = (customer: string, pm: string) =>
  stripe.paymentIntents.create({ amount: 500, currency: 'usd', customer, payment_method: pm, off_session: true, confirm: true, metadata: { purpose: 'auto_recharge' } });

describe('saved cards', () => {
  it('attaches, lists and detaches a card in Stripe’s shapes', async () => {
    const { customer, pm } = await savedCard('4242424242424242');
    expect(pm).toMatchObject({ object: 'payment_method', type: 'card', card: { brand: 'visa', last4: '4242', exp_month: 12, exp_year: 2034 } });
    const list = await stripe.paymentMethods.list({ customer: customer.id, type: 'card' });
    expect(list.data.map((m) => m.id)).toEqual([pm.id]);
    const detached = await stripe.paymentMethods.detach(pm.id);
    expect(detached.customer).toBeNull();
    expect((await stripe.paymentMethods.list({ customer: customer.id })).data).toEqual([]);
  });
});

describe('off-session PaymentIntents with the test cards', () => {
  it('4242 succeeds: payment_intent.succeeded with a charge', async () => {
    const { customer, pm } = await savedCard('4242424242424242');
    const pi = await charge(customer.id, pm.id);
    expect(pi).toMatchObject({ status: 'succeeded', amount_received: 500, customer: customer.id, payment_method: pm.id, metadata: { purpose: 'auto_recharge' } });
    expect(await eventTypesFor(pi.id)).toEqual(['payment_intent.created', 'charge.succeeded', 'payment_intent.succeeded']);
  });

  it.each([
    ['4000000000009995', 'card_declined', 'insufficient_funds'],
    ['4000000000000002', 'card_declined', 'generic_decline'],
  ])('%s is declined off-session with 402 %s/%s; the PaymentIntent is kept', async (number, code, declineCode) => {
    const { customer, pm } = await savedCard(number);
    const err = (await charge(customer.id, pm.id).catch((e: unknown) => e)) as Stripe.errors.StripeCardError;
    expect(err).toBeInstanceOf(Stripe.errors.StripeCardError);
    expect(err).toMatchObject({ statusCode: 402, code, decline_code: declineCode });
    const pi = err.payment_intent!;
    expect(pi.status).toBe('requires_payment_method');
    const kept = await stripe.paymentIntents.retrieve(pi.id);
    expect(kept.last_payment_error).toMatchObject({ code, decline_code: declineCode });
    expect(await eventTypesFor(pi.id)).toEqual(['payment_intent.created', 'charge.failed', 'payment_intent.payment_failed']);
  });

  it('4000 0027 6000 3184 needs authentication: 402 authentication_required, nothing charged', async () => {
    const { customer, pm } = await savedCard('4000002760003184');
    const err = (await charge(customer.id, pm.id).catch((e: unknown) => e)) as Stripe.errors.StripeCardError;
    expect(err).toMatchObject({ statusCode: 402, code: 'authentication_required' });
    expect(err.payment_intent).toMatchObject({ status: 'requires_payment_method', latest_charge: null, amount_received: 0 });
  });

  it('accepts Stripe’s test PaymentMethod ids (pm_card_visa) and replays an Idempotency-Key', async () => {
    const customer = await stripe.customers.create({ email: 'ids@example.com' });
    const pm = await stripe.paymentMethods.attach('pm_card_visa', { customer: customer.id });
    const a = await stripe.paymentIntents.create({ amount: 700, currency: 'usd', customer: customer.id, payment_method: pm.id, off_session: true, confirm: true }, { idempotencyKey: 'recharge-1' });
    const b = await stripe.paymentIntents.create({ amount: 700, currency: 'usd', customer: customer.id, payment_method: pm.id, off_session: true, confirm: true }, { idempotencyKey: 'recharge-1' });
    expect(b.id).toBe(a.id);
    expect(a.status).toBe('succeeded');
  });
});
