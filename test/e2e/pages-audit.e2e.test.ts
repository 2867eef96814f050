import fs from 'node:fs';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { expectVisibleFocus, launchBrowser, newUser, pageProblems, screenshot, tabTo } from './browser.ts';

/**
 * Every page in every state a person meets, checked the same way: axe-core (WCAG 2.2 A/AA and
 * best practices) with zero violations, no page wider than its viewport, header controls and table
 * dates on one line, scrollable tables focusable. Signed out, signed in and as an admin; light and
 * dark; 1280 and 390 px wide.
 */

const baseUrl = inject('baseUrl');
const LINN = path.join(process.cwd(), 'test/fixtures/documents/linn.png');

type Role = 'visitor' | 'user' | 'poor' | 'admin';
interface Target {
  role: Role;
  name: string;
  url: string;
}

let browser: Browser;
const states: Partial<Record<Role, Awaited<ReturnType<BrowserContext['storageState']>>>> = {};
const targets: Target[] = [];
let receiptPaymentId = '';

/** Polls `read` until it returns `want` (beforeAll cannot use expect.poll). */
async function waitFor<T>(read: () => Promise<T>, want: T, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await read();
    if (last === want) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`waited for ${String(want)}, last saw ${String(last)}`);
}

async function json(res: { json(): Promise<unknown> }): Promise<any> {
  return res.json();
}

/** Pays an open emulator checkout with 4242… in the given page and waits for the success page. */
async function pay(page: Page, checkoutUrl: string): Promise<string> {
  await page.goto(checkoutUrl);
  const email = page.getByLabel('Email');
  if (await email.isEditable()) await email.fill('buyer@example.test');
  await page.getByLabel('Card number').fill('4242 4242 4242 4242');
  await page.getByLabel(/^Expir/).fill('12 / 34');
  await page.getByLabel(/CVC/).fill('123');
  await page.getByLabel('Name on card').fill('Ada Lovelace');
  await Promise.all([page.waitForURL(/\/checkout\/success/), page.getByRole('button', { name: /^Pay / }).click()]);
  return page.url();
}

beforeAll(async () => {
  browser = await launchBrowser();

  // A user with a paid, an open and an expired checkout, and a finished OCR task.
  const userContext = await browser.newContext();
  const api = userContext.request;
  const user = newUser('audit');
  expect((await api.post(`${baseUrl}/api/auth/signup`, { data: user })).status()).toBe(201);
  const userPage = await userContext.newPage();
  const paid = await json(await api.post(`${baseUrl}/api/payments/checkout`, { data: { packageId: 'starter' } }));
  const successUrl = await pay(userPage, paid.checkoutUrl);
  const open = await json(await api.post(`${baseUrl}/api/payments/checkout`, { data: { packageId: 'professional' } }));
  const expiring = await json(await api.post(`${baseUrl}/api/payments/checkout`, { data: { packageId: 'starter' } }));
  const emulator = new URL(expiring.checkoutUrl).origin;
  const expired = await fetch(`${emulator}/v1/checkout/sessions/${expiring.sessionId}/expire`, { method: 'POST', headers: { Authorization: 'Bearer sk_test_e2e' } });
  expect(expired.status).toBe(200);
  const task = await json(
    await api.post(`${baseUrl}/api/tasks`, { multipart: { file: { name: 'linn.png', mimeType: 'image/png', buffer: fs.readFileSync(LINN) } } }),
  );
  const staged = await json(
    await api.post(`${baseUrl}/api/tasks/uploads`, { multipart: { file: { name: 'a-scan-with-a-rather-long-file-name-2026.png', mimeType: 'image/png', buffer: fs.readFileSync(LINN) } } }),
  );
  // Teams and keys (issue 16): a team funded by a contribution, a job paid by its pool (the usage
  // chart and history), an upload waiting to be confirmed on the pool, and an API key.
  const BLANK = fs.readFileSync(path.join(process.cwd(), 'test/fixtures/documents/trivial.pdf'));
  const team = (await json(await api.post(`${baseUrl}/api/teams`, { data: { name: 'Audit Scanning' } }))).team;
  expect((await api.post(`${baseUrl}/api/teams/${team.id}/contributions`, { data: { credits: 5 } })).status()).toBe(201);
  const teamTask = await json(
    await api.post(`${baseUrl}/api/tasks`, { multipart: { wallet: `team:${team.id}`, file: { name: 'team-scan.pdf', mimeType: 'application/pdf', buffer: BLANK } } }),
  );
  const teamStaged = await json(
    await api.post(`${baseUrl}/api/tasks/uploads`, { multipart: { wallet: `team:${team.id}`, file: { name: 'team-next.pdf', mimeType: 'application/pdf', buffer: BLANK } } }),
  );
  expect((await api.post(`${baseUrl}/api/keys`, { data: { name: 'Nightly import', teamId: team.id, scopes: ['tasks:read', 'tasks:write'] } })).status()).toBe(201);
  await waitFor(async () => (await json(await api.get(`${baseUrl}/api/tasks/${teamTask.task.id}`))).task.status, 'completed', 60_000);
  await waitFor(async () => (await json(await api.get(`${baseUrl}/api/payments/${expiring.paymentId}`))).payment.status, 'expired', 30_000);
  await waitFor(async () => (await json(await api.get(`${baseUrl}/api/tasks/${task.task.id}`))).task.status, 'completed', 120_000);
  // An export on /account/privacy (issue 19): asked for, then ready.
  expect((await api.post(`${baseUrl}/api/account/exports`)).status()).toBe(202);
  await waitFor(async () => (await json(await api.get(`${baseUrl}/api/account/exports`))).exports[0].status, 'ready', 60_000);
  states.user = await userContext.storageState();
  receiptPaymentId = paid.paymentId;
  const me = await json(await api.get(`${baseUrl}/api/auth/me`));
  await userContext.close();

  // A user one credit short of their upload: the confirm step says so, with a link to buy more.
  const poorContext = await browser.newContext();
  const poor = newUser('audit-poor');
  expect((await poorContext.request.post(`${baseUrl}/api/auth/signup`, { data: poor })).status()).toBe(201);
  const short = await json(
    await poorContext.request.post(`${baseUrl}/api/tasks/uploads`, {
      multipart: { file: { name: 'multipage.pdf', mimeType: 'application/pdf', buffer: fs.readFileSync(path.join(process.cwd(), 'test/fixtures/documents/multipage.pdf')) } },
    }),
  );
  const poorMe = await json(await poorContext.request.get(`${baseUrl}/api/auth/me`));
  // /account/privacy with an erasure scheduled (issue 19)
  expect((await poorContext.request.post(`${baseUrl}/api/account/deletion`, { data: { password: poor.password } })).status()).toBe(202);
  states.poor = await poorContext.storageState();
  await poorContext.close();

  const adminContext = await browser.newContext();
  const login = await adminContext.request.post(`${baseUrl}/api/auth/login`, { data: { email: inject('adminEmail'), password: inject('adminPassword') } });
  expect(login.status()).toBe(200);
  const adjusted = await adminContext.request.post(`${baseUrl}/api/admin/users/${poorMe.user.id}/adjustments`, { data: { credits: -8, reason: 'audit: leave two credits' } });
  expect(adjusted.status()).toBeLessThan(300);
  // A pending refund on the user's page (refunded through the API; the webhook may or may not have come yet).
  const refunded = await adminContext.request.post(`${baseUrl}/api/admin/payments/${paid.paymentId}/refunds`, { data: { amountCents: 100 } });
  expect(refunded.status()).toBe(201);
  states.admin = await adminContext.storageState();
  await adminContext.close();

  targets.push(
    { role: 'visitor', name: 'home', url: '/' },
    { role: 'visitor', name: 'signup', url: '/signup' },
    { role: 'visitor', name: 'login', url: '/login' },
    { role: 'visitor', name: 'pricing', url: '/pricing' },
    { role: 'visitor', name: 'not-found', url: '/no-such-page' },
    { role: 'user', name: 'home-signed-in', url: '/' },
    { role: 'user', name: 'pricing-signed-in', url: '/pricing' },
    { role: 'user', name: 'tasks', url: '/tasks' },
    { role: 'user', name: 'tasks-confirm', url: `/tasks?uploads=${staged.upload.id}` },
    { role: 'user', name: 'task', url: `/tasks/${task.task.id}` },
    { role: 'user', name: 'account', url: '/account' },
    { role: 'user', name: 'receipt', url: `/account/payments/${paid.paymentId}` },
    { role: 'user', name: 'usage', url: '/account/usage' },
    { role: 'user', name: 'usage-by-week', url: '/account/usage?granularity=week' },
    { role: 'user', name: 'statements', url: '/account/statements' },
    { role: 'user', name: 'statement', url: `/account/statements/${new Date().toISOString().slice(0, 7)}` },
    { role: 'user', name: 'checkout-success', url: successUrl.replace(baseUrl, '') },
    { role: 'user', name: 'checkout-cancel', url: '/checkout/cancel' },
    { role: 'user', name: 'emulator-checkout', url: open.checkoutUrl },
    { role: 'user', name: 'teams', url: '/teams' },
    { role: 'user', name: 'team', url: `/teams/${team.id}` },
    { role: 'user', name: 'tasks-confirm-team', url: `/tasks?uploads=${teamStaged.upload.id}` },
    { role: 'user', name: 'api-keys', url: '/account/keys' },
    { role: 'user', name: 'invitation', url: '/invitations/an-invitation-link-token' },
    { role: 'user', name: 'account-privacy', url: '/account/privacy' },
    { role: 'poor', name: 'tasks-confirm-short', url: `/tasks?uploads=${short.upload.id}` },
    { role: 'poor', name: 'account-privacy-deletion-scheduled', url: '/account/privacy' },
    { role: 'admin', name: 'admin', url: '/admin' },
    { role: 'admin', name: 'admin-user', url: `/admin/users/${me.user.id}` },
    { role: 'admin', name: 'admin-audit', url: '/admin/audit' },
    { role: 'admin', name: 'admin-audit-filtered', url: `/admin/audit?target=${encodeURIComponent(me.user.email)}&from=2026-01-01&to=2099-12-31` },
    { role: 'admin', name: 'admin-reports', url: '/admin/reports' },
    { role: 'admin', name: 'admin-refund-confirm', url: `/admin/payments/${paid.paymentId}/refund?amount=` },
  );
}, 240_000);

afterAll(async () => browser?.close());

const variants = [
  { scheme: 'light', width: 1280, height: 800 },
  { scheme: 'dark', width: 1280, height: 800 },
  { scheme: 'light', width: 390, height: 844 },
  { scheme: 'dark', width: 390, height: 844 },
] as const;

describe('every page passes axe-core and fits its viewport', () => {
  for (const v of variants) {
    it(`${v.scheme} mode at ${v.width} px`, async () => {
      const problems: string[] = [];
      for (const role of ['visitor', 'user', 'poor', 'admin'] as const) {
        const context = await browser.newContext({ viewport: { width: v.width, height: v.height }, colorScheme: v.scheme, storageState: states[role] });
        const page = await context.newPage();
        for (const t of targets.filter((x) => x.role === role)) {
          const url = t.url.startsWith('http') ? t.url : `${baseUrl}${t.url}`;
          await page.goto(url);
          for (const p of await pageProblems(page)) problems.push(`${t.name} (${t.url}): ${p}`);
          if (process.env.E2E_SCREENSHOTS) await screenshot(page, `audit-${t.name}-${v.scheme}-${v.width}`);
        }
        await context.close();
      }
      expect(problems).toEqual([]);
    });
  }
});

describe('the collapsed menu at 390 px', () => {
  it('opens with the keyboard (no script needed), shows its links with a visible focus, and Log out fits on one line', async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, storageState: states.user, javaScriptEnabled: false });
    const page = await context.newPage();
    await page.goto(`${baseUrl}/account`);
    expect(await page.locator('header .site-nav').isVisible()).toBe(false);
    await tabTo(page, 'header summary');
    expect(await page.locator('.site-menu nav a[href="/tasks"]').isVisible()).toBe(false);
    await page.keyboard.press('Enter');
    expect(await page.locator('.site-menu nav a[href="/tasks"]').isVisible()).toBe(true);
    await page.keyboard.press('Tab');
    await expectVisibleFocus(page);
    const logout = page.locator('.site-menu button', { hasText: 'Log out' });
    const box = await logout.boundingBox();
    expect(box!.height).toBeLessThan(48); // one line
    await tabTo(page, '.site-menu nav a[href="/tasks"]');
    await Promise.all([page.waitForURL(/\/tasks$/), page.keyboard.press('Enter')]);
    await context.close();
  });
});

describe('insight as the user meets it (issue 18)', () => {
  it('/account/usage draws the bars and says the runway; the month statement balances; the receipt downloads as a PDF', async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, storageState: states.user });
    const page = await context.newPage();
    await page.goto(`${baseUrl}/account`);
    await Promise.all([page.waitForURL(/\/account\/usage$/), page.getByRole('link', { name: 'Usage and runway' }).click()]);
    await expect.poll(() => page.evaluate(() => {
      const chart = (window as unknown as { Chart?: { getChart(c: HTMLCanvasElement): { data: { datasets: Array<{ data: number[] }> } } | undefined } }).Chart;
      const canvas = document.getElementById('usage-chart') as HTMLCanvasElement | null;
      const c = canvas && chart?.getChart(canvas);
      return c ? c.data.datasets.flatMap((d) => d.data).reduce((s, x) => s + x, 0) : 0;
    })).toBeGreaterThan(0);
    expect(await page.getByTestId('runway').innerText()).toMatch(/At your last-30-day rate your credits last until \d{1,2} [A-Z][a-z]{2} \d{4}/);
    await page.goto(`${baseUrl}/account/statements/${new Date().toISOString().slice(0, 7)}`);
    const closing = Number(await page.getByTestId('closing').innerText());
    const balance = await json(await context.request.get(`${baseUrl}/api/credits/balance`));
    expect(closing).toBeCloseTo(balance.available + balance.held, 3); // posted = lots − debt = available + held
    const pdf = await context.request.get(`${baseUrl}/api/payments/${receiptPaymentId}/receipt.pdf?download`);
    expect(pdf.status()).toBe(200);
    expect(pdf.headers()['content-type']).toBe('application/pdf');
    expect((await pdf.body()).subarray(0, 5).toString()).toBe('%PDF-');
    await context.close();
  });
});
