import { z } from 'zod';
import { schemas } from '../http/validate.ts';
import { creditsToMillicredits, InvalidAmountError } from '../ledger/credits.ts';

/** zod schemas of the team routes. Credits in, millicredits out. Unknown fields are refused. */

/** Credits (JSON number or decimal string, ≤ 3 decimals) → millicredits; `allowZero` for budgets. */
export function Credits(allowZero: boolean) {
  return schemas.credits.transform((v, ctx) => {
    try {
      return creditsToMillicredits(v, { allowZero });
    } catch (err) {
      if (!(err instanceof InvalidAmountError)) throw err;
      ctx.addIssue({ code: 'custom', message: err.message.replace(/^.* is not a valid amount of credits: /, 'must be a valid amount of credits: ') });
      return z.NEVER;
    }
  });
}

const Budget = Credits(true).nullable().optional();
const Role = z.enum(['owner', 'admin', 'member']);

export const CreateTeamBody = z.object({ name: z.string().trim().min(1, 'must not be empty').max(100) }).strict();
export const InviteBody = z.object({ email: z.email().max(254), role: Role.default('member') }).strict();
export const UpdateMemberBody = z
  .object({ role: Role.optional(), dailyBudget: Budget, monthlyBudget: Budget, perJobBudget: Budget })
  .strict();
export const ContributionBody = z.object({ credits: Credits(false) }).strict();
export const TeamParams = z.object({ id: z.uuid() }).strict();
export const MemberParams = z.object({ id: z.uuid(), userId: z.uuid() }).strict();
export const HistoryQuery = z.object({ member: z.uuid().optional(), limit: z.coerce.number().int().min(1).max(500).optional() }).strict();
export const WalletBody = z.object({ wallet: z.union([z.literal('personal'), z.string().regex(/^team:[0-9a-fA-F-]{36}$/, "must be 'personal' or 'team:<team id>'")]) }).strict();
