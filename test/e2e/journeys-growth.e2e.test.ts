import crypto from 'node:crypto';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { beforeEach, describe, expect, inject, it } from 'vitest';
import { checkAccessibility, newUser, screenshot, usePage } from './browser.ts';

const baseUrl = inject('baseUrl');
const LINN = path.join(process.cwd(), 'test/fixtures/documents/linn.png');
const currentPage = usePage({ width: 390, height: 844 });
let page: Page;
beforeEach(() => {
  page = currentPage();
});

async function signUp(p: Page, user = newUser('growth')) {
  await p.goto(`${baseUrl}/signup`);
  await p.getByLabel('Name').fill(user.name);
  await p.getByLabel('Email').fill(user.email);
  await p.getByLabel('Password').fill(user.password);
  await Promise.all([p.waitForURL(/\/tasks$/), p.getByRole('button', { name: 'Create account' }).click()]);
  return user;
}

async function logOut(p: Page) {
  await p.context().clearCookies();
}

/** The "Your credits" table of /account as [source, remaining] rows. */
async function lots(p: Page): Promise<string[][]> {
  await p.goto(`${baseUrl}/account`);
  return p.getByTestId('lot').evaluateAll((rows) => rows.map((r) => Array.from(r.querySelectorAll('td')).map((td) => td.textContent!.trim())).map((c) => [c[0]!, c[2]!]));
}

describe('issue 17, done when: promo code, a gift by email, a visitor trial', () => {
  it('an admin makes a 10-credit code, a user redeems it once, gives 5 bought credits to a friend, and a visitor keeps their trial task', async () => {
    const code = `DONE-${crypto.randomBytes(3).toString('hex').toUpperCase()}`;

    // The admin creates the code on /admin/promo-codes.
    await page.goto(`${baseUrl}/login`);
    await page.getByLabel('Email').fill(inject('adminEmail'));
    await page.getByLabel('Password').fill(inject('adminPassword'));
    await Promise.all([page.waitForURL(/\/account$/), page.getByRole('button', { name: 'Log in' }).click()]);
    await page.goto(`${baseUrl}/admin/promo-codes`);
    await page.getByLabel('Code', { exact: true }).fill(code);
    await page.getByLabel('Credits', { exact: true }).fill('10');
    await Promise.all([page.waitForURL(/\/admin\/promo-codes$/), page.getByRole('button', { name: 'Create code' }).click()]);
    expect(await page.getByTestId('flash').textContent()).toContain(`Created the code ${code} worth 10 credits.`);
    await checkAccessibility(page);
    await screenshot(page, 'journey-growth-admin-codes');
    await logOut(page);

    // A friend has an account; the user signs up and redeems the code once (the second try is refused).
    const friend = await signUp(page, newUser('friend'));
    await logOut(page);
    await signUp(page);
    await page.goto(`${baseUrl}/account`);
    await page.getByLabel('Promo or gift code').fill(code.toLowerCase());
    await Promise.all([page.waitForURL(/\/account/), page.getByRole('button', { name: 'Redeem' }).click()]);
    expect(await page.getByTestId('flash').textContent()).toContain('Code redeemed: 10 credits added.');
    await page.getByLabel('Promo or gift code').fill(code);
    await Promise.all([page.waitForURL(/\/account/), page.getByRole('button', { name: 'Redeem' }).click()]);
    expect(await page.getByTestId('flash').textContent()).toContain('already redeemed');
    await checkAccessibility(page);

    // Buy a pack (only purchased credits can be given), then give 5 of them to the friend.
    const checkout = await (await page.request.post(`${baseUrl}/api/payments/checkout`, { data: { packageId: 'starter' } })).json();
    await page.goto(checkout.checkoutUrl);
    const email = page.getByLabel('Email');
    if (await email.isEditable()) await email.fill('buyer@example.test');
    await page.getByLabel('Card number').fill('4242 4242 4242 4242');
    await page.getByLabel(/^Expir/).fill('12 / 34');
    await page.getByLabel(/CVC/).fill('123');
    await page.getByLabel('Name on card').fill('Ada Lovelace');
    await Promise.all([page.waitForURL(/\/checkout\/success/), page.getByRole('button', { name: /^Pay / }).click()]);
    await page.goto(`${baseUrl}/account#gift`);
    await page.getByLabel("Friend's email").fill(friend.email);
    await page.getByLabel('Credits', { exact: true }).fill('5');
    await Promise.all([page.waitForURL(/\/account/), page.getByRole('button', { name: 'Send credits' }).click()]);
    expect(await page.getByTestId('flash').textContent()).toContain(`Sent 5 credits to ${friend.email}.`);
    await checkAccessibility(page);
    await screenshot(page, 'journey-growth-gift-sent');
    await logOut(page);

    // The friend logs in and sees the gift among their credits.
    await page.goto(`${baseUrl}/login`);
    await page.getByLabel('Email').fill(friend.email);
    await page.getByLabel('Password').fill(friend.password);
    await Promise.all([page.waitForURL(/\/account$/), page.getByRole('button', { name: 'Log in' }).click()]);
    expect(await lots(page)).toContainEqual(['Gift', '5']);
    await logOut(page);

    // A visitor runs one OCR job without an account, then signs up and finds the task and the trial credits left.
    await page.goto(`${baseUrl}/try`);
    await checkAccessibility(page);
    await Promise.all([page.waitForURL(/\/tasks$/), page.getByRole('button', { name: 'Start the trial' }).click()]);
    expect(await page.getByTestId('flash').textContent()).toContain('3 trial credits');
    await checkAccessibility(page);
    await page.locator('input[type="file"]').setInputFiles(LINN);
    await expect.poll(() => page.locator('[data-estimate-credits]').textContent()).toBe('1.5');
    await Promise.all([page.waitForURL(/\/tasks\/[0-9a-f-]{36}$/), page.getByRole('button', { name: /^Confirm/ }).click()]);
    await expect.poll(() => page.getByTestId('toast').textContent(), { timeout: 60_000 }).toContain('linn.png is done');
    await screenshot(page, 'journey-growth-visitor-task');
    await signUp(page, newUser('visitor'));
    expect(await page.locator('body').textContent()).toContain('linn.png');
    expect(await lots(page)).toContainEqual(['Trial', '1.5']);
    await checkAccessibility(page);
  });
});
