import fs from 'node:fs';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { checkAccessibility, launchBrowser, newUser, screenshot } from './browser.ts';

const baseUrl = inject('baseUrl');
/** One blank page: the job is charged 1 credit (blank pages are free), its estimate holds 1.5. */
const BLANK = path.join(process.cwd(), 'test/fixtures/documents/trivial.pdf');
let browser: Browser;
const contexts: BrowserContext[] = [];
beforeAll(async () => {
  browser = await launchBrowser();
});
afterEach(async () => {
  for (const c of contexts.splice(0)) await c.close();
});
afterAll(async () => browser?.close());

/** A phone-sized page (390 px) in `scheme`, in its own browser context (its own session). */
async function phone(scheme: 'light' | 'dark'): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, colorScheme: scheme });
  contexts.push(context);
  return context.newPage();
}

async function signUp(p: Page, user: ReturnType<typeof newUser>) {
  await p.goto(`${baseUrl}/signup`);
  await p.getByLabel('Name').fill(user.name);
  await p.getByLabel('Email').fill(user.email);
  await p.getByLabel('Password').fill(user.password);
  // A new account lands on /tasks with a welcome.
  await Promise.all([p.waitForURL(/\/tasks$/), p.getByRole('button', { name: 'Create account' }).click()]);
}

/** The newest email of `type` to `email`, read as the admin on /admin/emails (the app's outbox; no SMTP in this run). */
async function readEmailAsAdmin(email: string, type: string): Promise<string> {
  const p = await phone('light');
  await p.goto(`${baseUrl}/login`);
  await p.getByLabel('Email').fill(inject('adminEmail'));
  await p.getByLabel('Password').fill(inject('adminPassword'));
  await Promise.all([p.waitForURL(/\/account/), p.getByRole('button', { name: 'Log in' }).click()]);
  await p.goto(`${baseUrl}/admin/emails?to=${encodeURIComponent(email)}&type=${type}`);
  const row = p.getByTestId('email-row').first();
  await Promise.all([p.waitForURL(/\/admin\/emails\/[0-9a-f-]{36}$/), row.getByRole('link').click()]);
  return (await p.getByTestId('email-text').textContent()) ?? '';
}

/** Waits for the task's final status through the API (the page's own session). */
async function finished(p: Page, taskId: string) {
  let task: { status: string; chargedCredits: number | null } | undefined;
  await expect
    .poll(async () => {
      task = (await (await p.request.get(`${baseUrl}/api/tasks/${taskId}`)).json()).task;
      return task!.status;
    }, { timeout: 60_000 })
    .toMatch(/completed|failed/);
  return task!;
}

describe('journey: a team, its pool and a member budget, on phones', () => {
  it('create a team, invite by email, buy for the team, 5-credit daily budget: the job past the budget is refused', async () => {
    const owner = newUser('team-owner');
    const member = newUser('team-member');
    const o = await phone('light');
    const m = await phone('dark');
    await signUp(o, owner);
    await signUp(m, member);

    // The owner finds Teams in the header menu and creates one.
    await o.locator('.site-menu > summary').click();
    await Promise.all([o.waitForURL(/\/teams$/), o.locator('.site-menu').getByRole('link', { name: 'Teams' }).click()]);
    await checkAccessibility(o);
    await o.getByLabel('Team name').fill('Acme Scanning');
    await Promise.all([o.waitForURL(/\/teams\/[0-9a-f-]{36}$/), o.getByRole('button', { name: 'Create team' }).click()]);
    const teamUrl = o.url();
    expect(await o.getByTestId('pool-available').textContent()).toBe('0');
    await checkAccessibility(o);

    // Invites the member by email; the link arrives in the member's email.
    await o.getByLabel('Email', { exact: true }).fill(member.email);
    await o.getByRole('button', { name: 'Send invitation' }).click();
    await expect.poll(() => o.getByTestId('flash').textContent()).toContain(`Invitation sent to ${member.email}`);
    const mail = await readEmailAsAdmin(member.email, 'team_invitation');
    expect(mail).toContain('Acme Scanning');
    const link = /(http\S+\/invitations\/[A-Za-z0-9_-]+)/.exec(mail)![1]!;
    await m.goto(link);
    await checkAccessibility(m);
    await Promise.all([m.waitForURL(teamUrl), m.getByRole('button', { name: 'Accept the invitation' }).click()]);
    expect(await m.locator('h1').textContent()).toBe('Acme Scanning');

    // Buys a pack for the team: the credits land in the pool.
    await o.reload();
    await o.getByLabel('Buy a pack for the team').selectOption('starter');
    await o.getByRole('button', { name: 'Buy for the team' }).click();
    await o.getByLabel('Card number').waitFor();
    const email = o.getByLabel('Email');
    if (await email.isEditable()) await email.fill(owner.email);
    await o.getByLabel('Card number').fill('4242 4242 4242 4242');
    await o.getByLabel(/^Expir/).fill('12 / 34');
    await o.getByLabel(/CVC/).fill('123');
    await o.getByLabel('Name on card').fill(owner.name);
    await Promise.all([o.waitForURL(/\/checkout\/success/), o.getByRole('button', { name: /^Pay / }).click()]);
    await expect
      .poll(async () => {
        await o.goto(teamUrl);
        return o.getByTestId('pool-available').textContent();
      }, { timeout: 30_000 })
      .toBe('100');

    // Gives the member a 5-credit daily budget.
    const budgets = o.locator('details', { has: o.locator('summary', { hasText: `Change ${member.name}'s role or budgets` }) });
    await budgets.locator('summary').click();
    await budgets.getByLabel('Daily budget (credits, blank = no limit)').fill('5');
    await Promise.all([o.waitForLoadState('load'), budgets.getByRole('button', { name: 'Save' }).click()]);
    await expect.poll(() => o.getByTestId('member').nth(1).textContent()).toMatch(/0 \/ 5/);

    // The member pays from the team on /tasks: upload, see the estimate, confirm.
    const runOnPage = async () => {
      await m.goto(`${baseUrl}/tasks`);
      await m.getByLabel('Pay from').selectOption({ label: 'Team Acme Scanning (within your budget)' });
      await m.locator('#file').setInputFiles(BLANK);
      await expect.poll(() => m.locator('[data-staged-wallet]').textContent()).toContain('Team Acme Scanning');
      await checkAccessibility(m);
      await m.locator('[data-confirm-submit]').click();
      await m.waitForLoadState('load');
    };
    await runOnPage();
    await m.waitForURL(/\/tasks\/[0-9a-f-]{36}$/);
    expect(await finished(m, m.url().split('/').pop()!)).toMatchObject({ status: 'completed', chargedCredits: 1 });
    // Three more one-credit jobs from a script of the member's (same session, the JSON API).
    for (let i = 0; i < 3; i++) {
      const staged = await (
        await m.request.post(`${baseUrl}/api/tasks/uploads`, {
          multipart: { wallet: `team:${teamUrl.split('/').pop()}`, file: { name: `blank-${i}.pdf`, mimeType: 'application/pdf', buffer: fs.readFileSync(BLANK) } },
        })
      ).json();
      const confirmed = await m.request.post(`${baseUrl}/api/tasks/uploads/${staged.upload.id}/confirm`);
      expect(confirmed.status()).toBe(202);
      expect(await finished(m, staged.upload.id)).toMatchObject({ status: 'completed', chargedCredits: 1 });
    }
    // 4 of 5 credits spent: the next job's estimate (1.5 held until it settles) would pass the budget.
    await runOnPage();
    await expect.poll(() => m.getByTestId('flash').textContent()).toContain('daily budget');
    await checkAccessibility(m);
    await screenshot(m, 'team-budget-refused-390-dark');

    // The owner sees it: the pool paid 4 credits, the member at 4 of 5 today, the chart and its table.
    await o.goto(teamUrl);
    expect(await o.getByTestId('pool-available').textContent()).toBe('96');
    expect(await o.getByTestId('member').nth(1).textContent()).toMatch(/4 \/ 5/);
    await o.locator('summary', { hasText: 'Usage as a table' }).click();
    expect(await o.getByTestId('usage-table').textContent()).toMatch(new RegExp(`${member.name}\\s*4`));
    await checkAccessibility(o);
    await screenshot(o, 'team-page-390-light');
  });

  it('creates an API key shown once, on a phone in dark mode', async () => {
    const p = await phone('dark');
    await signUp(p, newUser('team-key'));
    await p.goto(`${baseUrl}/account/keys`);
    await checkAccessibility(p);
    await p.getByLabel('Name').fill('Nightly import');
    await p.getByRole('button', { name: 'Create key' }).focus();
    await Promise.all([p.waitForLoadState('load'), p.keyboard.press('Enter')]);
    const secret = await p.getByLabel('API key', { exact: true }).inputValue();
    expect(secret).toMatch(/^tly_live_[0-9A-Za-z]{43}$/);
    expect(await p.getByTestId('api-key').count()).toBe(1);
    await checkAccessibility(p);
    await screenshot(p, 'api-keys-390-dark');
    await p.goto(`${baseUrl}/account/keys`);
    expect(await p.content()).not.toContain(secret);
  });
});
