import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { down, up } from '../migrations/20261130100010_create_stripe_emulator.ts';
import { down as billingDown, up as billingUp } from '../migrations/20261130160000_create_billing.ts';
import { down as downPaymentMethods, up as upPaymentMethods } from '../migrations/20261130170100_create_payment_methods.ts';
import { formatAmount } from '../src/currency.ts';
import { canonicalJson, parseStripeForm } from '../src/stripe-form.ts';
import { emulatorPublicUrl, emulatorWebhookUrl } from '../src/stripe-emulator.ts';
import { StripeApiError } from '../src/stripe-errors.ts';
import { luhnValid, validateCardForm } from '../src/test-cards.ts';
import { resolveEmulatorWebhookSecret } from '../src/webhook-secret.ts';
import { createTestDatabase } from '../../../test/helpers/db.ts';

describe('Stripe form encoding', () => {
  it('nests brackets, reads indexed and pushed arrays, and decodes values', () => {
    const form = parseStripeForm(
      'mode=payment&line_items[0][price_data][unit_amount]=500&line_items[0][price_data][product_data][name]=A%20pack&metadata[paymentId]=p1&expand[]=a&expand[]=b&success_url=http%3A%2F%2Fx%2F%3Fid%3D%7BCHECKOUT_SESSION_ID%7D',
    );
    expect(JSON.parse(JSON.stringify(form))).toEqual({
      mode: 'payment',
      line_items: { '0': { price_data: { unit_amount: '500', product_data: { name: 'A pack' } } } },
      metadata: { paymentId: 'p1' },
      expand: ['a', 'b'],
      success_url: 'http://x/?id={CHECKOUT_SESSION_ID}',
    });
  });

  it('treats __proto__ as a plain key', () => {
    const form = parseStripeForm('metadata[__proto__]=x');
    expect(Object.keys(form.metadata as object)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  it('refuses a key used both as a value and as an object', () => {
    expect(() => parseStripeForm('a=1&a[b]=2')).toThrow(StripeApiError);
  });

  it('hashes equal params equally whatever their order', () => {
    expect(canonicalJson(parseStripeForm('a=1&b[c]=2'))).toBe(canonicalJson(parseStripeForm('b[c]=2&a=1')));
  });
});

describe('card form', () => {
  it('checks the Luhn digit', () => {
    expect(luhnValid('4242424242424242')).toBe(true);
    expect(luhnValid('4242424242424241')).toBe(false);
  });

  it('accepts spaces and several expiry formats, and keeps only brand, last4 and expiry', () => {
    const now = new Date('2026-11-21T00:00:00Z');
    for (const expiry of ['12 / 34', '12/34', '1234', '12/2034']) {
      const r = validateCardForm(
        { email: 'a@b.co', cardNumber: '4242 4242 4242 4242', cardExpiry: expiry, cardCvc: '123', billingName: 'A' },
        { now, emailRequired: true, fallbackEmail: null },
      );
      expect(r.ok && r.card.details).toMatchObject({ brand: 'visa', last4: '4242', exp_month: 12, exp_year: 2034 });
    }
  });
});

describe('amounts', () => {
  it('formats minor units per currency without floating point', () => {
    expect(formatAmount(2050, 'usd')).toBe('$20.50');
    expect(formatAmount(500, 'jpy')).toBe('¥500');
    expect(formatAmount(99_999_999, 'eur')).toBe('€999,999.99');
  });
});

describe('webhook secret shared by the app and the emulator', () => {
  it('uses STRIPE_WEBHOOK_SECRET when set', () => {
    expect(resolveEmulatorWebhookSecret({ dataDir: '/nonexistent', stripe: { webhookSecret: 'whsec_fixed' } })).toBe('whsec_fixed');
  });

  it('otherwise generates one whsec_ secret in the data dir and returns it on every call', () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-whsec-'));
    try {
      const a = resolveEmulatorWebhookSecret({ dataDir, stripe: { webhookSecret: undefined } });
      const b = resolveEmulatorWebhookSecret({ dataDir, stripe: { webhookSecret: undefined } });
      expect(a).toMatch(/^whsec_[A-Za-z0-9]{32}$/);
      expect(b).toBe(a);
      const file = path.join(dataDir, 'stripe-webhook-secret');
      expect(fs.statSync(file).mode & 0o777).toBe(0o600);
      expect(fs.readdirSync(dataDir)).toEqual(['stripe-webhook-secret']);
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('emulator URLs from config', () => {
  it('uses the app host on the emulator port, and the app webhook route', () => {
    const config = { appUrl: 'http://localhost:3000', stripe: { emulatorPort: 12111 } };
    expect(emulatorPublicUrl(config)).toBe('http://localhost:12111');
    expect(emulatorWebhookUrl(config)).toBe('http://localhost:3000/api/payments/webhook');
  });
});

describe('migration', () => {
  it('goes down and up again cleanly', async () => {
    const t = await createTestDatabase();
    try {
      const count = async (where: string) =>
        (await t.db.raw(`SELECT count(*)::int AS n FROM information_schema.tables WHERE ${where} AND table_name NOT LIKE 'knex\\_%'`)).rows[0].n;
      // Its own schema, none in the application's.
      expect(await count(`table_schema = 'stripe_emulator'`)).toBe(11);
      expect(await count(`table_schema = 'public' AND table_name LIKE 'stripe\\_emulator\\_%'`)).toBe(0);
      // Later migrations go down first: saved cards (issue 14), then Billing (issue 15).
      await downPaymentMethods(t.db);
      expect(await count(`table_schema = 'stripe_emulator'`)).toBe(10);
      await billingDown(t.db);
      expect(await count(`table_schema = 'stripe_emulator'`)).toBe(9);
      await down(t.db);
      expect(await count(`table_schema = 'stripe_emulator'`)).toBe(0);
      await up(t.db);
      expect(await count(`table_schema = 'stripe_emulator'`)).toBe(9);
      await billingUp(t.db);
      expect(await count(`table_schema = 'stripe_emulator'`)).toBe(10);
      await upPaymentMethods(t.db);
      expect(await count(`table_schema = 'stripe_emulator'`)).toBe(11);
    } finally {
      await t.drop();
    }
  });

  it('refuses refunding more than a charge, in the database itself', async () => {
    const t = await createTestDatabase();
    try {
      const now = new Date();
      await t.db('stripe_emulator.payment_intents').insert({
        id: 'pi_1', created: now, amount: 100, currency: 'usd', status: 'requires_payment_method', client_secret: 's',
      });
      await t.db('stripe_emulator.charges').insert({
        id: 'ch_1', created: now, payment_intent_id: 'pi_1', amount: 100, currency: 'usd', status: 'succeeded',
        payment_method_id: 'pm_1', card: '{}', billing_details: '{}', outcome: '{}',
      });
      await expect(t.db('stripe_emulator.charges').where({ id: 'ch_1' }).update({ amount_refunded: 101 })).rejects.toThrow(/refunded_range/);
    } finally {
      await t.drop();
    }
  });
});
