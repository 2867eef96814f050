import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { browser, signedInAdmin, signedInUser } from '../auth/auth-helpers.ts';

// The shell every page inherits (issue 10): favicon, skip link, a menu that works without script,
// no CSRF token in any URL, one date format.
let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp();
});
afterAll(async () => t.close());

const PAGES = { visitor: ['/', '/signup', '/login', '/pricing'], user: ['/', '/pricing', '/tasks', '/account'], admin: ['/admin', '/admin/audit'] };

describe('the page shell', () => {
  it('serves /favicon.ico (an icon, not a 404) and /favicon.svg, and every page links them', async () => {
    const ico = await browser(t.app).get('/favicon.ico').expect(200);
    expect(ico.headers['content-type']).toMatch(/image\/(x-icon|vnd\.microsoft\.icon)/);
    expect(ico.body.subarray(0, 4)).toEqual(Buffer.from([0, 0, 1, 0])); // the ICO header
    const svg = await browser(t.app).get('/favicon.svg').expect(200);
    expect(svg.headers['content-type']).toMatch(/image\/svg\+xml/);
    expect((await browser(t.app).get('/').expect(200)).text).toContain('<link rel="icon" href="/favicon.ico"');
  });

  it('gives every page, signed out, signed in and admin, a skip link to <main>, a keyboard-operable Menu and no token in a URL', async () => {
    const user = (await signedInUser(t.app)).agent;
    const admin = (await signedInAdmin(t.app, t.t.db)).agent;
    const runs: Array<[ReturnType<typeof browser>, string[]]> = [
      [browser(t.app), PAGES.visitor],
      [user, PAGES.user],
      [admin, PAGES.admin],
    ];
    for (const [agent, paths] of runs) {
      for (const path of paths) {
        const page = await agent.get(path).expect(200);
        expect(page.text, path).toContain('<a href="#main" class="skip-link">Skip to content</a>');
        expect(page.text, path).toContain('<main class="container" id="main" tabindex="-1">');
        // A <details>/<summary> disclosure: opens with Enter or Space, no script needed.
        expect(page.text, path).toMatch(/<details class="site-menu narrow-only">\s*<summary>Menu<\/summary>\s*<nav aria-label="Main">/);
        expect(page.text, path).not.toContain('_csrf=');
        // One date format: no toUTCString / toLocaleDateString leftovers ("Mon, 30 Nov 2026 …", "30/11/2026").
        expect(page.text, path).not.toMatch(/\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} \w{3} \d{4}|\d{2}\/\d{2}\/\d{4}/);
      }
    }
  });

  it('names the pricing buttons by their visible text (WCAG 2.5.3)', async () => {
    const { agent } = await signedInUser(t.app);
    const page = (await agent.get('/pricing').expect(200)).text;
    const buttons = [...page.matchAll(/<button type="submit"([^>]*)>([^<]+)<\/button>/g)].filter((m) => m[2]!.startsWith('Buy '));
    expect(buttons.map((m) => m[2])).toEqual(['Buy Starter', 'Buy Professional', 'Buy Enterprise']);
    for (const m of buttons) expect(m[1]).not.toContain('aria-label');
  });
});
