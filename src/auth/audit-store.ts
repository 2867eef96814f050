import crypto from 'node:crypto';
import type { Db, Trx } from '../db/database.ts';

/**
 * SQL of the append-only, hash-chained `audit_log` table and its erasable `audit_personal` side
 * (migrations/20261130220000_chain_audit_log.ts explains the chain).
 */

export interface DbAuditRow {
  id: string | number;
  created_at: Date;
  actor: string;
  actor_user_id: string | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  ip: string | null;
  user_agent: string | null;
  details: Record<string, unknown>;
  seq?: string | number | null;
  hash?: Buffer | null;
  prev_hash?: Buffer | null;
  actor_email?: string | null;
  /** The personal data (JSON text) joined from `audit_personal`, when it was not erased. */
  personal?: string | null;
}

/** The personal part of an entry: kept apart from the chained row so an erasure can delete it. */
export interface AuditPersonal {
  ip?: string | null;
  userAgent?: string | null;
  email?: string | null;
  name?: string | null;
}

export type NewAuditRow = Omit<DbAuditRow, 'id' | 'created_at' | 'actor_email' | 'ip' | 'user_agent' | 'seq' | 'hash' | 'prev_hash' | 'personal'> & {
  personal: AuditPersonal;
};

/**
 * Appends one unsealed row (in `db` or the caller's transaction) with its personal data in
 * `audit_personal`: the row carries sha256(salt ‖ payload) of it, so the chain commits to it.
 */
export async function insertAuditRow(db: Db | Trx, row: NewAuditRow): Promise<DbAuditRow> {
  const personal = Object.fromEntries(Object.entries(row.personal).filter(([, v]) => v !== null && v !== undefined));
  const hasPersonal = Object.keys(personal).length > 0;
  const payload = JSON.stringify(personal);
  const salt = crypto.randomBytes(16);
  const digest = hasPersonal ? crypto.createHash('sha256').update(salt).update(payload, 'utf8').digest() : null;
  const [inserted] = await db<DbAuditRow>('audit_log')
    .insert({
      actor: row.actor,
      actor_user_id: row.actor_user_id,
      action: row.action,
      target_type: row.target_type,
      target_id: row.target_id,
      details: JSON.stringify(row.details) as unknown as Record<string, unknown>,
      personal_digest: digest,
    } as Record<string, unknown>)
    .returning('*');
  if (hasPersonal) await db('audit_personal').insert({ audit_id: inserted!.id, salt, payload });
  return { ...(inserted as DbAuditRow), personal: hasPersonal ? payload : null };
}

/**
 * Seals up to `limit` committed, unsealed entries into the chain. Returns how many, or -1 when
 * another sealer holds the chain (it returns at once rather than queueing on a connection).
 */
export async function sealAuditBatch(db: Db | Trx, limit = 5000): Promise<number> {
  const r = await db.raw(`SELECT audit_log_seal(?) AS n`, [limit]);
  return Number((r.rows[0] as { n: number }).n);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Seals every committed, unsealed entry: batch after batch until none is left; while another
 * sealer (another process) holds the chain, waits and tries again, up to about `patienceMs`.
 * Returns how many this call sealed.
 */
export async function sealAuditRows(db: Db | Trx, patienceMs = 5000): Promise<number> {
  const limit = 5000;
  let sealed = 0;
  const deadline = Date.now() + patienceMs;
  for (let wait = 5; ; ) {
    const n = await sealAuditBatch(db, limit);
    if (n === -1) {
      if (Date.now() > deadline) return sealed;
      await sleep(wait);
      wait = Math.min(wait * 2, 200);
      continue;
    }
    sealed += n;
    if (n < limit) return sealed;
  }
}

export interface AuditFilters {
  /** A user id (matches `actor_user_id`), an email (the actor's), or an actor string (`system`). */
  actor?: string;
  /** Exact action (`auth.login`) or a prefix ending in `.` (`admin.`). */
  action?: string;
  /** Entries about this target. */
  target?: { type: string; id: string };
  /** What a person typed to find a target: `type:id` (`task:…`), a user's email, or a bare id. */
  targetQuery?: string;
  /** Entries at or after this instant. */
  from?: Date;
  /** Entries before this instant. */
  to?: Date;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function filtered(db: Db | Trx, filters: AuditFilters) {
  const q = db('audit_log as a')
    .leftJoin('users as u', 'u.id', 'a.actor_user_id')
    .leftJoin('audit_personal as p', 'p.audit_id', 'a.id')
    .select('a.*', 'u.email as actor_email', 'p.payload as personal');
  const actor = filters.actor?.trim();
  if (actor) {
    if (UUID.test(actor)) q.where('a.actor_user_id', actor);
    else if (actor.includes('@')) q.where('u.email', actor.toLowerCase());
    else q.where('a.actor', actor);
  }
  const action = filters.action?.trim();
  if (action) {
    if (action.endsWith('.')) q.whereLike('a.action', `${action.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
    else q.where('a.action', action);
  }
  if (filters.target) q.where({ 'a.target_type': filters.target.type, 'a.target_id': filters.target.id });
  const tq = filters.targetQuery?.trim();
  if (tq) {
    const typed = /^([a-z_]+):(.+)$/.exec(tq);
    if (tq.includes('@')) q.where('a.target_type', 'user').whereIn('a.target_id', db('users').select(db.raw('id::text')).where('email', tq.toLowerCase()));
    else if (typed) q.where({ 'a.target_type': typed[1], 'a.target_id': typed[2] });
    else q.where('a.target_id', tq);
  }
  if (filters.from) q.where('a.created_at', '>=', filters.from);
  if (filters.to) q.where('a.created_at', '<', filters.to);
  return q;
}

/** Entries newest first (by id), keyset-paginated: `beforeId` is the last id of the previous page. */
export async function listAuditRows(db: Db | Trx, filters: AuditFilters, limit: number, beforeId?: string): Promise<DbAuditRow[]> {
  const q = filtered(db, filters).orderBy('a.id', 'desc').limit(limit);
  if (beforeId) q.where('a.id', '<', beforeId);
  return q;
}

/** Entries oldest first (by id) in pages of `batch`, for streaming exports. */
export async function* iterateAuditRows(db: Db, filters: AuditFilters, batch = 500): AsyncGenerator<DbAuditRow> {
  let after: string | number = 0;
  for (;;) {
    const rows: DbAuditRow[] = await filtered(db, filters).where('a.id', '>', after).orderBy('a.id', 'asc').limit(batch);
    for (const r of rows) yield r;
    if (rows.length < batch) return;
    after = rows[rows.length - 1]!.id;
  }
}

/** Entries about a user (as actor or target), oldest first, for the user's own export. */
export async function auditRowsAboutUser(db: Db | Trx, userId: string): Promise<DbAuditRow[]> {
  return db('audit_log as a')
    .leftJoin('audit_personal as p', 'p.audit_id', 'a.id')
    .select('a.*', 'p.payload as personal')
    .where((w) => w.where('a.actor_user_id', userId).orWhere({ 'a.target_type': 'user', 'a.target_id': userId }).orWhereRaw(`a.details->>'userId' = ?`, [userId]))
    .orderBy('a.id', 'asc');
}

/**
 * Erases the personal data of every entry by or about `userId`, or naming `email`: the
 * `audit_personal` rows go; the chained rows keep their digest, so the chain still verifies.
 * Returns how many were erased.
 */
export async function erasePersonalAuditData(db: Db | Trx, userId: string, email: string): Promise<number> {
  const r = await db.raw(
    `DELETE FROM audit_personal p USING audit_log a
      WHERE a.id = p.audit_id
        AND (a.actor_user_id = ? OR (a.target_type = 'user' AND a.target_id = ?) OR p.payload::jsonb->>'email' = ?)`,
    [userId, userId, email],
  );
  return r.rowCount ?? 0;
}

/** One broken link of the chain, as the verifier reports it. */
export interface ChainBreak {
  seq: string;
  id: string;
  problem: string;
}

export interface ChainReport {
  ok: boolean;
  /** Entries checked (from the anchor to the head). */
  checked: number;
  anchorSeq: string;
  headSeq: string;
  /** Entries whose personal data was erased (their digest is kept but cannot be rechecked). */
  erasedPersonal: number;
  /** Entries not yet sealed (written, not yet linked; the next seal links them). */
  unsealed: number;
  firstBreak: ChainBreak | null;
}

/**
 * Walks the chain from its anchor (the last pruned entry, or the genesis) to its head in `seq`
 * order, recomputing each entry's hash in the database from its content and the previous hash,
 * and each personal digest from `audit_personal`. Stops at the first broken entry.
 */
export async function verifyAuditChain(db: Db, batch = 2000): Promise<ChainReport> {
  const chain = (await db('audit_chain').where({ id: 1 }).first()) as { head_seq: string; head_hash: Buffer; anchor_seq: string; anchor_hash: Buffer };
  const unsealed = Number((await db('audit_log').whereNull('seq').count<{ n: string }[]>('* as n'))[0]!.n);
  let prevSeq = BigInt(chain.anchor_seq);
  let prevHash = chain.anchor_hash;
  let checked = 0;
  let erasedPersonal = 0;
  const report = (firstBreak: ChainBreak | null): ChainReport => ({
    ok: firstBreak === null,
    checked,
    anchorSeq: String(chain.anchor_seq),
    headSeq: String(chain.head_seq),
    erasedPersonal,
    unsealed,
    firstBreak,
  });
  for (;;) {
    const r = await db.raw(
      `SELECT a.id, a.seq, a.prev_hash, a.hash, audit_log_entry_hash(a.prev_hash, a.seq, a.id, a.created_at, a.actor, a.actor_user_id, a.action, a.target_type, a.target_id, a.details, a.personal_digest) AS recomputed,
              a.personal_digest, p.salt, p.payload
         FROM audit_log a LEFT JOIN audit_personal p ON p.audit_id = a.id
        WHERE a.seq > ? ORDER BY a.seq LIMIT ?`,
      [String(prevSeq), batch],
    );
    const rows = r.rows as Array<{ id: string; seq: string; prev_hash: Buffer; hash: Buffer; recomputed: Buffer; personal_digest: Buffer | null; salt: Buffer | null; payload: string | null }>;
    for (const row of rows) {
      const at = { seq: String(row.seq), id: String(row.id) };
      if (BigInt(row.seq) !== prevSeq + 1n) return report({ ...at, problem: `entry ${prevSeq + 1n} of the chain is missing (next is ${row.seq})` });
      if (!row.prev_hash.equals(prevHash)) return report({ ...at, problem: 'its previous-hash does not match the hash of the entry before it' });
      if (!row.hash.equals(row.recomputed)) return report({ ...at, problem: 'its content does not match its hash (changed after it was written)' });
      if (row.payload !== null && row.salt) {
        const digest = crypto.createHash('sha256').update(row.salt).update(row.payload, 'utf8').digest();
        if (!row.personal_digest || !digest.equals(row.personal_digest)) return report({ ...at, problem: 'its personal data does not match its digest' });
      } else if (row.personal_digest) erasedPersonal++;
      prevSeq = BigInt(row.seq);
      prevHash = row.hash;
      checked++;
    }
    if (rows.length < batch) break;
  }
  if (prevSeq !== BigInt(chain.head_seq)) {
    return report({ seq: String(prevSeq + 1n), id: '?', problem: `the chain ends at ${prevSeq} but its head says ${chain.head_seq} (entries deleted)` });
  }
  if (!prevHash.equals(chain.head_hash)) return report({ seq: String(prevSeq), id: '?', problem: 'the last entry does not match the recorded head hash' });
  return report(null);
}

/** Removes the sealed entries created before `before` (a prefix of the chain) and audits it. Returns how many. */
export async function pruneAuditRows(db: Db | Trx, before: Date): Promise<number> {
  const r = await db.raw(`SELECT audit_log_prune(?) AS n`, [before]);
  return Number((r.rows[0] as { n: string }).n);
}
