import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'packages/*/test/**/*.test.ts'],
    exclude: ['test/e2e/**', 'node_modules/**'],
    globalSetup: ['test/global-setup.ts'],
    // API responses are checked against the OpenAPI document (test/helpers/openapi-responses.ts).
    setupFiles: ['test/helpers/openapi-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // In CI, also a JSON report; .ci/run sums them into one 'N passed, N failed' line.
    reporters: process.env.CI ? ['default', 'json'] : ['default'],
    outputFile: { json: 'test-results/unit-tests.json' },
    env: { LOG_LEVEL: 'silent', NODE_ENV: 'test' },
  },
});
