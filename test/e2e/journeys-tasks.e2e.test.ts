import path from 'node:path';
import type { Page } from 'playwright-core';
import { beforeEach, describe, expect, inject, it } from 'vitest';
import { checkAccessibility, headerBalance, newUser, screenshot, usePage } from './browser.ts';

const baseUrl = inject('baseUrl');
const LINN = path.join(process.cwd(), 'test/fixtures/documents/linn.png');
const currentPage = usePage();
let page: Page;
beforeEach(() => {
  page = currentPage();
});

async function signUp(p: Page) {
  const user = newUser('tasks');
  await p.goto(`${baseUrl}/signup`);
  await p.getByLabel('Name').fill(user.name);
  await p.getByLabel('Email').fill(user.email);
  await p.getByLabel('Password').fill(user.password);
  await Promise.all([p.waitForURL(/\/account/), p.getByRole('button', { name: 'Create account' }).click()]);
  return user;
}

/** An admin API session (cookie) from a script, the way an operator's tool would use the API. */
async function adminApi() {
  const login = await fetch(`${baseUrl}/api/auth/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ email: inject('adminEmail'), password: inject('adminPassword') }),
  });
  expect(login.status).toBe(200);
  const cookie = login.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  return (method: string, url: string, body?: unknown) =>
    fetch(`${baseUrl}${url}`, { method, headers: { Cookie: cookie, 'Content-Type': 'application/json' }, body: body ? JSON.stringify(body) : undefined });
}

describe('journey 3: upload linn.png, see the estimate, confirm, watch progress, read the text', () => {
  it('charges exactly what the task reports and shows the extracted text', async () => {
    await signUp(page);
    const before = await headerBalance(page);
    expect(before).toBe(10);

    await page.goto(`${baseUrl}/tasks`);
    await checkAccessibility(page);
    await page.getByLabel('Document').setInputFiles(LINN);
    // The estimate and the balance are shown before anything is spent.
    await expect.poll(() => page.locator('[data-estimate-credits]').textContent()).toBe('1.5');
    expect(await page.locator('[data-estimate-pages]').textContent()).toBe('1');
    const confirm = page.getByRole('button', { name: /Confirm: run OCR for 1\.5 credits/ });
    expect(await confirm.isEnabled()).toBe(true);
    await screenshot(page, 'journey-3-estimate');

    // Keyboard-only confirmation.
    await confirm.focus();
    await page.keyboard.press('Enter');
    const row = page.locator('[data-task-list] tbody tr[data-task-id]').first();
    await expect.poll(() => row.getAttribute('data-task-id')).toMatch(/[0-9a-f-]{36}/);

    // Watch the row until the job is done: the progress bar is shown while it runs, then it completes.
    const seen: string[] = [];
    const deadline = Date.now() + 150_000;
    for (;;) {
      const state = await row.evaluate((tr) => {
        const bar = tr.querySelector('progress');
        const wrap = tr.querySelector('[data-field="progress-wrap"]') as HTMLElement | null;
        return `${tr.getAttribute('data-status')}:${wrap && !wrap.hidden && bar ? bar.value : '-'}`;
      });
      if (seen.at(-1) !== state) seen.push(state);
      if (state.startsWith('completed') || state.startsWith('failed') || Date.now() > deadline) break;
      await page.waitForTimeout(100);
    }
    expect(seen.at(-1)).toBe('completed:-');
    expect(seen.some((s) => /^(queued|processing):\d/.test(s)), `progress states seen: ${seen.join(' → ')}`).toBe(true);
    expect(seen.length).toBeGreaterThanOrEqual(2);

    const taskId = await row.getAttribute('data-task-id');
    await page.goto(`${baseUrl}/tasks/${taskId}`);
    await checkAccessibility(page);
    expect(await page.getByTestId('text').textContent()).toContain('LinnSequencer');
    const charged = Number(await page.getByTestId('charged').textContent());
    expect(charged).toBe(1.5);
    expect(await headerBalance(page)).toBe(before - charged);
    await screenshot(page, 'journey-3-result');
  });
});

describe('journey 4: with too few credits, the upload shows the way to /pricing', () => {
  it('refuses before anything is held and links to the pricing page', async () => {
    const user = await signUp(page);
    const api = await adminApi();
    const found = await (await api('GET', `/api/admin/users?query=${encodeURIComponent(user.email)}`)).json();
    const userId = found.users[0].id;
    const adjusted = await api('POST', `/api/admin/users/${userId}/adjustments`, { credits: -9, reason: 'e2e: leave one credit' });
    expect(adjusted.status).toBeLessThan(300);

    await page.goto(`${baseUrl}/tasks`);
    expect(await headerBalance(page)).toBe(1);
    await page.getByLabel('Document').setInputFiles(LINN);
    const notice = page.locator('[data-estimate-short]');
    await expect.poll(() => notice.isVisible()).toBe(true);
    expect(await notice.textContent()).toMatch(/Not enough credits/);
    expect(await page.locator('[data-upload-submit]').isDisabled()).toBe(true);
    await checkAccessibility(page);
    await screenshot(page, 'journey-4-not-enough-credits');

    await notice.getByRole('link', { name: /Buy more credits/ }).click();
    await page.waitForURL(`${baseUrl}/pricing`);
    expect(await page.locator('h1').textContent()).toBe('Buy credits');
    expect(await headerBalance(page)).toBe(1);
    const tasks = await (await api('GET', `/api/admin/users/${userId}`)).json();
    expect(tasks.balance ?? tasks.user?.balance).toMatchObject({ held: 0 });
  });
});
