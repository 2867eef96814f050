import crypto from 'node:crypto';
import request from 'supertest';
import { extractText } from 'unpdf';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { allocateReceipt } from '../../src/insight/receipts-store.ts';
import { booksViolations } from '../helpers/factories.ts';
import type { StripeEmulatorServer } from '@tally/stripe-emulator';
import type { TestApp } from '../helpers/app.ts';
import { payOnCheckoutPage, startStripeTestApp, type StripeTestApp } from '../helpers/stripe-app.ts';
import { BROWSER_ACCEPT } from '../auth/auth-helpers.ts';

const SELLER = { SELLER_NAME: 'Example Seller Ltd', SELLER_ADDRESS: '1 Main Street; 75001 Paris; France', SELLER_TAX_ID: 'FR12345678901' };
let app: StripeTestApp;
let ta: TestApp;
let emulator: StripeEmulatorServer;

beforeAll(async () => {
  app = await startStripeTestApp({ env: SELLER });
  ({ ta, emulator } = app);
});
afterEach(async () => {
  expect(await booksViolations(ta.t.db)).toEqual([]);
});
afterAll(async () => {
  await app.close();
});

async function signup(name = 'Buyer') {
  const agent = request.agent(ta.app);
  const email = `buyer-${crypto.randomBytes(4).toString('hex')}@example.test`;
  const res = await agent.post('/api/auth/signup').send({ email, password: 'correct horse battery staple', name }).expect(201);
  return { agent, user: res.body.user as { id: string; email: string } };
}

async function admin() {
  const a = await signup('Ada Admin');
  await ta.t.db('users').where({ id: a.user.id }).update({ role: 'admin' });
  return a;
}

async function buy(agent: request.Agent, packageId = 'starter') {
  const checkout = await agent.post('/api/payments/checkout').send({ packageId }).expect(201);
  await payOnCheckoutPage(emulator, checkout.body.sessionId, '4242 4242 4242 4242', 'Buyer').expect(303);
  await emulator.emulator.deliverDue();
  return checkout.body.paymentId as string;
}

async function pdfText(buf: Buffer): Promise<string> {
  const { text } = await extractText(new Uint8Array(buf), { mergePages: true });
  return text as string;
}

describe('receipts', () => {
  it('the PDF receipt carries the seller, a receipt number, date, pack, credits, amount, card and refunds; the HTML receipt the same', async () => {
    const { agent, user } = await signup('Bea Buyer');
    const paymentId = await buy(agent, 'professional'); // $20.00 for 500 + 25 bonus
    const boss = await admin();
    await boss.agent.post(`/api/admin/payments/${paymentId}/refunds`).send({ amountCents: 500 }).expect(201);
    await emulator.emulator.deliverDue();

    const row = await ta.t.db('receipts').where({ payment_id: paymentId }).first();
    expect(row).toBeDefined(); // numbered when the payment was fulfilled
    const number = String(row.number).padStart(6, '0');
    const paidAt = (await ta.t.db('payments').where({ id: paymentId }).first('paid_at')).paid_at as Date;
    const date = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeZone: 'UTC' }).format(paidAt);

    const res = await agent.get(`/api/payments/${paymentId}/receipt.pdf`).buffer(true).parse((r, cb) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => cb(null, Buffer.concat(chunks)));
    }).expect(200);
    expect(res.headers['content-type']).toBe('application/pdf');
    expect(res.headers['content-disposition']).toContain(`receipt-${number}.pdf`);
    const body = res.body as Buffer;
    expect(body.subarray(0, 5).toString()).toBe('%PDF-');
    const text = await pdfText(body);
    for (const expected of ['Example Seller Ltd', '1 Main Street', '75001 Paris', 'Tax ID: FR12345678901', `Receipt no. ${number}`, date, 'Bea Buyer', user.email, 'Professional', '500 + 25 bonus', '$20.00', 'Visa ending in 4242', '$5.00', 'Net paid', '$15.00']) {
      expect(text).toContain(expected);
    }

    const html = await agent.get(`/account/payments/${paymentId}`).set('Accept', BROWSER_ACCEPT).expect(200);
    for (const expected of ['Example Seller Ltd', '1 Main Street', 'Tax ID: FR12345678901', `data-testid="receipt-number">${number}<`, date, 'Professional', '$20.00', 'Visa ending in 4242', '$5.00']) {
      expect(html.text).toContain(expected);
    }
    expect(html.text).toContain(`href="/api/payments/${paymentId}/receipt.pdf?download"`);

    // Not the buyer's → 404; an unpaid checkout has no receipt; a bad id names the field.
    const other = await signup();
    await other.agent.get(`/api/payments/${paymentId}/receipt.pdf`).expect(404);
    const open = await agent.post('/api/payments/checkout').send({ packageId: 'starter' }).expect(201);
    await agent.get(`/api/payments/${open.body.paymentId}/receipt.pdf`).expect(404);
    expect((await agent.get('/api/payments/not-a-uuid/receipt.pdf').expect(400)).body.errors[0].field).toBe('params.id');
    // Viewing again keeps the number.
    await agent.get(`/api/payments/${paymentId}/receipt.pdf`).expect(200);
    expect((await ta.t.db('receipts').where({ payment_id: paymentId }).first()).number).toBe(row.number);
  });

  it('receipt numbers are gapless under concurrency: racing issuers, repeats and rolled-back allocations', async () => {
    const { user } = await signup();
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const [p] = await ta.t
        .db('payments')
        .insert({ user_id: user.id, package_id: 'starter', status: 'paid', credits_millicredits: 100_000, bonus_millicredits: 0, amount_cents: 500, currency: 'usd', paid_at: new Date() })
        .returning('id');
      ids.push(p.id);
    }
    const before = (await ta.t.db('receipt_counter').first()).last_number as number;
    const { receipts } = ta.deps.insight;
    const rolledBack = async (id: string) => {
      await ta.t.db
        .transaction(async (trx) => {
          await allocateReceipt(trx, id, new Date());
          throw new Error('rolled back after taking a number');
        })
        .catch(() => {});
    };
    // Every payment twice at once, and a rollback racing each of the first ten.
    await Promise.all([...ids.map((id) => receipts.ensureNumber(id, new Date())), ...ids.map((id) => receipts.ensureNumber(id, new Date())), ...ids.slice(0, 10).map(rolledBack)]);
    const rows = await ta.t.db('receipts').whereIn('payment_id', ids).orderBy('number');
    expect(rows).toHaveLength(20);
    expect(rows.map((r) => r.number)).toEqual(Array.from({ length: 20 }, (_, i) => before + 1 + i));
    expect((await ta.t.db('receipt_counter').first()).last_number).toBe(before + 20);
    const all = (await ta.t.db('receipts').orderBy('number').pluck('number')) as number[];
    expect(all).toEqual(Array.from({ length: all.length }, (_, i) => i + 1));
  });
});

describe('admin reports', () => {
  /** Σ per currency straight from the payments and refunds tables. */
  async function moneyFromTables(from: Date, to: Date) {
    const { rows } = await ta.t.db.raw(
      `SELECT currency, SUM(amount_cents)::bigint AS gross FROM payments WHERE paid_at >= ? AND paid_at < ? GROUP BY currency`,
      [from, to],
    );
    const refunds = await ta.t.db.raw(
      `SELECT p.currency, SUM(r.amount_cents)::bigint AS refunds FROM payment_refunds r JOIN payments p ON p.id = r.payment_id
        WHERE r.status = 'succeeded' AND r.created_at >= ? AND r.created_at < ? GROUP BY p.currency`,
      [from, to],
    );
    return { gross: rows as Array<{ currency: string; gross: number }>, refunds: refunds.rows as Array<{ currency: string; refunds: number }> };
  }

  it('revenue, liability, breakage and funnel equal the sums of the payments and ledger rows they come from', async () => {
    const a = await signup('Ann Spender');
    const b = await signup('Bob Refund');
    const payA = await buy(a.agent, 'enterprise');
    await buy(a.agent, 'starter');
    const payB = await buy(b.agent, 'professional');
    await ta.deps.ledger.debit({ transferId: `spend-${a.user.id}`, userId: a.user.id, millicredits: 250_500, kind: 'usage', actor: 'test', reference: { type: 'task', id: crypto.randomUUID() } });
    const boss = await admin();
    await boss.agent.post(`/api/admin/payments/${payB}/refunds`).send({ amountCents: 500 }).expect(201);
    await emulator.emulator.deliverDue();
    // A bonus lot that expires: 7.5 credits of breakage.
    await ta.deps.ledger.grant({ transferId: `expiring-${b.user.id}`, userId: b.user.id, millicredits: 7_500, kind: 'bonus', actor: 'test', expiresAt: new Date(Date.now() + 500) });
    await new Promise((r) => setTimeout(r, 600));
    await ta.deps.ledger.expireLots(new Date(Date.now() + 1000));

    const today = new Date().toISOString().slice(0, 10);
    const revenue = (await boss.agent.get(`/api/admin/reports/revenue?from=${today}&to=${today}`).expect(200)).body;
    const from = new Date(revenue.from);
    const to = new Date(revenue.to);
    const tables = await moneyFromTables(from, to);
    for (const t of revenue.totals) {
      const gross = Number(tables.gross.find((g) => g.currency === t.currency)?.gross ?? 0);
      const refunds = Number(tables.refunds.find((g) => g.currency === t.currency)?.refunds ?? 0);
      expect(t.gross.minor).toBe(gross);
      expect(t.refunds.minor).toBe(refunds);
      expect(t.net.minor).toBe(gross - refunds);
      const series = revenue.series.filter((s: { currency: string }) => s.currency === t.currency);
      expect(series.reduce((s: number, x: { net: { minor: number } }) => s + x.net.minor, 0)).toBe(t.net.minor);
      const products = revenue.byProduct.filter((p: { currency: string }) => p.currency === t.currency);
      expect(products.reduce((s: number, x: { gross: { minor: number } }) => s + x.gross.minor, 0)).toBe(t.gross.minor);
    }
    expect(revenue.byProduct.find((p: { id: string }) => p.id === 'professional')).toMatchObject({ name: 'Professional', type: 'pack' });

    const liability = (await boss.agent.get('/api/admin/reports/liability').expect(200)).body;
    const now = new Date(liability.at);
    // Outstanding = every unexpired lot remainder; with what expired unswept and minus debt it is the users' posted balances.
    const lots = await ta.t.db.raw(`SELECT source, SUM(remaining)::bigint AS r FROM lots WHERE remaining > 0 AND (expires_at IS NULL OR expires_at > ?) GROUP BY source`, [now]);
    for (const s of liability.outstandingBySource) {
      expect(Math.round(s.credits * 1000)).toBe(Number((lots.rows as Array<{ source: string; r: number }>).find((x) => x.source === s.source)!.r));
    }
    const posted = await ta.t.db.raw(
      `SELECT COALESCE(SUM(CASE WHEN a.code IS NULL AND t.credit_account_id = a.id THEN t.amount ELSE 0 END), 0)
            - COALESCE(SUM(CASE WHEN a.code IS NULL AND t.debit_account_id = a.id THEN t.amount ELSE 0 END), 0) AS b
         FROM transfers t JOIN accounts a ON a.id IN (t.credit_account_id, t.debit_account_id)`,
    );
    const fromTransfers = Number((posted.rows[0] as { b: string }).b);
    expect(Math.round((liability.outstandingCredits + liability.expiredUnsweptCredits - liability.debtCredits) * 1000)).toBe(fromTransfers);
    // Deferred revenue: each purchase's unspent purchase and bonus credits at the price paid per credit.
    const payLots = await ta.t.db.raw(
      `SELECT p.id, p.amount_cents, p.credits_millicredits + p.bonus_millicredits AS sold, l.remaining
         FROM payments p JOIN lots l ON l.transfer_id IN ('purchase:' || p.id, 'purchase_bonus:' || p.id)
        WHERE l.remaining > 0 AND (l.expires_at IS NULL OR l.expires_at > ?)`,
      [now],
    );
    const expectedValue = (payLots.rows as Array<{ amount_cents: number; sold: number; remaining: number }>).reduce((s, r) => s + Math.round((r.remaining * r.amount_cents) / r.sold), 0);
    const usd = liability.deferredRevenue.find((d: { currency: string }) => d.currency === 'usd');
    expect(usd.value.minor).toBe(expectedValue);
    // Bob's Professional pack, a quarter refunded and nothing spent, is still worth the $15.00 he kept paid.
    const bob = (payLots.rows as Array<{ id: string; amount_cents: number; sold: number; remaining: number }>).filter((r) => r.id === payB);
    expect(bob.reduce((s, r) => s + Math.round((r.remaining * r.amount_cents) / r.sold), 0)).toBe(1500);
    expect(payA).toBeTruthy();

    const breakage = (await boss.agent.get('/api/admin/reports/breakage?granularity=month').expect(200)).body;
    const expiry = await ta.t.db.raw(`SELECT COALESCE(SUM(amount), 0)::bigint AS s FROM transfers WHERE kind = 'expiry' AND created_at >= ? AND created_at < ?`, [breakage.from, breakage.to]);
    expect(Math.round(breakage.totalCredits * 1000)).toBe(Number((expiry.rows[0] as { s: number }).s));
    expect(breakage.totals.find((t: { source: string }) => t.source === 'bonus').credits).toBeGreaterThanOrEqual(7.5);

    const funnel = (await boss.agent.get(`/api/admin/reports/funnel?from=${today}&to=${today}`).expect(200)).body;
    const users = await ta.t.db('users').where('created_at', '>=', from).where('created_at', '<', to).pluck('id');
    const buyers = await ta.t.db('payments').whereIn('user_id', users).whereNotNull('paid_at').countDistinct({ n: 'user_id' });
    expect(funnel.signups).toBe(users.length);
    expect(funnel.firstPurchase).toBe(Number(buyers[0]!.n));
    expect(funnel.conversion.signupToPurchase).toBe(Math.round((funnel.firstPurchase / funnel.signups) * 1000) / 10);
    const usdFunnel = funnel.perCurrency.find((c: { currency: string }) => c.currency === 'usd');
    expect(usdFunnel.net.minor).toBe(revenue.totals.find((t: { currency: string }) => t.currency === 'usd').net.minor);
    expect(usdFunnel.arppu.minor).toBe(Math.round(usdFunnel.net.minor / usdFunnel.payingUsers));
    expect(funnel.topUsers[0].paid.minor).toBeGreaterThanOrEqual(funnel.topUsers.at(-1).paid.minor);
    expect(funnel.topUsers.find((u: { email: string }) => u.email === a.user.email).paid.minor).toBe(6500);
  });

  it('the page and the CSV exports are for admins; bad parameters name the field', async () => {
    const user = await signup();
    await user.agent.get('/api/admin/reports/revenue').expect(403);
    await user.agent.get('/admin/reports').set('Accept', BROWSER_ACCEPT).expect(403);
    const boss = await admin();
    const page = await boss.agent.get('/admin/reports').set('Accept', BROWSER_ACCEPT).expect(200);
    for (const id of ['revenue', 'liability', 'breakage', 'funnel']) expect(page.text).toContain(`id="${id}"`);
    expect(page.text).toContain('href="/admin/reports" aria-current="page"');
    const csv = await boss.agent.get('/api/admin/reports/revenue?granularity=month&format=csv').expect(200);
    expect(csv.headers['content-type']).toMatch(/^text\/csv/);
    expect(csv.text.replace(/^\uFEFF/, '').split('\n')[0]).toBe('period_start,currency,gross,refunds,net');
    for (const name of ['liability', 'breakage', 'funnel']) await boss.agent.get(`/api/admin/reports/${name}?format=csv`).expect(200);
    const bad = await boss.agent.get('/api/admin/reports/revenue?granularity=week').expect(400);
    expect(bad.body.errors[0].field).toBe('query.granularity');
    expect((await boss.agent.get('/api/admin/reports/funnel?from=2026-02-30').expect(400)).body.errors[0].field).toBe('query.from');
  });
});
