import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { domainProblem } from '../../src/http/domain-problems.ts';
import {
  AccountNotFoundError,
  BalanceLimitError,
  HoldNotFoundError,
  HoldStateError,
  IdempotencyConflictError,
  InsufficientCreditsError,
  LEDGER_ERROR_CODES,
  LotNotFoundError,
  SpendCapExceededError,
} from '../../src/ledger/ledger-errors.ts';

describe('domain errors → problem+json', () => {
  it('maps every ledger error code to its status, keeping detail and data', () => {
    const cases = [
      [new InsufficientCreditsError(3000, 2000, { topUpUrl: '/pricing' }), 402],
      [new IdempotencyConflictError('Transfer', 't1'), 409],
      [new HoldStateError('h1', 'voided'), 409],
      [new HoldNotFoundError(), 404],
      [new LotNotFoundError(), 404],
      [new AccountNotFoundError(), 404],
      [new BalanceLimitError(9_000_000_000_000_000, 1_000_000), 409],
      [new SpendCapExceededError('daily', 10_000, 4_000, 5_000, new Date('2026-12-01T00:00:00Z'), 2_000), 403],
    ] as const;
    expect(cases.map(([e]) => e.code).sort()).toEqual([...LEDGER_ERROR_CODES].sort());
    for (const [err, status] of cases) {
      const problem = domainProblem(err);
      expect(problem).toMatchObject({ status, code: err.code, detail: err.detail });
    }
    expect(domainProblem(cases[0][0]).extensions).toEqual({ required: 3, available: 2, topUpUrl: '/pricing' });
  });

  it('the ledger imports nothing from the web layer', () => {
    const dir = path.resolve('src/ledger');
    for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
      const source = fs.readFileSync(path.join(dir, file), 'utf8');
      expect(source, file).not.toMatch(/from '\.\.\/http\//);
      expect(source, file).not.toMatch(/from 'express'/);
    }
  });
});
