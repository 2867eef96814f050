import type { Page } from 'playwright-core';
import { beforeEach, describe, expect, inject, it } from 'vitest';
import { checkAccessibility, newUser, screenshot, usePage } from './browser.ts';

const baseUrl = inject('baseUrl');
// Phone width: every page of this journey must work at 390 px.
const currentPage = usePage({ width: 390, height: 844 });
let page: Page;
beforeEach(() => {
  page = currentPage();
});

async function signUp(p: Page, user = newUser('notify')) {
  await p.goto(`${baseUrl}/signup`);
  await p.getByLabel('Name').fill(user.name);
  await p.getByLabel('Email').fill(user.email);
  await p.getByLabel('Password').fill(user.password);
  // A new account lands on /tasks with a welcome (issue 10); this journey continues on /account.
  await Promise.all([p.waitForURL(/\/tasks$/), p.getByRole('button', { name: 'Create account' }).click()]);
  await p.goto(`${baseUrl}/account`);
  return user;
}

async function logIn(p: Page, email: string, password: string) {
  await p.goto(`${baseUrl}/login`);
  await p.getByLabel('Email').fill(email);
  await p.getByLabel('Password').fill(password);
  await Promise.all([p.waitForURL(/\/account/), p.getByRole('button', { name: 'Log in' }).click()]);
}

async function logOut(p: Page) {
  // At 390 px Log out is behind the header's Menu (a <details>): open it first.
  const menu = p.locator('.site-menu > summary');
  if (await menu.isVisible()) await menu.click();
  await Promise.all([p.waitForURL(`${baseUrl}/`), p.getByRole('button', { name: 'Log out' }).click()]);
}

/** The newest email of `type` to `email`, read as the admin on /admin/emails (no SMTP in this run). */
async function readEmailAsAdmin(p: Page, email: string, type: string): Promise<string> {
  await logIn(p, inject('adminEmail'), inject('adminPassword'));
  await p.goto(`${baseUrl}/admin/emails?to=${encodeURIComponent(email)}&type=${type}`);
  await checkAccessibility(p);
  const row = p.getByTestId('email-row').first();
  await expect.poll(() => row.getByTestId('email-status').textContent()).toMatch(/Not sent/);
  await Promise.all([p.waitForURL(/\/admin\/emails\/[0-9a-f-]{36}$/), row.getByRole('link').click()]);
  await checkAccessibility(p);
  const text = (await p.getByTestId('email-text').textContent()) ?? '';
  await logOut(p);
  return text;
}

describe('journey: notifications', () => {
  it('forgot password from the login page, reset it with the emailed link, sign in with the new one; dark mode and the bell', async () => {
    const user = await signUp(page);
    // The sign-up's verification email is in the outbox; /account says the address is not verified.
    await expect.poll(() => page.getByTestId('email-verified').textContent()).toMatch(/not verified/);
    await logOut(page);

    await page.goto(`${baseUrl}/login`);
    await page.getByRole('link', { name: 'Forgot your password?' }).focus();
    await Promise.all([page.waitForURL(/\/forgot-password$/), page.keyboard.press('Enter')]);
    await checkAccessibility(page);
    await page.getByLabel('Email').fill(user.email);
    await page.getByRole('button', { name: 'Email me a link' }).click();
    await expect.poll(() => page.getByTestId('reset-sent').textContent()).toContain(user.email);

    const mail = await readEmailAsAdmin(page, user.email, 'password_reset');
    const link = /(http\S+\/reset-password\?token=[A-Za-z0-9_-]{43})/.exec(mail)![1]!;
    await page.goto(link);
    await checkAccessibility(page);
    const newPassword = `${user.password} renewed`;
    await page.getByLabel('New password').fill(newPassword);
    await Promise.all([page.waitForURL(/\/login$/), page.getByRole('button', { name: 'Set new password' }).click()]);
    expect(await page.getByTestId('flash').textContent()).toContain('Your password was changed');
    await logIn(page, user.email, newPassword);

    // The reset's "password changed" notice, and the settings page, in dark mode.
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.goto(`${baseUrl}/account/settings`);
    await checkAccessibility(page);
    await page.getByLabel('Finished and failed jobs').check();
    await page.getByLabel(/Also alert me/).fill('5');
    await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/account/settings') && r.request().method() === 'GET'),
      page.getByRole('button', { name: 'Save settings' }).click(),
    ]);
    await page.waitForLoadState();
    expect(await page.getByTestId('flash').textContent()).toContain('saved');
    await page.goto(`${baseUrl}/notifications`);
    await checkAccessibility(page);
    expect(await page.getByTestId('header-bell').isVisible()).toBe(true);
    // Nothing in the page's content is wider than 390 px (the shared header is the layout's own business).
    expect(await page.evaluate(() => Math.max(...Array.from(document.querySelectorAll('main *')).map((e) => e.getBoundingClientRect().right)))).toBeLessThanOrEqual(390);
    await screenshot(page, 'notifications-dark-390');
  });

  it('buy a pack: the receipt is at /admin/emails with the pack, the amount and the card, and the bell counts it', async () => {
    const user = await signUp(page);
    await page.goto(`${baseUrl}/pricing`);
    await page.getByRole('button', { name: 'Buy Starter' }).click();
    await expect.poll(() => page.url()).toMatch(/\/c\/pay\/cs_test_/);
    const email = page.getByLabel('Email');
    if (await email.isEditable()) await email.fill(user.email);
    await page.getByLabel('Card number').fill('4242 4242 4242 4242');
    await page.getByLabel(/^Expir/).fill('12 / 34');
    await page.getByLabel(/CVC/).fill('123');
    await page.getByLabel('Name on card').fill(user.name);
    await page.getByRole('button', { name: /^Pay / }).click();
    await page.waitForURL(/\/checkout\/success/);
    await page.goto(`${baseUrl}/account`);
    expect(await page.getByTestId('unread-count').textContent()).toBe('1');
    await Promise.all([page.waitForURL(/\/notifications$/), page.getByTestId('header-bell').click()]);
    await expect.poll(() => page.getByTestId('notification').first().textContent()).toContain('Payment received');
    await checkAccessibility(page);
    await logOut(page);

    const receipt = await readEmailAsAdmin(page, user.email, 'receipt');
    expect(receipt).toContain('Starter');
    expect(receipt).toContain('$5.00');
    expect(receipt).toContain('Visa ending in 4242');
    expect(receipt).toMatch(/\/account\/payments\/[0-9a-f-]{36}/);
  });
});
