import { z } from 'zod';
import { BalanceJson, Credits, DateTime, LotJson, ReferenceJson, TransferJson } from '../credits/credits-responses.ts';

/** zod schemas of the admin JSON the API returns (admin-json.ts), for the OpenAPI document. */

export const ProfileJson = z
  .object({ id: z.uuid(), email: z.string(), name: z.string(), role: z.enum(['user', 'admin']), createdAt: DateTime, lastLoginAt: DateTime.nullable() })
  .meta({ id: 'UserProfile' });

export const AdminTransferJson = z.object({
  id: z.string(),
  kind: z.string(),
  amount: Credits.describe('Unsigned credits'),
  reason: z.string().nullable(),
  actor: z.string(),
  reference: ReferenceJson.nullable(),
  createdAt: DateTime,
});

export const AuditEntryJson = z
  .object({
    id: z.string(),
    createdAt: DateTime,
    actor: z.string(),
    actorUserId: z.string().nullable(),
    actorEmail: z.string().nullable(),
    action: z.string(),
    target: z.object({ type: z.string(), id: z.string() }).nullable(),
    ip: z.string().nullable(),
    userAgent: z.string().nullable(),
    details: z.record(z.string(), z.unknown()),
  })
  .meta({ id: 'AuditEntry' });

export const WebhookProblemJson = z.object({
  id: z.string(),
  receivedAt: DateTime,
  eventId: z.string().nullable(),
  eventType: z.string().nullable(),
  problem: z.string(),
  detail: z.string(),
  statusCode: z.number().int(),
  payloadExcerpt: z.string(),
});

export const UsersPage = z.object({ users: z.array(ProfileJson), nextCursor: z.string().nullable() });
export const UserDetailResponse = z.object({ user: ProfileJson, balance: BalanceJson, transfers: z.array(TransferJson), nextCursor: z.string().nullable() });
export const GrantResponse = z.object({ transfer: AdminTransferJson, lot: LotJson, balance: BalanceJson });
export const AdjustmentResponse = z.object({ transfer: AdminTransferJson, balance: BalanceJson });
export const AuditPage = z.object({ entries: z.array(AuditEntryJson), nextCursor: z.string().nullable() });
export const WebhookProblemsPage = z.object({ problems: z.array(WebhookProblemJson), nextCursor: z.string().nullable() });
export const LedgerCheckResponse = z.object({ ok: z.boolean(), violations: z.array(z.object({ invariant: z.string(), detail: z.string() }).loose()) });
