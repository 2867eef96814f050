import type { TransferKind } from '../ledger/ledger-types.ts';

/**
 * Formatting for pages (EJS): dates in UTC, kinds in words, signed credits. Values shown with
 * `<%= %>` only, so everything stays HTML-escaped.
 */

const KIND_LABELS: Record<TransferKind, string> = {
  purchase: 'Purchase',
  signup_bonus: 'Sign-up bonus',
  bonus: 'Bonus',
  subscription_grant: 'Subscription',
  rollover: 'Rollover',
  adjustment: 'Adjustment',
  usage: 'Usage',
  refund_clawback: 'Refund',
  expiry: 'Expired',
  contribution: 'Team contribution',
  gift: 'Gift',
};

const dateFmt = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeZone: 'UTC' });
const dateTimeFmt = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeStyle: 'short', timeZone: 'UTC' });

const toDate = (d: Date | string) => (d instanceof Date ? d : new Date(d));

/** Passed to views as `fmt`. */
export const viewHelpers = {
  kindLabel: (kind: string) => KIND_LABELS[kind as TransferKind] ?? kind,
  /** `21 Dec 2026` (UTC). */
  date: (d: Date | string | null | undefined) => (d ? dateFmt.format(toDate(d)) : ''),
  /** `21 Dec 2026, 09:30` (UTC). */
  dateTime: (d: Date | string | null | undefined) => (d ? `${dateTimeFmt.format(toDate(d))} UTC` : ''),
  /**
   * `in 30 days`, `in 5 hours`, `expired`: rounded to the nearest unit, so a lot granted "for 30
   * days" a moment ago says 30, as the sign-up message does (not 29).
   */
  fromNow: (d: Date | string | null | undefined, now = new Date()) => {
    if (!d) return '';
    const ms = toDate(d).getTime() - now.getTime();
    if (ms <= 0) return 'expired';
    if (ms >= 36 * 3_600_000) {
      const days = Math.round(ms / 86_400_000);
      return `in ${days} days`;
    }
    const hours = Math.round(ms / 3_600_000);
    if (hours >= 1) return `in ${hours} hour${hours === 1 ? '' : 's'}`;
    return `in ${Math.max(1, Math.round(ms / 60_000))} min`;
  },
  /** Credits with a sign: `+10`, `-2.5`. */
  signed: (credits: number) => (credits > 0 ? `+${credits}` : String(credits)),
  /** `Firefox on Linux`-ish summary of a user agent, or the start of it. */
  device: (ua: string | null | undefined) => {
    if (!ua) return 'Unknown device';
    const browser = /Edg\//.test(ua) ? 'Edge' : /Firefox\//.test(ua) ? 'Firefox' : /Chrome\//.test(ua) ? 'Chrome' : /Safari\//.test(ua) ? 'Safari' : undefined;
    const os = /Windows/.test(ua) ? 'Windows' : /Android/.test(ua) ? 'Android' : /iPhone|iPad/.test(ua) ? 'iOS' : /Mac OS X/.test(ua) ? 'macOS' : /Linux/.test(ua) ? 'Linux' : undefined;
    if (browser && os) return `${browser} on ${os}`;
    return ua.length > 60 ? `${ua.slice(0, 60)}…` : ua;
  },
};
