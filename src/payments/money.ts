/**
 * Formats integer minor units for people: `formatMoney(500, 'usd')` → `$5.00`. Display only;
 * amounts are stored and compared as integer cents.
 */
export function formatMoney(cents: number, currency: string): string {
  return new Intl.NumberFormat('en-US', { style: 'currency', currency: currency.toUpperCase() }).format(cents / 100);
}

/**
 * Price per credit for display (`$0.050`), from cents and millicredits, with 3 decimals of the
 * currency unit. Display only.
 */
export function formatPricePerCredit(cents: number, millicredits: number, currency: string): string {
  const perCredit = (cents * 1000) / millicredits / 100;
  return new Intl.NumberFormat('en-US', { style: 'currency', currency: currency.toUpperCase(), minimumFractionDigits: 3, maximumFractionDigits: 3 }).format(perCredit);
}
