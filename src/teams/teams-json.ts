import { millicreditsToCredits } from '../ledger/credits.ts';
import type { TeamMember } from './teams-service.ts';

const credits = (v: number | null) => (v === null ? null : millicreditsToCredits(v));

/** A member as the API shows it: credits, not millicredits. */
export function memberJson(m: TeamMember) {
  return {
    userId: m.userId,
    name: m.name,
    email: m.email,
    role: m.role,
    budgets: { daily: credits(m.dailyBudget), monthly: credits(m.monthlyBudget), perJob: credits(m.perJobBudget) },
    spent: { today: credits(m.spentToday), thisMonth: credits(m.spentThisMonth) },
    held: { today: credits(m.heldToday), thisMonth: credits(m.heldThisMonth) },
    joinedAt: m.joinedAt,
    removedAt: m.removedAt,
  };
}
