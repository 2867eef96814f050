import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import crypto from 'node:crypto';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, expect } from 'vitest';

const require = createRequire(import.meta.url);
const AXE_SOURCE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
export const RESULTS_DIR = path.join(process.cwd(), 'test-results');

/** Debian's Chromium, headless, with the flags this machine needs (no sandbox as root, no background network). */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

/** Saves a full-page screenshot of the journey's last page to test-results/<name>.png. */
export async function screenshot(page: Page, name: string): Promise<void> {
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  await page.screenshot({ path: path.join(RESULTS_DIR, `${name}.png`), fullPage: true });
}

/** A fresh user's sign-up details. */
export function newUser(prefix = 'e2e') {
  const n = crypto.randomBytes(4).toString('hex');
  return { name: `Ada ${n}`, email: `${prefix}-${n}@example.test`, password: `long enough password ${n}` };
}

/**
 * Accessibility basics on the current page, checked with axe-core: every form field has a label,
 * the page has exactly one h1, plus axe's other WCAG A/AA rules that apply to forms and headings.
 */
export async function checkAccessibility(page: Page): Promise<void> {
  await page.evaluate(AXE_SOURCE);
  const result = (await page.evaluate(`axe.run(document, { runOnly: { type: 'rule', values: ['label', 'page-has-heading-one', 'button-name', 'link-name', 'document-title', 'html-has-lang', 'select-name', 'duplicate-id-active'] } })`)) as {
    violations: Array<{ id: string; nodes: Array<{ target: string[] }> }>;
  };
  const violations = result.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  expect(violations, `accessibility violations on ${page.url()}`).toEqual([]);
  expect(await page.locator('h1').count(), `one h1 on ${page.url()}`).toBe(1);
}

/** The available balance shown in the page header, as a number of credits. */
export async function headerBalance(page: Page): Promise<number> {
  const text = await page.locator('[data-testid="header-balance"] [data-balance]').textContent();
  return Number(text?.trim());
}

/**
 * Registers the hooks of a journey file: one browser for the file, a fresh context (cookies,
 * storage) and page for each test. Returns a getter for the current page.
 */
export function usePage(viewport = { width: 1200, height: 900 }): () => Page {
  let browser: Browser | undefined;
  let context: BrowserContext | undefined;
  let page: Page | undefined;
  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterAll(async () => browser?.close());
  beforeEach(async () => {
    context = await browser!.newContext({ viewport });
    page = await context.newPage();
  });
  afterEach(async () => context?.close());
  return () => page!;
}
