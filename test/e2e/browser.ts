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

/**
 * Saves a full-page screenshot of the page as it is now to test-results/<name>.png, for people to
 * look at after a run. A screenshot is evidence, not a check: Chromium sometimes refuses one
 * ("Unable to capture screenshot", seen in CI under load while a page settles), so this waits for
 * the page to load, tries three times (the last one the viewport only), and then only warns.
 */
export async function screenshot(page: Page, name: string): Promise<void> {
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `${name}.png`);
  let lastError: unknown;
  for (let attempt = 1; attempt <= 3; attempt++) {
    try {
      await page.waitForLoadState('load');
      await page.screenshot({ path: file, fullPage: attempt < 3, timeout: 10_000 });
      return;
    } catch (error) {
      lastError = error;
      await page.waitForTimeout(250 * attempt);
    }
  }
  console.warn(`screenshot ${name} not saved: ${lastError instanceof Error ? lastError.message.split('\n')[0] : String(lastError)}`);
}

/** A fresh user's sign-up details. */
export function newUser(prefix = 'e2e') {
  const n = crypto.randomBytes(4).toString('hex');
  return { name: `Ada ${n}`, email: `${prefix}-${n}@example.test`, password: `long enough password ${n}` };
}

/**
 * The whole check of {@link pageProblems} on the page as it is now (axe-core WCAG 2.2 A/AA and
 * best practices, fits the viewport), plus exactly one h1.
 */
export async function checkAccessibility(page: Page): Promise<void> {
  // A page still settling (a stylesheet or a script's re-render late under load) can look wrong for
  // a moment; a real problem stays, so this asks again for up to 5 s and fails only if it persists.
  await page.waitForLoadState('load');
  await expect.poll(() => pageProblems(page), { message: `problems on ${page.url()}`, timeout: 5_000, interval: 500 }).toEqual([]);
  expect(await page.locator('h1').count(), `one h1 on ${page.url()}`).toBe(1);
}

/** axe-core tags every page must pass: WCAG 2.0–2.2 A and AA, and axe's best practices. */
export const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22a', 'wcag22aa', 'best-practice'];

/**
 * Everything wrong with the page as shown, as readable lines (empty when all is well): axe-core
 * violations for {@link AXE_TAGS}, a page wider than its viewport (sideways scrolling), a header
 * control or a table date broken over two lines, a scrollable table region that is not focusable.
 */
export async function pageProblems(page: Page): Promise<string[]> {
  if (!(await page.evaluate('typeof window.axe !== "undefined"'))) await page.evaluate(AXE_SOURCE);
  const result = (await page.evaluate(`axe.run(document, { runOnly: { type: 'tag', values: ${JSON.stringify(AXE_TAGS)} }, resultTypes: ['violations'] })`)) as {
    violations: Array<{ id: string; nodes: Array<{ target: string[]; failureSummary?: string }> }>;
  };
  const problems = result.violations.map((v) => `axe ${v.id}: ${v.nodes.map((n) => `${n.target.join(' ')} (${(n.failureSummary ?? '').replace(/\s+/g, ' ').slice(0, 160)})`).join('; ')}`);
  const layout = await page.evaluate(() => {
    const out: string[] = [];
    const doc = document.documentElement;
    if (doc.scrollWidth > window.innerWidth) {
      // Name the widest culprits: elements whose right edge is past the viewport.
      const wide = Array.from(document.querySelectorAll('body *'))
        .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1 && !el.closest('.table-wrap'))
        .slice(0, 3)
        .map((el) => `${el.tagName.toLowerCase()}${el.className ? '.' + String(el.className).split(' ').join('.') : ''}`);
      out.push(`page is ${doc.scrollWidth}px wide in a ${window.innerWidth}px viewport (${wide.join(', ')})`);
    }
    const oneLine = (el: Element) => {
      const style = getComputedStyle(el);
      const line = parseFloat(style.lineHeight) || parseFloat(style.fontSize) * 1.5;
      const pad = parseFloat(style.paddingTop) + parseFloat(style.paddingBottom) + parseFloat(style.borderTopWidth) + parseFloat(style.borderBottomWidth);
      return el.getBoundingClientRect().height - pad < line * 1.8;
    };
    for (const el of Array.from(document.querySelectorAll('header a, header button, header summary'))) {
      if ((el as HTMLElement).offsetParent !== null && !oneLine(el)) out.push(`header control wraps: "${el.textContent?.trim()}"`);
    }
    for (const el of Array.from(document.querySelectorAll('td time, td .date'))) {
      if (el.getClientRects().length > 1) out.push(`table date wraps: "${el.textContent?.trim()}"`);
    }
    // A date in a table cell outside <time> escapes the check above: name it.
    for (const td of Array.from(document.querySelectorAll('td'))) {
      if (/\d{1,2} [A-Z][a-z]{2} \d{4}/.test(td.textContent ?? '') && !td.querySelector('time') && !td.querySelector('a')) {
        out.push(`table date not in <time>: "${td.textContent?.trim().slice(0, 40)}"`);
      }
    }
    for (const el of Array.from(document.querySelectorAll('.table-wrap'))) {
      if (el.scrollWidth > el.clientWidth && (el.getAttribute('tabindex') !== '0' || !el.getAttribute('aria-label'))) {
        out.push('scrollable table region is not focusable with a label');
      }
    }
    return out;
  });
  return [...problems, ...layout];
}

/**
 * Asserts that the focused element shows it: an outline or a box-shadow that is not `none`
 * (WCAG 2.4.7). Returns a short description of the element, for the journey's log.
 */
export async function expectVisibleFocus(page: Page): Promise<string> {
  const focus = await page.evaluate(() => {
    const el = document.activeElement as HTMLElement | null;
    if (!el || el === document.body) return { name: 'nothing', visible: false };
    const style = getComputedStyle(el);
    const outline = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0;
    const shadow = style.boxShadow !== 'none' && style.boxShadow !== '';
    const name = `${el.tagName.toLowerCase()} "${(el.getAttribute('aria-label') ?? el.textContent ?? (el as HTMLInputElement).name ?? '').trim().slice(0, 40)}"`;
    return { name, visible: outline || shadow };
  });
  expect(focus.visible, `visible focus on ${focus.name} at ${page.url()}`).toBe(true);
  return focus.name;
}

/** Presses Tab until the focused element matches `selector` (at most `max` presses), checking focus is visible there. */
export async function tabTo(page: Page, selector: string, max = 40): Promise<void> {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    if (await page.evaluate((sel) => document.activeElement?.matches(sel) ?? false, selector)) {
      await expectVisibleFocus(page);
      return;
    }
  }
  throw new Error(`Tab never reached ${selector} on ${page.url()}`);
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
