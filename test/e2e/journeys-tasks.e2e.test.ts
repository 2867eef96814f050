import path from 'node:path';
import type { Page } from 'playwright-core';
import { beforeEach, describe, expect, inject, it } from 'vitest';
import { checkAccessibility, expectVisibleFocus, headerBalance, newUser, screenshot, tabTo, usePage } from './browser.ts';

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
  await Promise.all([p.waitForURL(/\/tasks$/), p.getByRole('button', { name: 'Create account' }).click()]);
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

describe('journey 3: keyboard only: upload linn.png, see the estimate, confirm, get told it is done, copy the text', () => {
  it('uploads once, charges exactly what the task reports and shows the extracted text', async () => {
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: baseUrl });
    await signUp(page);
    const before = await headerBalance(page);
    expect(before).toBe(10);
    await checkAccessibility(page);

    // Tab to the file input (its focus must show), choose the file: the estimate appears in place.
    let uploads = 0;
    page.on('request', (r) => {
      if (r.method() === 'POST' && /\/tasks\/uploads$|\/api\/tasks$/.test(r.url())) uploads++;
    });
    await tabTo(page, 'input[type="file"]');
    await page.locator('input[type="file"]').setInputFiles(LINN);
    await expect.poll(() => page.locator('[data-estimate-credits]').textContent()).toBe('1.5');
    expect(await page.locator('[data-estimate-pages]').textContent()).toBe('1');
    expect(await page.locator('#confirm').textContent()).toContain('linn.png');
    // Focus moves to the one next step, which says what it will cost.
    await expect.poll(() => page.evaluate(() => document.activeElement?.textContent?.trim())).toBe('Confirm: run OCR for 1.5 credits');
    await expectVisibleFocus(page);
    await checkAccessibility(page);
    await screenshot(page, 'journey-3-estimate');

    await Promise.all([page.waitForURL(/\/tasks\/[0-9a-f-]{36}$/), page.keyboard.press('Enter')]);
    expect(uploads, 'the document is uploaded once').toBe(1);
    const taskId = page.url().split('/').pop()!;

    // The page follows the job; when it is done the tab title and a toast say so.
    await expect.poll(() => page.getByTestId('toast').textContent(), { timeout: 150_000 }).toContain('linn.png is done');
    expect(await page.title()).toMatch(/^✓ Done: linn\.png/);
    await checkAccessibility(page);
    expect(await page.getByTestId('text').textContent()).toContain('LinnSequencer');
    const charged = Number(await page.getByTestId('charged').textContent());
    expect(charged).toBe(1.5);
    expect(await headerBalance(page)).toBe(before - charged);

    // Read the result: Tab to "Copy text", Enter, and the clipboard holds the text.
    await tabTo(page, '[data-copy]');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('[data-copy]').textContent()).toBe('Copied');
    expect(await page.evaluate(() => navigator.clipboard.readText())).toContain('LinnSequencer');
    await tabTo(page, '#ocr-text');
    await screenshot(page, 'journey-3-result');
    expect(taskId).toMatch(/[0-9a-f-]{36}/);
  });

  it('takes several dropped files at once, each with its estimate, and one confirm for all', async () => {
    await signUp(page);
    const files = [LINN, path.join(process.cwd(), 'test/fixtures/documents/multipage.pdf')];
    const fs = await import('node:fs');
    // Drop them on the drop zone, as a person dragging files from the desktop would.
    const dataTransfer = await page.evaluateHandle(
      (list: Array<{ name: string; type: string; b64: string }>) => {
        const dt = new DataTransfer();
        for (const f of list) dt.items.add(new File([Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0))], f.name, { type: f.type }));
        return dt;
      },
      files.map((f) => ({ name: path.basename(f), type: f.endsWith('.pdf') ? 'application/pdf' : 'image/png', b64: fs.readFileSync(f).toString('base64') })),
    );
    await page.dispatchEvent('[data-dropzone]', 'drop', { dataTransfer });
    await expect.poll(() => page.locator('#confirm tbody tr').count()).toBe(2);
    const text = await page.locator('#confirm').textContent();
    expect(text).toContain('linn.png');
    expect(text).toContain('multipage.pdf');
    expect(await page.locator('[data-estimate-credits]').textContent()).toBe('5.5');
    await Promise.all([page.waitForURL(/\/tasks#tasks$/), page.getByRole('button', { name: 'Confirm: run OCR for 5.5 credits' }).click()]);
    expect(await page.getByTestId('flash').textContent()).toContain('2 documents are queued.');
    expect(await page.locator('[data-task-list] tbody tr[data-task-id]').count()).toBe(2);
  });
});

describe('journey 3b: with JavaScript off, the upload is two plain form posts, each answered with a redirect', () => {
  it('keeps the CSRF token out of every URL and a reload re-posts nothing', async () => {
    const context = await page.context().browser()!.newContext({ javaScriptEnabled: false, viewport: { width: 390, height: 844 } });
    const p = await context.newPage();
    const urls: string[] = [];
    p.on('request', (r) => urls.push(r.url()));
    await signUp(p);
    await p.locator('input[type="file"]').setInputFiles(LINN);
    await Promise.all([p.waitForURL(/\/tasks\?uploads=/), p.getByRole('button', { name: 'Upload and see the estimate' }).click()]);
    expect(await p.locator('[data-estimate-credits]').textContent()).toBe('1.5');
    await p.reload(); // a GET: nothing is uploaded or held again
    expect(await headerBalance(p)).toBe(10);
    await Promise.all([p.waitForURL(/\/tasks\/[0-9a-f-]{36}$/), p.getByRole('button', { name: 'Confirm: run OCR for 1.5 credits' }).click()]);
    await p.reload();
    expect(await p.locator('h1').textContent()).toBe('linn.png');
    expect(urls.filter((u) => u.includes('_csrf')), 'no token in a URL').toEqual([]);
    await context.close();
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
    await page.locator('input[type="file"]').setInputFiles(LINN);
    const notice = page.locator('[data-estimate-short]');
    await expect.poll(() => notice.isVisible()).toBe(true);
    expect(await notice.textContent()).toMatch(/Not enough credits/);
    expect(await page.locator('[data-confirm-submit]').isDisabled()).toBe(true);
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
