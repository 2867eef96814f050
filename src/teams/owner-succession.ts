import type { AuditLog } from '../auth/audit-log.ts';
import type { Trx } from '../db/database.ts';
import { insertNotification } from '../notifications/inbox-store.ts';
import type { TeamRole } from './teams-service.ts';

/** One member made owner because the team's only owner left with their account's erasure. */
export interface OwnerPromotion {
  teamId: string;
  /** The member now owner. */
  userId: string;
  /** Their role before. */
  from: TeamRole;
}

/** What {@link leaveTeamsAtErasure} did. */
export interface TeamsLeft {
  /** Teams the user was an active member of, and is no longer. */
  teamsLeft: number;
  promotions: OwnerPromotion[];
}

/**
 * Takes a user whose account is being erased (GDPR Art. 17, src/privacy/account-erasure.ts) out of
 * every team they are an active member of, in `trx` (the erasure's team step), and keeps each such
 * team with an owner (issue 16: a team keeps at least one owner). When the user was the team's only
 * active owner and other active members remain, the longest-standing of them is made owner: an
 * admin if the team has one (the earliest-joined admin), else the earliest-joined member. The
 * promotion is audited (`team.owner_promoted`, target the team, `details.userId` the new owner,
 * `details.from` their role before) and the new owner finds a notice in their notification centre.
 * A team left with no other active member keeps its pool (and its credits) as it is, with no owner.
 *
 * Each team's member rows are locked first (teams in id order, so two erasures cannot deadlock),
 * as the teams service does for role changes, so a concurrent removal or demotion cannot leave the
 * team ownerless either. Idempotent: a user already out of every team changes nothing.
 *
 * @param actor the erasure's actor: `admin:<id>` (erase now) or `system` (the scheduled erasure)
 * @returns how many teams the user left and who was promoted where
 */
export async function leaveTeamsAtErasure(trx: Trx, deps: { audit: AuditLog }, userId: string, actor: string, now: Date): Promise<TeamsLeft> {
  const teamIds = ((await trx('team_members').where({ user_id: userId }).whereNull('removed_at').orderBy('team_id').select('team_id')) as Array<{ team_id: string }>).map((r) => r.team_id);
  const promotions: OwnerPromotion[] = [];
  let teamsLeft = 0;
  for (const teamId of teamIds) {
    const rows = (await trx('team_members').where({ team_id: teamId }).forUpdate().select('user_id', 'role', 'joined_at', 'removed_at')) as Array<{
      user_id: string;
      role: TeamRole;
      joined_at: Date;
      removed_at: Date | null;
    }>;
    const leaving = rows.find((r) => r.user_id === userId && !r.removed_at);
    if (!leaving) continue;
    await trx('team_members').where({ team_id: teamId, user_id: userId }).update({ removed_at: now });
    teamsLeft++;
    await trx('wallet_preferences').where({ user_id: userId, team_id: teamId }).delete();
    const remaining = rows.filter((r) => r.user_id !== userId && !r.removed_at);
    if (leaving.role !== 'owner' || remaining.some((r) => r.role === 'owner')) continue;
    const successor = remaining.sort(
      (a, b) => Number(b.role === 'admin') - Number(a.role === 'admin') || a.joined_at.getTime() - b.joined_at.getTime() || a.user_id.localeCompare(b.user_id),
    )[0];
    if (!successor) continue;
    await trx('team_members').where({ team_id: teamId, user_id: successor.user_id }).update({ role: 'owner' });
    const team = (await trx('teams').where({ id: teamId }).first('name')) as { name: string };
    await deps.audit.record(
      {
        actor,
        actorUserId: actor.startsWith('admin:') ? actor.slice(6) : null,
        action: 'team.owner_promoted',
        target: { type: 'team', id: teamId },
        details: { userId: successor.user_id, from: successor.role, teamName: team.name, reason: 'only_owner_erased' },
      },
      trx,
    );
    await insertNotification(trx, {
      userId: successor.user_id,
      type: 'team_owner_promoted',
      title: `You are now an owner of ${team.name}`,
      body: `The account of the team's only owner was deleted. As its longest-standing ${successor.role}, you are its owner now.`,
      link: `/teams/${teamId}`,
    });
    promotions.push({ teamId, userId: successor.user_id, from: successor.role });
  }
  return { teamsLeft, promotions };
}
