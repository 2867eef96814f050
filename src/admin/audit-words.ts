import { formatCredits, millicreditsToCredits } from '../ledger/credits.ts';
import { formatMoney } from '@tally/money';
import { viewHelpers } from '../credits/view-helpers.ts';

/**
 * Audit entries and ledger actors in words, for the admin pages: people read "Signed up · 10 free
 * credits", "Ada Lovelace (ada@example.com)" and "Stripe", never `signupBonusMillicredits: 10000`
 * or `admin:<uuid>` (issue 10). The JSON API keeps the stored fields as they are.
 */

/** What an admin page needs to know of an audit entry. */
export interface AuditLike {
  actor: string;
  actorEmail?: string | null;
  action: string;
  details: Record<string, unknown>;
}

/** A name for the people an actor string may refer to: `user:<id>` / `admin:<id>` → name and email. */
export type PeopleById = ReadonlyMap<string, { name: string; email: string }>;

const str = (v: unknown) => (typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v));
const num = (v: unknown) => (typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v)) ? Number(v) : undefined);
const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** The user ids an actor string names (`user:<id>`, `admin:<id>`), for a lookup of names. */
export function actorUserId(actor: string): string | undefined {
  return /^(?:user|admin):([0-9a-f-]{36})$/i.exec(actor)?.[1];
}

/**
 * Who did it, in words: a person's name and email, "System", "Stripe", or the raw actor when
 * nothing better is known. `emailHint` is the email an audit row joined for its actor.
 */
export function actorLabel(actor: string, people: PeopleById = new Map(), emailHint?: string | null): string {
  if (actor === 'system') return 'System';
  if (actor.startsWith('stripe')) return 'Stripe';
  const id = actorUserId(actor);
  const person = id ? people.get(id) : undefined;
  const role = actor.startsWith('admin:') ? ' (admin)' : '';
  if (person) return `${person.name} <${person.email}>${role}`;
  if (emailHint) return `${emailHint}${role}`;
  return id ? `A deleted user${role}` : actor;
}

/** The action as a short sentence. */
export function actionLabel(entry: AuditLike): string {
  const d = entry.details;
  switch (entry.action) {
    case 'auth.signup':
      return 'Signed up';
    case 'auth.login':
      return 'Logged in';
    case 'auth.logout':
      return 'Logged out';
    case 'auth.login_failed':
      return 'Failed to log in';
    case 'auth.sessions_revoked':
      return d.scope === 'one' ? 'Signed out one session' : `Signed out ${plural(num(d.revoked) ?? 0, 'other session')}`;
    case 'admin.user_created':
      return 'Admin account created';
    case 'admin.user_promoted':
      return 'Made an admin';
    case 'admin.credits_granted':
      return `Granted ${str(d.credits)} credits`;
    case 'admin.credits_adjusted': {
      const n = num(d.credits) ?? 0;
      return `Adjusted the balance by ${n > 0 ? '+' : ''}${n} credits`;
    }
    case 'admin.payment_refunded':
      return 'Refunded a payment';
    // issue 19: recorded by the database and the privacy feature
    case 'ledger.transfer':
      return `Credits moved (${str(d.kind).replace(/_/g, ' ')})`;
    case 'job.attempt':
      return `Job started (attempt ${str(d.attempt)})`;
    case 'job.succeeded':
      return 'Job finished';
    case 'job.failed':
      return 'Job failed';
    case 'credits.refused':
      return 'Refused: not enough credits';
    case 'admin.user_viewed':
      return "Viewed a user's data";
    case 'admin.audit_exported':
      return 'Exported the audit log';
    case 'privacy.export_requested':
      return 'Asked for a data export';
    case 'privacy.export_ready':
      return 'Data export ready';
    case 'privacy.export_downloaded':
      return 'Downloaded a data export';
    case 'privacy.deletion_requested':
      return 'Asked for the account to be deleted';
    case 'privacy.deletion_cancelled':
      return 'Cancelled the account deletion';
    case 'privacy.erasure_step':
      return `Erasure: ${str(d.step).replace(/_/g, ' ')}`;
    case 'privacy.erased':
      return 'Account erased';
    case 'team.owner_promoted':
      return d.reason === 'only_owner_erased' ? "Made a team's owner (its only owner's account was erased)" : "Made a team's owner";
    case 'retention.swept':
      return 'Old data deleted (retention)';
    case 'retention.audit_pruned':
      return 'Old audit entries deleted (retention)';
    default: {
      const [area, verb = area] = entry.action.split('.');
      const words = (verb ?? '').replace(/_/g, ' ');
      return `${words.charAt(0).toUpperCase()}${words.slice(1)}${area && area !== verb ? ` (${area})` : ''}`;
    }
  }
}

/** The details worth reading, as "Label: value" lines; internal ids and field names left out. */
export function detailLines(entry: AuditLike, currency = 'usd'): string[] {
  const d = entry.details;
  const lines: string[] = [];
  const email = str(d.email);
  switch (entry.action) {
    case 'auth.signup': {
      if (email) lines.push(`Email: ${email}`);
      const bonus = num(d.signupBonusMillicredits);
      if (bonus !== undefined && bonus > 0) lines.push(`Free credits: ${formatCredits(bonus)}`);
      break;
    }
    case 'auth.login_failed':
      if (email) lines.push(`Email: ${email}`);
      if (d.reason) lines.push(`Why: ${d.reason === 'wrong_password' ? 'wrong password' : d.reason === 'unknown_email' ? 'no account with this email' : str(d.reason).replace(/_/g, ' ')}`);
      break;
    case 'admin.user_created':
    case 'admin.user_promoted':
      if (email) lines.push(`Email: ${email}`);
      if (d.from) lines.push(`Was: ${str(d.from)}`);
      break;
    case 'admin.credits_granted':
    case 'admin.credits_adjusted':
      if (email) lines.push(`For: ${email}`);
      if (d.reason) lines.push(`Reason: ${str(d.reason)}`);
      if (d.expiresAt) lines.push(`Expires: ${viewHelpers.date(str(d.expiresAt))}`);
      break;
    case 'ledger.transfer': {
      const amount = num(d.amount);
      if (amount !== undefined) lines.push(`Amount: ${formatCredits(amount)} credits`);
      lines.push(`From: ${str(d.debitAccount) === 'user' ? 'the user' : str(d.debitAccount)} · To: ${str(d.creditAccount) === 'user' ? 'the user' : str(d.creditAccount)}`);
      break;
    }
    case 'credits.refused': {
      const required = num(d.requiredMillicredits);
      const available = num(d.availableMillicredits);
      if (required !== undefined) lines.push(`Needed: ${formatCredits(required)} credits`);
      if (available !== undefined) lines.push(`Available: ${formatCredits(available)} credits`);
      if (d.path) lines.push(`Where: ${str(d.method)} ${str(d.path)}`);
      break;
    }
    case 'privacy.erased':
    case 'privacy.deletion_requested':
      // the date it is due is in the entry's JSON; a table cell's dates belong in <time> (pages audit)
      if (d.reason) lines.push(`Reason: ${str(d.reason)}`);
      break;
    case 'team.owner_promoted':
      if (d.teamName) lines.push(`Team: ${str(d.teamName)}`);
      if (d.from) lines.push(`Was: ${str(d.from)}`);
      break;
    case 'admin.payment_refunded': {
      const cents = num(d.amountCents);
      if (cents !== undefined) lines.push(`Amount: ${formatMoney(cents, str(d.currency) || currency)}`);
      if (email) lines.push(`For: ${email}`);
      break;
    }
    default:
      for (const [key, value] of Object.entries(d)) {
        if (/id$/i.test(key) || value === null || typeof value === 'object') continue;
        const label = key.replace(/Millicredits$/, '').replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
        const shown = /millicredits$/i.test(key) && num(value) !== undefined ? `${millicreditsToCredits(num(value)!)} credits` : str(value);
        lines.push(`${label.charAt(0).toUpperCase()}${label.slice(1)}: ${shown}`);
      }
  }
  return lines;
}

/** Passed to admin views as `words`. */
export const auditWords = { actorLabel, actionLabel, detailLines };
