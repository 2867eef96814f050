import { expect, inject, it } from 'vitest';
import { pageProblems, screenshot, usePage } from './browser.ts';

/**
 * /api/docs: Swagger UI (third-party, served from node_modules) on the OpenAPI document. It must
 * load offline under the app's CSP without a console error, have a title and a language, and pass
 * axe like our own pages (public/api-docs.css and public/api-docs.js fix Swagger UI's contrast,
 * landmarks and headings).
 */

const baseUrl = inject('baseUrl');
const page = usePage({ width: 1280, height: 900 });

it('/api/docs shows every operation of the document, offline, with no console error', async () => {
  const p = page();
  const errors: string[] = [];
  p.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  p.on('pageerror', (e) => errors.push(e.message));
  p.on('requestfailed', (r) => errors.push(`request failed: ${r.url()}`));
  await p.route((url) => !url.href.startsWith(baseUrl), (route) => {
    errors.push(`off-site request: ${route.request().url()}`);
    return route.abort();
  });
  await p.goto(`${baseUrl}/api/docs`);
  const doc = (await (await p.request.get(`${baseUrl}/api/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
  const operations = Object.values(doc.paths).reduce((n, item) => n + Object.keys(item).length, 0);
  await expect.poll(() => p.locator('.opblock').count(), { timeout: 30_000 }).toBe(operations);
  expect(await p.title()).toBe('Tally API documentation');
  expect(await p.getAttribute('html', 'lang')).toBe('en');
  await p.locator('.opblock-summary-control').first().click(); // expand one operation
  await expect.poll(() => p.locator('.opblock-body').count()).toBeGreaterThan(0);
  await screenshot(p, 'api-docs');
  expect(errors).toEqual([]);
  // axe (WCAG 2.2 AA, best practices) with public/api-docs.css and the landmarks of public/api-docs.js.
  expect(await pageProblems(p)).toEqual([]);
  await p.setViewportSize({ width: 390, height: 844 });
  expect(await pageProblems(p)).toEqual([]);
});
