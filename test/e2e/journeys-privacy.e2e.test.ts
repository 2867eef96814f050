import fs from 'node:fs';
import PDFDocument from 'pdfkit';
import type { Page } from 'playwright-core';
import { beforeEach, describe, expect, inject, it } from 'vitest';
import { readZip } from '../privacy/helpers.ts';
import { checkAccessibility, newUser, screenshot, usePage } from './browser.ts';

const baseUrl = inject('baseUrl');
// Phone width: the privacy page and the admin's erase form must work at 390 px.
const currentPage = usePage({ width: 390, height: 844 });
let page: Page;
beforeEach(() => {
  page = currentPage();
});

/** A one-page PDF with a text layer (read without OCR, so the journey stays quick). */
function textPdf(text: string): Promise<Buffer> {
  return new Promise((resolve) => {
    const doc = new PDFDocument({ size: 'A4' });
    const chunks: Buffer[] = [];
    doc.on('data', (c: Buffer) => chunks.push(c));
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.fontSize(18).text(text, 72, 72);
    doc.end();
  });
}

async function logOut(p: Page) {
  const menu = p.locator('.site-menu > summary');
  if (await menu.isVisible()) await menu.click();
  await Promise.all([p.waitForURL(`${baseUrl}/`), p.getByRole('button', { name: 'Log out' }).click()]);
}

describe('journey: privacy', () => {
  it('download my data and find my task text inside; ask for deletion; an admin erases now; the email is gone', async () => {
    const user = newUser('privacy');
    await page.goto(`${baseUrl}/signup`);
    await page.getByLabel('Name').fill(user.name);
    await page.getByLabel('Email').fill(user.email);
    await page.getByLabel('Password').fill(user.password);
    await Promise.all([page.waitForURL(/\/tasks$/), page.getByRole('button', { name: 'Create account' }).click()]);

    // A task whose text we will look for in the export (through the API, on the same session).
    const secret = `Privacy journey invoice ${user.email.slice(8, 16)}`;
    const up = await page.request.post(`${baseUrl}/api/tasks`, { multipart: { file: { name: 'invoice.pdf', mimeType: 'application/pdf', buffer: await textPdf(secret) } } });
    expect(up.status()).toBe(202);
    const taskId = ((await up.json()) as { task: { id: string } }).task.id;
    await expect
      .poll(async () => ((await (await page.request.get(`${baseUrl}/api/tasks/${taskId}`)).json()) as { task: { status: string } }).task.status, { timeout: 60_000 })
      .toBe('completed');

    // Account → Your data → Prepare my data; the ZIP appears and downloads.
    await page.goto(`${baseUrl}/account`);
    await Promise.all([page.waitForURL(/\/account\/privacy$/), page.getByRole('link', { name: 'Download your data or delete your account' }).click()]);
    await checkAccessibility(page);
    await page.getByRole('button', { name: 'Prepare my data' }).click();
    await expect.poll(() => page.getByTestId('flash').textContent()).toMatch(/preparing your data/);
    await expect
      .poll(
        async () => {
          await page.reload();
          return page.getByRole('link', { name: /Download ZIP/ }).count();
        },
        { timeout: 30_000, interval: 500 },
      )
      .toBe(1);
    await checkAccessibility(page);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: /Download ZIP/ }).click()]);
    const zip = await readZip(fs.readFileSync((await download.path())!));
    const texts = [...zip.entries()].filter(([name]) => name.startsWith('results/') && name.endsWith('.txt')).map(([, b]) => b.toString('utf8'));
    expect(texts.join('\n')).toContain(secret);
    expect(JSON.parse(zip.get('profile.json')!.toString())).toMatchObject({ email: user.email });

    // Ask for deletion with the password: scheduled in 7 days, cancellable.
    await page.getByLabel('Your password, to confirm').fill(user.password);
    await page.getByRole('button', { name: 'Delete my account in 7 days' }).click();
    await expect.poll(() => page.getByTestId('deletion-scheduled').textContent()).toMatch(/will be erased on/);
    await checkAccessibility(page);
    if (process.env.E2E_SCREENSHOTS) await screenshot(page, 'privacy-deletion-scheduled');
    const me = (await (await page.request.get(`${baseUrl}/api/auth/me`)).json()) as { user: { id: string } };
    await logOut(page);

    // The admin erases it now, with a reason.
    await page.goto(`${baseUrl}/login`);
    await page.getByLabel('Email').fill(inject('adminEmail'));
    await page.getByLabel('Password').fill(inject('adminPassword'));
    await Promise.all([page.waitForURL(/\/account/), page.getByRole('button', { name: 'Log in' }).click()]);
    await page.goto(`${baseUrl}/admin/users/${me.user.id}`);
    await page.getByLabel('Reason (recorded in the audit log)').fill('Asked by the user, journey test');
    await Promise.all([page.waitForURL(new RegExp(`/admin/users/${me.user.id}$`)), page.getByRole('button', { name: 'Erase now' }).click()]);
    await expect.poll(() => page.getByTestId('flash').textContent()).toMatch(/was erased/);
    await expect.poll(() => page.getByTestId('erased').count()).toBe(1);
    await checkAccessibility(page);
    expect(await page.content()).not.toContain(user.email);

    // The email is gone: no user with it, and the audit log finds nothing about it either.
    await page.goto(`${baseUrl}/admin?query=${encodeURIComponent(user.email)}`);
    await expect.poll(() => page.locator('main').textContent()).toMatch(/No users match/);
    await page.goto(`${baseUrl}/admin/audit?target=${encodeURIComponent(user.email)}`);
    await expect.poll(() => page.locator('main').textContent()).toMatch(/No entries/);
    await page.goto(`${baseUrl}/admin/audit?action=privacy.erased`);
    await checkAccessibility(page);
    expect(await page.locator('main').textContent()).toContain('Account erased');
  });
});
