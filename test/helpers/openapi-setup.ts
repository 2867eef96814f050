import { afterEach, expect } from 'vitest';
import { takeResponseViolations } from './openapi-responses.ts';

// Fails the test whose requests got a JSON response that does not match the OpenAPI document
// (see openapi-responses.ts). The fix is in the route's response schema (src/*/*-responses.ts)
// or in the response itself.
afterEach(() => {
  const violations = takeResponseViolations();
  expect(violations, `responses that do not match /api/openapi.json:\n${violations.map((v) => `  ${v.request} → ${v.status}: ${v.problem}`).join('\n')}`).toEqual([]);
});
