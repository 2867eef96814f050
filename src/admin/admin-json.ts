import type { WebhookProblem } from '../payments/payments-store.ts';
import type { AuditRecord } from '../auth/audit-log.ts';
import type { UserProfile } from '../auth/users-store.ts';
import { millicreditsToCredits } from '../ledger/credits.ts';
import type { Transfer } from '../ledger/ledger-types.ts';

/** JSON shapes of the admin API (credits, ISO timestamps). */

/** A user for the admin API: `{id, email, name, role, createdAt, lastLoginAt}`. */
export function profileJson(u: UserProfile) {
  return {
    id: u.id,
    email: u.email,
    name: u.name,
    role: u.role,
    createdAt: u.createdAt.toISOString(),
    lastLoginAt: u.lastLoginAt ? u.lastLoginAt.toISOString() : null,
  };
}

/** A transfer just written by an admin action (amount unsigned, in credits). */
export function adminTransferJson(t: Transfer) {
  return {
    id: t.id,
    kind: t.kind,
    amount: millicreditsToCredits(t.amount),
    reason: t.reason,
    actor: t.actor,
    reference: t.reference,
    createdAt: t.createdAt.toISOString(),
  };
}

/** An audit entry for the admin API. */
export function auditJson(r: AuditRecord) {
  return {
    id: r.id,
    createdAt: r.createdAt.toISOString(),
    actor: r.actor,
    actorUserId: r.actorUserId,
    actorEmail: r.actorEmail,
    action: r.action,
    target: r.target,
    ip: r.ip,
    userAgent: r.userAgent,
    details: r.details,
  };
}

/** One line of the auditor's JSONL export: the entry with its place in the hash chain. */
export function auditExportJson(r: AuditRecord) {
  return { ...auditJson(r), seq: r.seq, prevHash: r.prevHash, hash: r.hash };
}

/** JSON of a Stripe webhook delivery that could not be used (admins). */
export function webhookProblemJson(p: WebhookProblem) {
  return {
    id: p.id,
    receivedAt: p.receivedAt.toISOString(),
    eventId: p.eventId,
    eventType: p.eventType,
    problem: p.problem,
    detail: p.detail,
    statusCode: p.statusCode,
    payloadExcerpt: p.payloadExcerpt,
  };
}
