import { describe, expect, it } from 'vitest';
import { decimalPattern, formatMoney, formatUnitPrice, minorDigits, parseMoney, toDecimal } from '../src/index.ts';

describe('money in minor units', () => {
  it('knows each currency’s decimals: JPY 0, USD 2, BHD 3', () => {
    expect([minorDigits('jpy'), minorDigits('usd'), minorDigits('BHD')]).toEqual([0, 2, 3]);
  });

  it('formats USD, JPY and BHD exactly, never as cents / 100', () => {
    expect(formatMoney(500, 'usd')).toBe('$5.00');
    expect(formatMoney(2050, 'usd')).toBe('$20.50');
    expect(formatMoney(99_999_999, 'eur')).toBe('€999,999.99');
    expect(formatMoney(500, 'jpy')).toBe('¥500');
    expect(formatMoney(1_234_567, 'jpy')).toBe('¥1,234,567');
    expect(formatMoney(1500, 'bhd').replace(/\s/g, ' ')).toBe('BHD 1.500');
    expect(formatMoney(5, 'bhd').replace(/\s/g, ' ')).toBe('BHD 0.005');
    expect(formatMoney(-125, 'usd')).toBe('-$1.25');
    // Beyond what a double holds exactly as a decimal fraction:
    expect(formatMoney(9_007_199_254_740_991, 'usd')).toBe('$90,071,992,547,409.91');
  });

  it('formats a per-credit price with one decimal more than the currency', () => {
    expect(formatUnitPrice(500, 100_000, 'usd')).toBe('$0.050');
    expect(formatUnitPrice(2000, 525_000, 'usd')).toBe('$0.038');
    expect(formatUnitPrice(500, 100_000, 'jpy')).toBe('¥5.0');
    expect(formatUnitPrice(1500, 100_000, 'bhd').replace(/\s/g, ' ')).toBe('BHD 0.0150');
  });

  it('writes amounts for form fields, and the pattern that accepts them', () => {
    expect([toDecimal(500, 'usd'), toDecimal(500, 'jpy'), toDecimal(1005, 'bhd'), toDecimal(7, 'usd')]).toEqual(['5.00', '500', '1.005', '0.07']);
    expect([decimalPattern('usd'), decimalPattern('jpy'), decimalPattern('bhd')]).toEqual(['\\d+(\\.\\d{1,2})?', '\\d+', '\\d+(\\.\\d{1,3})?']);
  });

  it('parses amounts people type, with the currency’s decimals', () => {
    expect(parseMoney('5', 'usd')).toBe(500);
    expect(parseMoney('5.5', 'usd')).toBe(550);
    expect(parseMoney(' 5.00 ', 'usd')).toBe(500);
    expect(parseMoney('', 'usd')).toBeUndefined();
    expect(parseMoney('500', 'jpy')).toBe(500);
    expect(parseMoney('1.005', 'bhd')).toBe(1005);
    expect(() => parseMoney('5.5', 'jpy')).toThrow(/whole amount/);
    expect(() => parseMoney('5.001', 'usd')).toThrow(/like 5 or 5.00/);
    expect(() => parseMoney('-5', 'usd')).toThrow();
    expect(() => parseMoney('1e3', 'usd')).toThrow();
  });
});
