import { describe, expect, it } from 'vitest';
import { creditsToMillicredits, formatCredits, millicreditsToCredits } from '../../src/ledger/credits.ts';

describe('credits ⇄ millicredits', () => {
  it('converts credits with up to 3 decimals exactly', () => {
    expect(creditsToMillicredits(1.5)).toBe(1500);
    expect(creditsToMillicredits('0.001')).toBe(1);
    expect(creditsToMillicredits(0.1 + 0.2 === 0.3 ? 1 : 8.5)).toBe(8500);
    expect(creditsToMillicredits(10)).toBe(10_000);
    expect(creditsToMillicredits('-2.25', { allowNegative: true })).toBe(-2250);
  });

  it('rejects NaN, Infinity, too many decimals, exponents, negatives, zero and values above 2^53', () => {
    for (const bad of [Number.NaN, Infinity, -Infinity, 1.0005, '1.0005', 1e21, '1e3', '', 'abc', -1, 0, 2 ** 53]) {
      expect(() => creditsToMillicredits(bad as number)).toThrow(/not a valid amount/);
    }
    expect(creditsToMillicredits(0, { allowZero: true })).toBe(0);
  });

  it('formats millicredits back to credits', () => {
    expect(millicreditsToCredits(8500)).toBe(8.5);
    expect(millicreditsToCredits(1)).toBe(0.001);
    expect(millicreditsToCredits(-250)).toBe(-0.25);
    expect(formatCredits(10_000)).toBe('10');
    expect(() => millicreditsToCredits(1.5)).toThrow();
  });
});
