import type { Request } from 'express';
import { ValidationError } from '../http/errors.ts';
import type { Spender } from './spend-policy.ts';
import type { Teams } from './teams-service.ts';

const WALLET = /^(personal|team:([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}))$/i;

/**
 * Which wallet a priced request spends from (issue 16): a team key always spends from its team's
 * pool; otherwise the `wallet` form field or query parameter (`personal` or `team:<id>`), else the
 * user's default wallet. Returns undefined for the signed-in user's own wallet without a key (no
 * policy to enforce, the hot path unchanged). 400 naming the field for a malformed `wallet`; being
 * a member of the team is checked under lock in the hold's transaction (403 otherwise).
 */
export function createWalletResolver(teams: Pick<Teams, 'defaultWallet'>) {
  return async (req: Request): Promise<Spender | undefined> => {
    const user = req.user!;
    const key = req.apiKey;
    if (key?.teamId) return { ownerId: key.teamId, userId: user.id, teamId: key.teamId, apiKeyId: key.id };
    const fromBody = (req.body as Record<string, unknown> | undefined)?.wallet;
    const raw = fromBody ?? req.query.wallet;
    let teamId: string | null;
    if (raw === undefined || raw === '') {
      teamId = await teams.defaultWallet(user.id);
    } else {
      const m = typeof raw === 'string' ? WALLET.exec(raw) : null;
      if (!m) throw new ValidationError([{ field: fromBody !== undefined ? 'body.wallet' : 'query.wallet', message: "must be 'personal' or 'team:<team id>'" }]);
      teamId = m[2]?.toLowerCase() ?? null;
    }
    if (!teamId) return key ? { ownerId: user.id, userId: user.id, teamId: null, apiKeyId: key.id } : undefined;
    return { ownerId: teamId, userId: user.id, teamId, apiKeyId: key?.id ?? null };
  };
}
