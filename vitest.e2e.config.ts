import { defineConfig } from 'vitest/config';

/** `npm run test:e2e`: browser journeys in Debian's Chromium against `npm start` on free ports. */
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.e2e.test.ts'],
    globalSetup: ['test/e2e/e2e-setup.ts'],
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 180_000,
    pool: 'forks',
    // expect.poll's default (1 s) is too short for a page that waits on a server under load (CI
    // runs on 2 cores); a journey that is really stuck still fails, after 20 s.
    expect: { poll: { timeout: 20_000, interval: 100 } },
    // In CI, also a JSON report; .ci/run sums them into one 'N passed, N failed' line.
    reporters: process.env.CI ? ['default', 'json'] : ['default'],
    outputFile: { json: 'test-results/e2e-tests.json' },
  },
});
