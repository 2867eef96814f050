import Stripe from 'stripe';
import type { Page } from 'playwright-core';
import { beforeEach, describe, expect, inject, it } from 'vitest';
import { checkAccessibility, headerBalance, newUser, screenshot, usePage } from './browser.ts';

const baseUrl = inject('baseUrl');
// A phone: 390 px wide.
const currentPage = usePage({ width: 390, height: 844 });
let page: Page;
beforeEach(() => {
  page = currentPage();
});

async function signUp(p: Page, user = newUser('sub')) {
  await p.goto(`${baseUrl}/signup`);
  await p.getByLabel('Name').fill(user.name);
  await p.getByLabel('Email').fill(user.email);
  await p.getByLabel('Password').fill(user.password);
  await Promise.all([p.waitForURL(/\/(account|tasks)/), p.getByRole('button', { name: 'Create account' }).click()]);
  return user;
}

describe('journey: subscribe to Pro from /pricing at 390 px, see 1,000 credits, renew through the test clock', () => {
  it('works end to end in the browser, in dark mode, by keyboard', async () => {
    await page.emulateMedia({ colorScheme: 'dark' });
    await signUp(page);
    expect(await headerBalance(page)).toBe(10);

    await page.goto(`${baseUrl}/pricing`);
    await checkAccessibility(page);
    expect(await page.getByTestId('plan-pro').textContent()).toContain('$19.00 / month');
    // Keyboard only: focus the Pro plan's button and press Enter.
    await page.getByRole('button', { name: 'Subscribe to Pro', exact: true }).focus();
    await page.keyboard.press('Enter');

    await expect.poll(() => page.url()).toMatch(/\/c\/pay\/cs_test_/);
    const emulatorUrl = new URL(page.url()).origin;
    await checkAccessibility(page);
    const email = page.getByLabel('Email');
    if (await email.isEditable()) await email.fill('subscriber@example.test');
    await page.getByLabel('Card number').fill('4242 4242 4242 4242');
    await page.getByLabel(/^Expir/).fill('12 / 34');
    await page.getByLabel(/CVC/).fill('123');
    await page.getByLabel('Name on card').fill('Ada Lovelace');
    await page.getByRole('button', { name: /^(Pay|Subscribe) / }).click();

    await page.waitForURL(/\/account/);
    await expect.poll(() => page.getByTestId('flash').textContent()).toMatch(/Welcome to Pro/);
    expect(await headerBalance(page)).toBe(1010);
    expect(await page.getByTestId('period-credits').textContent()).toBe('1,000');
    expect(await page.getByTestId('subscription-plan').textContent()).toContain('Pro');
    expect(await page.locator('body').textContent()).not.toMatch(/sub_[A-Za-z0-9]{8}|cus_[A-Za-z0-9]{8}/);
    await checkAccessibility(page);
    await screenshot(page, 'journey-subscribe-account');

    // A month later on Stripe's test clock, advanced through the Stripe SDK pointed at the emulator.
    const port = Number(new URL(emulatorUrl).port);
    const stripe = new Stripe('sk_test_e2e', { host: '127.0.0.1', port, protocol: 'http' });
    const clock = (await stripe.testHelpers.testClocks.list()).data.find((c) => c.name === 'Tally default test clock')!;
    expect(clock).toBeTruthy();
    await stripe.testHelpers.testClocks.advance(clock.id, { frozen_time: clock.frozen_time + 32 * 86_400 });
    await expect
      .poll(async () => {
        await page.goto(`${baseUrl}/account`);
        return page.getByTestId('rollover-credits').textContent();
      }, { timeout: 20_000 })
      .toBe('500');
    expect(await page.getByTestId('period-credits').textContent()).toBe('1,000');
    await checkAccessibility(page);
    await screenshot(page, 'journey-subscribe-renewed');

    // Manage billing opens the customer portal.
    await page.getByRole('button', { name: /Manage billing/ }).click();
    await expect.poll(() => page.url()).toMatch(/\/p\/session\//);
    await expect.poll(() => page.locator('h1').textContent()).toBe('Manage your billing');
    await checkAccessibility(page);
  });
});
