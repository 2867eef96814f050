import type { Db } from '../../src/db/database.ts';

/**
 * The audit log as a table with its personal data joined back in (`ip`, `user_agent`, and
 * `email` / `name` in `details`), as entries were read before personal data moved to the
 * erasable `audit_personal` side (issue 19). Query it like the table: `auditLog(db).where(…)`.
 */
export function auditLog(db: Db) {
  return db.from(
    db.raw(`(
      SELECT a.id, a.created_at, a.actor, a.actor_user_id, a.action, a.target_type, a.target_id,
             coalesce(p.payload::jsonb->>'ip', a.ip) AS ip, coalesce(p.payload::jsonb->>'userAgent', a.user_agent) AS user_agent,
             a.details || jsonb_strip_nulls(jsonb_build_object('email', p.payload::jsonb->'email', 'name', p.payload::jsonb->'name')) AS details,
             a.seq, a.hash, a.prev_hash
        FROM audit_log a LEFT JOIN audit_personal p ON p.audit_id = a.id) AS audit_log`),
  );
}
