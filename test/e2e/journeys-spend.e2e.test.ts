import path from 'node:path';
import type { Page } from 'playwright-core';
import { beforeEach, describe, expect, inject, it } from 'vitest';
import { checkAccessibility, headerBalance, newUser, screenshot, usePage } from './browser.ts';

// Issue 14's "Done when", tried as a new user would, on a phone (390 px): a daily cap refuses an
// upload with its reason on the page; auto-recharge on a saved 4242 card buys one Starter pack by
// itself; a 9995 card fails, says so, and turns auto-recharge off after three failures.
const baseUrl = inject('baseUrl');
const TRIVIAL = path.join(process.cwd(), 'test/fixtures/documents/trivial.pdf');
const currentPage = usePage({ width: 390, height: 844 });
let page: Page;
beforeEach(() => {
  page = currentPage();
  // A step that cannot happen fails with its name instead of waiting out the test.
  page.setDefaultTimeout(20_000);
});

/** Switches the colour scheme and waits for the page's colour transitions to end. */
async function scheme(p: Page, colorScheme: 'light' | 'dark') {
  await p.emulateMedia({ colorScheme });
  // Transitions only (a looping animation never finishes), and never longer than a second.
  await p.evaluate(() =>
    Promise.race([
      Promise.all(document.getAnimations().filter((a) => a instanceof CSSTransition).map((a) => a.finished.catch(() => undefined))),
      new Promise((r) => setTimeout(r, 1000)),
    ]),
  );
}

/** axe and layout checks in light and then dark mode (the page as it is now, flash messages included). */
async function checkBothSchemes(p: Page) {
  await scheme(p, 'light');
  await checkAccessibility(p);
  await scheme(p, 'dark');
  await checkAccessibility(p);
  await scheme(p, 'light');
}

/** Uploads trivial.pdf on /tasks and confirms it; returns the flash message when the confirm was refused. */
async function uploadAndConfirm(p: Page): Promise<string | null> {
  await p.goto(`${baseUrl}/tasks`);
  await p.locator('input[type="file"]').setInputFiles(TRIVIAL);
  const confirm = p.locator('[data-confirm-submit]');
  await confirm.waitFor();
  await Promise.all([p.waitForURL(/\/tasks(\/[0-9a-f-]{36}|\?uploads=.*)$/), confirm.click()]);
  if (/\/tasks\/[0-9a-f-]{36}$/.test(p.url())) return null;
  return (await p.getByTestId('flash').textContent())?.trim() ?? '';
}

/** Saves a card through "Save a card" / "Save a different card": the emulator's Checkout in setup mode. */
async function saveCard(p: Page, number: string) {
  await p.goto(`${baseUrl}/account/settings/credits`);
  await Promise.all([p.waitForURL(/\/c\/pay\//), p.getByTestId('save-card').click()]);
  expect(await p.locator('h1').textContent()).toBe('Save a card');
  await checkBothSchemes(p);
  await p.getByLabel('Card number').fill(number);
  await p.getByLabel(/^Expir/).fill('12 / 34');
  await p.getByLabel(/CVC/).fill('123');
  await p.getByLabel('Name on card').fill('Ada Lovelace');
  await Promise.all([p.waitForURL(/\/account\/settings\/credits/), p.getByRole('button', { name: 'Save card' }).click()]);
  expect(await p.getByTestId('flash').textContent()).toContain(`ending ${number.slice(-4)} is saved`);
}

/** The results in the recharge history on /account/settings/credits, newest first. */
async function historyOf(p: Page): Promise<string[]> {
  await p.goto(`${baseUrl}/account/settings/credits`);
  const rows = p.locator('[data-testid="recharge-history"] tbody tr td:last-child');
  return (await rows.allTextContents()).map((t) => t.trim());
}

describe('journey: spending limits and auto-recharge', () => {
  it('a daily cap of 5 refuses an upload with its reason; 4242 at 20 credits buys one Starter pack; 9995 fails and turns itself off after three', async () => {
    const user = newUser('spend');
    await page.goto(`${baseUrl}/signup`);
    await page.getByLabel('Name').fill(user.name);
    await page.getByLabel('Email').fill(user.email);
    await page.getByLabel('Password').fill(user.password);
    await Promise.all([page.waitForURL(/\/tasks$/), page.getByRole('button', { name: 'Create account' }).click()]);

    // A daily cap of 5 credits.
    await page.goto(`${baseUrl}/account/settings/credits`);
    await page.getByLabel('Daily cap (credits)').fill('5');
    await Promise.all([page.waitForURL(/\/account\/settings\/credits$/), page.getByRole('button', { name: 'Save limits' }).click()]);
    expect(await page.getByTestId('flash').textContent()).toContain('Your spending limits are saved.');
    await checkBothSchemes(page);

    // Upload until a confirm is refused: the cap's reason and the way to change it are on the page.
    let refusal: string | null = null;
    for (let i = 0; i < 8 && refusal === null; i++) refusal = await uploadAndConfirm(page);
    expect(refusal).toMatch(/^Not started: This needs [\d.]+ credits?, but your daily cap of 5 credits has [\d.]+ credits? of room left/);
    expect(await page.getByRole('link', { name: 'Change your spending limits' }).count()).toBe(1);
    expect(await page.getByTestId('spend-room').textContent()).toMatch(/Today:\s*[\d.]+ of 5 credits left/);
    await checkBothSchemes(page);
    await screenshot(page, 'journey-spend-cap-refused');

    // Lift the cap; save 4242 and turn auto-recharge on at 20 credits with the Starter pack.
    await page.goto(`${baseUrl}/account/settings/credits`);
    await page.getByLabel('Daily cap (credits)').fill('');
    await Promise.all([page.waitForURL(/\/account\/settings\/credits$/), page.getByRole('button', { name: 'Save limits' }).click()]);
    await saveCard(page, '4242 4242 4242 4242');
    expect(await page.getByTestId('saved-card').textContent()).toContain('Visa ending 4242');
    await page.getByLabel('Recharge when fewer than (credits) are left').fill('20');
    await page.getByLabel('Pack to buy').selectOption('starter');
    await Promise.all([page.waitForURL(/\/account\/settings\/credits/), page.getByRole('button', { name: 'Turn on auto-recharge' }).click()]);
    expect(await page.getByTestId('auto-recharge-status').textContent()).toMatch(/On: when fewer than\s+20 credits/);
    await checkBothSchemes(page);

    // One more spend (below 20 already): one Starter pack (100 credits) arrives by itself.
    const before = await headerBalance(page);
    expect(await uploadAndConfirm(page)).toBeNull();
    await expect.poll(() => historyOf(page), { timeout: 30_000 }).toEqual(['Credits added']);
    expect(await headerBalance(page)).toBeGreaterThan(before + 90);
    await page.goto(`${baseUrl}/account`);
    expect(await page.getByTestId('recharge-history').textContent()).toContain('Credits added');
    await checkBothSchemes(page);
    await screenshot(page, 'journey-spend-recharged');

    // Switch to 9995 (insufficient funds) and raise the threshold above the balance: each spend fails, then it turns off.
    await saveCard(page, '4000 0000 0000 9995');
    await page.getByLabel('Recharge when fewer than (credits) are left').fill('500');
    await Promise.all([page.waitForURL(/\/account\/settings\/credits/), page.getByRole('button', { name: 'Save auto-recharge' }).click()]);
    expect(await uploadAndConfirm(page)).toBeNull();
    await expect.poll(async () => (await historyOf(page))[0], { timeout: 30_000 }).toBe('Failed: insufficient funds');
    await page.goto(`${baseUrl}/notifications`);
    expect(await page.locator('main').textContent()).toContain('Auto-recharge failed');
    await checkBothSchemes(page);
    for (let i = 0; i < 4; i++) {
      const failed = (await historyOf(page)).filter((r) => r === 'Failed: insufficient funds').length;
      if (failed >= 3) break;
      expect(await uploadAndConfirm(page)).toBeNull();
      await expect.poll(async () => (await historyOf(page)).filter((r) => r === 'Failed: insufficient funds').length, { timeout: 30_000 }).toBeGreaterThan(failed);
    }
    await page.goto(`${baseUrl}/account/settings/credits`);
    expect(await page.getByTestId('auto-recharge-status').textContent()).toContain('Off: the last three recharges failed.');
    expect((await historyOf(page)).filter((r) => r === 'Failed: insufficient funds')).toHaveLength(3);
    await checkBothSchemes(page);
    await page.goto(`${baseUrl}/notifications`);
    expect(await page.locator('main').textContent()).toContain('Auto-recharge is off');
    await screenshot(page, 'journey-spend-disabled');
  });
});
