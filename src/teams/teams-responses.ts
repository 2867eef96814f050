import { z } from 'zod';
import { BalanceJson, Credits, DateTime } from '../credits/credits-responses.ts';

/** zod schemas of the teams and API-keys JSON the API returns, for the OpenAPI document. */

const TeamRole = z.enum(['owner', 'admin', 'member']);

export const TeamJson = z.object({ id: z.uuid(), name: z.string(), createdAt: DateTime, role: TeamRole });

export const MemberJson = z.object({
  userId: z.uuid(),
  name: z.string(),
  email: z.string(),
  role: TeamRole,
  budgets: z.object({ daily: Credits.nullable(), monthly: Credits.nullable(), perJob: Credits.nullable() }),
  spent: z.object({ today: Credits.nullable(), thisMonth: Credits.nullable() }),
  held: z.object({ today: Credits.nullable(), thisMonth: Credits.nullable() }),
  joinedAt: DateTime,
  removedAt: DateTime.nullable(),
});

export const TeamResponse = z.object({ team: TeamJson });
export const TeamsResponse = z.object({ teams: z.array(TeamJson) });
export const TeamDetailResponse = z.object({ team: TeamJson, balance: BalanceJson, members: z.array(MemberJson) });
export const TeamTransfersResponse = z.object({
  transfers: z.array(
    z.object({
      id: z.string(),
      kind: z.string(),
      amount: Credits.describe('Signed: positive came into the pool'),
      reason: z.string().nullable(),
      createdAt: DateTime,
      memberId: z.string().nullable(),
      memberName: z.string().nullable(),
      keyName: z.string().nullable(),
    }),
  ),
});
export const InvitationResponse = z.object({ invitation: z.object({ id: z.string(), email: z.string(), role: TeamRole, expiresAt: DateTime }) });
export const ContributionResponse = z.object({
  contribution: z.object({
    credits: Credits,
    createdAt: DateTime,
    parts: z.array(z.object({ transferId: z.string(), credits: Credits, expiresAt: DateTime.nullable() })),
  }),
});
export const WalletResponse = z.object({ wallet: z.string() });

export const ApiKeyJson = z.object({
  id: z.uuid(),
  name: z.string(),
  prefix: z.string(),
  team: z.object({ id: z.uuid(), name: z.string().nullable() }).nullable(),
  scopes: z.array(z.string()),
  monthlyCreditLimit: Credits.nullable(),
  rateLimitPerMinute: z.number().int().nullable(),
  createdAt: DateTime,
  lastUsedAt: DateTime.nullable(),
  revokedAt: DateTime.nullable(),
  spentThisMonth: Credits,
});
export const ApiKeyCreatedResponse = z.object({ key: ApiKeyJson, secret: z.string() });
export const ApiKeysResponse = z.object({ keys: z.array(ApiKeyJson) });
