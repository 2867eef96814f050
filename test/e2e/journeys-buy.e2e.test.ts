import type { Page } from 'playwright-core';
import { beforeEach, describe, expect, inject, it } from 'vitest';
import { checkAccessibility, expectVisibleFocus, headerBalance, newUser, screenshot, tabTo, usePage } from './browser.ts';

const baseUrl = inject('baseUrl');
const currentPage = usePage();
let page: Page;
beforeEach(() => {
  page = currentPage();
});

/**
 * Signs up through the form with the keyboard only: Tab from the top of the page to each field
 * (the focus visible at each step), type, Enter to submit. Lands on /tasks with a welcome.
 */
async function signUpWithKeyboard(p: Page, user = newUser()) {
  await p.goto(`${baseUrl}/signup`);
  await checkAccessibility(p);
  await tabTo(p, '#signup-name');
  await p.keyboard.type(user.name);
  await p.keyboard.press('Tab');
  await expectVisibleFocus(p);
  await p.keyboard.type(user.email);
  await p.keyboard.press('Tab');
  await expectVisibleFocus(p);
  await p.keyboard.type(user.password);
  await Promise.all([p.waitForURL(/\/tasks$/), p.keyboard.press('Enter')]);
  expect(await p.getByTestId('flash').textContent()).toMatch(/Welcome to Tally! Your 10 free credits are ready until .* \(30 days\)/);
  return user;
}

/** Fills the emulator's hosted card form with a test card, by keyboard only, and submits it. */
async function payWithCard(p: Page, card: string) {
  await expect.poll(() => p.url()).toMatch(/\/c\/pay\/cs_test_/);
  await checkAccessibility(p);
  const email = p.getByLabel('Email');
  if (await email.isEditable()) {
    await tabTo(p, '#email');
    await p.keyboard.type('buyer@example.test');
  }
  for (const [id, text] of [['#cardNumber', card], ['#cardExpiry', '12 / 34'], ['#cardCvc', '123'], ['#billingName', 'Ada Lovelace']]) {
    await tabTo(p, id!);
    await p.keyboard.type(text!);
  }
  await tabTo(p, 'button[type="submit"]');
  await p.keyboard.press('Enter');
}

describe('journey 1: sign up, buy the Starter pack with 4242…, see 110 credits', () => {
  it('works end to end in the browser', async () => {
    await signUpWithKeyboard(page);
    expect(await headerBalance(page)).toBe(10);
    await checkAccessibility(page);

    // Keyboard-only: Tab to Pricing in the header, then to "Buy Starter", Enter.
    await tabTo(page, 'header .site-nav a[href="/pricing"]');
    await Promise.all([page.waitForURL(/\/pricing$/), page.keyboard.press('Enter')]);
    await checkAccessibility(page);
    await tabTo(page, '[data-testid="pack-starter"] button');
    expect(await page.evaluate(() => document.activeElement?.textContent?.trim())).toBe('Buy Starter');
    await page.keyboard.press('Enter');
    await payWithCard(page, '4242 4242 4242 4242');

    await page.waitForURL(/\/checkout\/success\?session_id=cs_test_/);
    await expect.poll(() => page.locator('h1').textContent()).toMatch(/credits are here/);
    expect(await headerBalance(page)).toBe(110);

    await page.goto(`${baseUrl}/account`);
    await expect.poll(() => page.getByTestId('available').textContent()).toBe('110');
    const purchase = page.getByTestId('payment');
    expect(await purchase.count()).toBe(1);
    expect(await purchase.first().getAttribute('data-status')).toBe('paid');
    expect(await purchase.first().textContent()).toContain('$5.00');
    await checkAccessibility(page);
    await screenshot(page, 'journey-1-bought-credits');

    await purchase.first().getByRole('link', { name: /Receipt/ }).click();
    await expect.poll(() => page.getByTestId('receipt-status').textContent()).toBe('Paid');
    expect(await page.locator('.receipt').textContent()).toContain('$5.00');
    await checkAccessibility(page);
    await screenshot(page, 'journey-1-receipt');
  });
});

describe('journey 2: a declined card shows an error and changes nothing; the abandoned checkout says "Not paid"', () => {
  it('keeps the balance at 10 credits and gives the abandoned purchase no receipt', async () => {
    await signUpWithKeyboard(page);
    await page.goto(`${baseUrl}/pricing`);
    await page.getByRole('button', { name: 'Buy Starter' }).click();
    await payWithCard(page, '4000 0000 0000 0002');
    await expect.poll(() => page.locator('body').textContent()).toMatch(/declined/i);
    expect(page.url()).toMatch(/\/c\/pay\/cs_test_/);
    await screenshot(page, 'journey-2-declined-card');

    await page.getByRole('link', { name: /back/i }).first().click();
    await page.waitForURL(new RegExp(`^${baseUrl}/checkout/cancel`));
    expect(await headerBalance(page)).toBe(10);
    await page.goto(`${baseUrl}/account`);
    expect(await page.getByTestId('available').textContent()).toBe('10');
    const purchase = page.getByTestId('payment');
    expect(await purchase.count()).toBe(1);
    expect(await purchase.first().getAttribute('data-status')).toBe('expired');
    expect(await purchase.first().textContent()).toContain('Not paid (checkout ended)');
    expect(await purchase.first().getByRole('link', { name: /Receipt/ }).count()).toBe(0);
  });
});

describe('journey 5: an admin grants 25 credits with a reason; the user sees them', () => {
  it('shows the grant and its reason in the user’s history', async () => {
    const user = await signUpWithKeyboard(page);
    await page.getByRole('button', { name: 'Log out' }).click();

    // Log in with the keyboard only.
    await page.goto(`${baseUrl}/login`);
    await checkAccessibility(page);
    await page.getByLabel('Email').focus();
    await page.keyboard.type(inject('adminEmail'));
    await page.keyboard.press('Tab');
    await page.keyboard.type(inject('adminPassword'));
    await Promise.all([page.waitForURL((u) => !u.pathname.startsWith('/login')), page.keyboard.press('Enter')]);

    await page.goto(`${baseUrl}/admin`);
    await checkAccessibility(page);
    await page.getByRole('searchbox', { name: /Find a user/ }).fill(user.email);
    await page.getByRole('button', { name: 'Search' }).click();
    await page.getByRole('link', { name: user.name }).click();
    await checkAccessibility(page);
    const grantForm = page.locator('form[action$="/grants"]');
    await grantForm.getByLabel('Credits').fill('25');
    await grantForm.getByLabel('Reason').fill('Thanks for the <b>bug report</b>');
    await grantForm.getByRole('button', { name: 'Grant' }).click();
    await expect.poll(() => page.locator('body').textContent()).toContain('Thanks for the <b>bug report</b>');
    await screenshot(page, 'journey-5-admin-granted');
    await page.getByRole('button', { name: 'Log out' }).click();

    await page.goto(`${baseUrl}/login`);
    await page.getByLabel('Email').fill(user.email);
    await page.getByLabel('Password').fill(user.password);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.goto(`${baseUrl}/account`);
    expect(await page.getByTestId('available').textContent()).toBe('35');
    const history = page.locator('#history');
    // The reason is shown as text, escaped: no <b> element was injected.
    expect(await history.textContent()).toContain('Thanks for the <b>bug report</b>');
    expect(await history.locator('b').count()).toBe(0);
    await screenshot(page, 'journey-5-user-sees-grant');
  });
});
