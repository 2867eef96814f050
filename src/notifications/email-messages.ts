import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ejs from 'ejs';

const EMAIL_VIEWS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../views/emails');

/**
 * Which preference governs a message (`/account/settings`). `security` messages (password reset,
 * password changed, email verification, a disabled webhook endpoint) always go.
 */
export type EmailCategory = 'receipts' | 'low_balance' | 'expiring_credits' | 'jobs' | 'security';

/** Every email Tally sends, with the data its templates get. Amounts are already formatted for people. */
export interface EmailData {
  receipt: { name: string; packName: string; credits: string; bonusCredits: string | null; amount: string; card: string | null; paidAt: string; receiptUrl: string };
  refund: { name: string; packName: string; amount: string; total: string; credits: string; receiptUrl: string };
  password_reset: { name: string; resetUrl: string; minutes: number };
  password_changed: { name: string; when: string; forgotUrl: string };
  email_verification: { name: string; verifyUrl: string };
  low_balance: { name: string; threshold: string; available: string; buyUrl: string; settingsUrl: string };
  credits_expiring: { name: string; credits: string; expiresAt: string; accountUrl: string; settingsUrl: string };
  job_finished: { name: string; fileName: string; credits: string; taskUrl: string; settingsUrl: string };
  job_failed: { name: string; fileName: string; reason: string; taskUrl: string; settingsUrl: string };
  webhook_endpoint_disabled: { name: string; url: string; since: string; webhooksUrl: string };
  team_invitation: { teamName: string; inviterName: string; role: string; acceptUrl: string; expiresAt: string };
  spend_cap_reached: { name: string; cap: string; threshold: number; limit: string; used: string; limitsUrl: string; settingsUrl: string };
  auto_recharge: { name: string; subject: string; body: string; link: string | null; linkText: string | null; settingsUrl: string };
  subscription_renewal: { name: string; planName: string; amount: string; credits: string; rolloverCredits: string | null; periodEnd: string; invoiceNumber: string; accountUrl: string };
  subscription_payment_failed: { name: string; planName: string; amount: string; nextAttempt: string | null; fixCardUrl: string };
  account_export_ready: { name: string; downloadUrl: string; expiresAt: string };
}

export type EmailType = keyof EmailData;

/** Subject line and preference category of each message type. */
export const EMAIL_TYPES: { [T in EmailType]: { category: EmailCategory; subject: (d: EmailData[T]) => string } } = {
  receipt: { category: 'receipts', subject: (d) => `Your Tally receipt: ${d.packName} (${d.amount})` },
  refund: { category: 'receipts', subject: (d) => `Refund of ${d.amount} for ${d.packName}` },
  password_reset: { category: 'security', subject: () => 'Reset your Tally password' },
  password_changed: { category: 'security', subject: () => 'Your Tally password was changed' },
  email_verification: { category: 'security', subject: () => 'Confirm your email address for Tally' },
  low_balance: { category: 'low_balance', subject: (d) => `Your Tally balance is low: ${d.available} credits left` },
  credits_expiring: { category: 'expiring_credits', subject: (d) => `${d.credits} Tally credits expire on ${d.expiresAt}` },
  job_finished: { category: 'jobs', subject: (d) => `Finished: ${d.fileName}` },
  job_failed: { category: 'jobs', subject: (d) => `Failed: ${d.fileName}` },
  webhook_endpoint_disabled: { category: 'security', subject: () => 'A Tally webhook endpoint was disabled' },
  team_invitation: { category: 'security', subject: (d) => `${d.inviterName} invited you to ${d.teamName} on Tally` },
  // Spend controls (issue 14): cap alerts go with balance alerts; recharges are payments, like receipts.
  spend_cap_reached: { category: 'low_balance', subject: (d) => `You have used ${d.threshold}% of your ${d.cap} spending cap` },
  auto_recharge: { category: 'receipts', subject: (d) => d.subject },
  subscription_renewal: { category: 'receipts', subject: (d) => `Your Tally ${d.planName} renewal: ${d.amount}` },
  // A failed payment stops the user's credits: it always goes, like security messages.
  subscription_payment_failed: { category: 'security', subject: (d) => `Your ${d.planName} payment failed: update your card` },
  // The user asked for it (GDPR Art. 15): it always goes.
  account_export_ready: { category: 'security', subject: () => 'Your Tally data export is ready' },
};

export interface RenderedEmail {
  subject: string;
  text: string;
  html: string;
}

/**
 * Renders one message from `views/emails/<type>.text.ejs` and `<type>.html.ejs` with the same
 * data (EJS escapes `<%= %>` in HTML; the text template is plain). Throws if a template is missing.
 */
export async function renderEmail<T extends EmailType>(type: T, data: EmailData[T]): Promise<RenderedEmail> {
  const locals = { ...data, subject: EMAIL_TYPES[type].subject(data) };
  const [text, html] = await Promise.all([
    ejs.renderFile(path.join(EMAIL_VIEWS, `${type}.text.ejs`), locals, { escape: (s: unknown) => String(s ?? '') }),
    ejs.renderFile(path.join(EMAIL_VIEWS, `${type}.html.ejs`), locals),
  ]);
  return { subject: locals.subject, text: text.trim() + '\n', html };
}
