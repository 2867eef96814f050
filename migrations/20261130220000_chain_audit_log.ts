import type { Knex } from 'knex';

/**
 * The audit log becomes tamper-evident (issue 19): each entry is sealed into a hash chain
 * (`seq`, `prev_hash`, `hash` = sha256(prev_hash ‖ canonical entry)), and personal data moves out
 * of the chained row into `audit_personal`, so an erasure can delete it without breaking the chain.
 *
 * - Writers insert unsealed rows (no global lock in their transaction); `audit_log_seal()` links
 *   committed rows in order under the one `audit_chain` row lock (writers call it after commit,
 *   the sweeper calls it on every sweep). One sealer at a time: a second finds the row locked
 *   and returns -1 at once (SKIP LOCKED) instead of queueing on a connection. No fork.
 * - `personal_digest` = sha256(salt ‖ payload) of the entry's `audit_personal` row (ip, user
 *   agent, email): the chain commits to the personal data; erasing it leaves the digest.
 * - The database refuses UPDATE (except sealing an unsealed row, nothing else changed), DELETE
 *   (except `audit_log_prune`, which removes a prefix of the chain and keeps the hash of the last
 *   pruned entry as the chain's anchor) and TRUNCATE.
 * - Every ledger transfer is recorded as `ledger.transfer` with its id, by a trigger on `transfers`.
 * - Task attempts, completions and failures are recorded as `job.*` by a trigger on `tasks`.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE audit_log
      ADD COLUMN seq bigint UNIQUE,
      ADD COLUMN prev_hash bytea,
      ADD COLUMN hash bytea,
      ADD COLUMN personal_digest bytea,
      ADD CONSTRAINT audit_log_sealed_whole CHECK ((seq IS NULL) = (hash IS NULL) AND (seq IS NULL) = (prev_hash IS NULL))`);
  await knex.raw(`CREATE INDEX audit_log_unsealed ON audit_log (id) WHERE seq IS NULL`);
  await knex.raw(`CREATE INDEX audit_log_created_at ON audit_log (created_at, id)`);
  await knex.schema.createTable('audit_personal', (t) => {
    // No foreign key: TRUNCATE audit_log must reach its refusing trigger; pruning deletes these too.
    t.bigInteger('audit_id').primary();
    t.binary('salt').notNullable();
    // The exact JSON text that was hashed: {"ip":…,"userAgent":…,"email":…,"name":…}
    t.text('payload').notNullable();
  });
  await knex.raw(`CREATE INDEX audit_personal_email ON audit_personal ((payload::jsonb->>'email'))`);
  await knex.raw(`
    CREATE TABLE audit_chain (
      id int PRIMARY KEY CHECK (id = 1),
      head_seq bigint NOT NULL,
      head_hash bytea NOT NULL,
      anchor_seq bigint NOT NULL,
      anchor_hash bytea NOT NULL,
      pruned_count bigint NOT NULL DEFAULT 0,
      pruned_at timestamptz,
      CHECK (anchor_seq <= head_seq))`);
  await knex.raw(`INSERT INTO audit_chain (id, head_seq, head_hash, anchor_seq, anchor_hash) VALUES (1, 0, '\\x${'00'.repeat(32)}', 0, '\\x${'00'.repeat(32)}')`);

  // The canonical text of an entry at position p_seq (jsonb's text form is deterministic; the time
  // as integer microseconds since the epoch, independent of the session's time zone).
  await knex.raw(`
    CREATE FUNCTION audit_log_entry_hash(p_prev bytea, p_seq bigint, p_id bigint, p_created_at timestamptz, p_actor text,
                                         p_actor_user_id uuid, p_action text, p_target_type text, p_target_id text,
                                         p_details jsonb, p_personal_digest bytea) RETURNS bytea
    LANGUAGE sql IMMUTABLE AS $$
      SELECT sha256(p_prev || convert_to(jsonb_build_array(
        p_seq, p_id, floor(extract(epoch FROM p_created_at) * 1000000)::bigint, p_actor, p_actor_user_id, p_action,
        p_target_type, p_target_id, p_details, encode(p_personal_digest, 'hex'))::text, 'UTF8'))
    $$`);

  await knex.raw(`
    CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE anchor bigint;
    BEGIN
      IF TG_OP = 'UPDATE' AND OLD.seq IS NULL AND NEW.seq IS NOT NULL
         AND NEW.id = OLD.id AND NEW.created_at = OLD.created_at AND NEW.actor = OLD.actor
         AND NEW.actor_user_id IS NOT DISTINCT FROM OLD.actor_user_id AND NEW.action = OLD.action
         AND NEW.target_type IS NOT DISTINCT FROM OLD.target_type AND NEW.target_id IS NOT DISTINCT FROM OLD.target_id
         AND NEW.ip IS NOT DISTINCT FROM OLD.ip AND NEW.user_agent IS NOT DISTINCT FROM OLD.user_agent
         AND NEW.details = OLD.details AND NEW.personal_digest IS NOT DISTINCT FROM OLD.personal_digest THEN
        RETURN NEW; -- sealing: the chain fields are set once, nothing else changes
      END IF;
      IF TG_OP = 'DELETE' AND current_setting('tally.audit_prune', true) = 'on' AND OLD.seq IS NOT NULL THEN
        SELECT anchor_seq INTO anchor FROM audit_chain WHERE id = 1;
        IF OLD.seq <= anchor THEN RETURN OLD; END IF; -- retention: only the pruned prefix of the chain
      END IF;
      RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'P0001';
    END $$`);

  // Seals up to p_limit committed, unsealed entries in id order; returns how many.
  await knex.raw(`
    CREATE FUNCTION audit_log_seal(p_limit int DEFAULT 10000) RETURNS int LANGUAGE plpgsql VOLATILE AS $$
    DECLARE c audit_chain; r audit_log; n int := 0; h bytea;
    BEGIN
      SELECT * INTO c FROM audit_chain WHERE id = 1 FOR UPDATE SKIP LOCKED;
      IF NOT FOUND THEN RETURN -1; END IF; -- another sealer is at work
      FOR r IN SELECT * FROM audit_log WHERE seq IS NULL ORDER BY id LIMIT p_limit LOOP
        c.head_seq := c.head_seq + 1;
        h := audit_log_entry_hash(c.head_hash, c.head_seq, r.id, r.created_at, r.actor, r.actor_user_id, r.action, r.target_type, r.target_id, r.details, r.personal_digest);
        UPDATE audit_log SET seq = c.head_seq, prev_hash = c.head_hash, hash = h WHERE id = r.id;
        c.head_hash := h;
        n := n + 1;
      END LOOP;
      IF n > 0 THEN UPDATE audit_chain SET head_seq = c.head_seq, head_hash = c.head_hash WHERE id = 1; END IF;
      RETURN n;
    END $$`);

  // Retention: removes the sealed prefix of the chain older than p_before; the last removed
  // entry's seq and hash become the anchor the verifier starts from. Audited.
  await knex.raw(`
    CREATE FUNCTION audit_log_prune(p_before timestamptz) RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
    DECLARE c audit_chain; upto bigint; upto_hash bytea; n bigint;
    BEGIN
      SELECT * INTO c FROM audit_chain WHERE id = 1 FOR UPDATE;
      PERFORM audit_log_seal(); -- nothing older stays unsealed (we hold the lock: it seals, not skips)
      SELECT * INTO c FROM audit_chain WHERE id = 1;
      SELECT min(seq) - 1 INTO upto FROM audit_log WHERE seq > c.anchor_seq AND created_at >= p_before;
      IF upto IS NULL THEN upto := c.head_seq; END IF;
      IF upto <= c.anchor_seq THEN RETURN 0; END IF;
      SELECT hash INTO upto_hash FROM audit_log WHERE seq = upto;
      UPDATE audit_chain SET anchor_seq = upto, anchor_hash = upto_hash, pruned_count = pruned_count + (upto - c.anchor_seq), pruned_at = now() WHERE id = 1;
      PERFORM set_config('tally.audit_prune', 'on', true);
      DELETE FROM audit_personal WHERE audit_id IN (SELECT id FROM audit_log WHERE seq > c.anchor_seq AND seq <= upto);
      DELETE FROM audit_log WHERE seq > c.anchor_seq AND seq <= upto;
      GET DIAGNOSTICS n = ROW_COUNT;
      PERFORM set_config('tally.audit_prune', 'off', true);
      INSERT INTO audit_log (actor, action, details)
      VALUES ('system', 'retention.audit_pruned', jsonb_build_object('entries', n, 'fromSeq', c.anchor_seq + 1, 'toSeq', upto,
              'anchorHash', encode(upto_hash, 'hex'), 'before', p_before));
      RETURN n;
    END $$`);

  // Every transfer, as it is written (one statement-level insert per ledger statement).
  await knex.raw(`
    CREATE FUNCTION audit_transfers() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO audit_log (actor, actor_user_id, action, target_type, target_id, details)
      SELECT n.actor,
             (SELECT u.id FROM users u WHERE u.id = CASE WHEN n.actor ~ '^(user|admin):[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                THEN substring(n.actor FROM position(':' IN n.actor) + 1)::uuid END),
             'ledger.transfer',
             CASE WHEN coalesce(ca.user_id, da.user_id) IS NULL THEN NULL ELSE 'user' END,
             coalesce(ca.user_id, da.user_id)::text,
             jsonb_build_object('transferId', n.id, 'kind', n.kind, 'amount', n.amount,
               'debitAccount', coalesce(da.code, 'user'), 'creditAccount', coalesce(ca.code, 'user'),
               'holdId', n.hold_id, 'reference', CASE WHEN n.reference_type IS NULL THEN NULL ELSE n.reference_type || ':' || n.reference_id END)
        FROM new_transfers n
        JOIN accounts da ON da.id = n.debit_account_id
        JOIN accounts ca ON ca.id = n.credit_account_id
       ORDER BY n.created_at, n.id;
      RETURN NULL;
    END $$`);
  await knex.raw(`CREATE TRIGGER audit_transfers AFTER INSERT ON transfers REFERENCING NEW TABLE AS new_transfers
    FOR EACH STATEMENT EXECUTE FUNCTION audit_transfers()`);

  // Job attempts, successes and failures of OCR tasks.
  await knex.raw(`
    CREATE FUNCTION audit_tasks() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.attempts > OLD.attempts THEN
        INSERT INTO audit_log (actor, action, target_type, target_id, details)
        VALUES ('system', 'job.attempt', 'task', NEW.id::text, jsonb_build_object('userId', NEW.user_id, 'attempt', NEW.attempts, 'holdId', NEW.hold_id));
      END IF;
      IF NEW.status IS DISTINCT FROM OLD.status AND NEW.status IN ('completed', 'failed') THEN
        INSERT INTO audit_log (actor, action, target_type, target_id, details)
        VALUES ('system', CASE NEW.status WHEN 'completed' THEN 'job.succeeded' ELSE 'job.failed' END, 'task', NEW.id::text,
                jsonb_strip_nulls(jsonb_build_object('userId', NEW.user_id, 'attempts', NEW.attempts, 'chargedMillicredits', NEW.charged_millicredits,
                  'errorCode', NEW.error_code, 'holdId', NEW.hold_id)));
      END IF;
      RETURN NULL;
    END $$`);
  await knex.raw(`CREATE TRIGGER audit_tasks AFTER UPDATE OF status, attempts ON tasks FOR EACH ROW EXECUTE FUNCTION audit_tasks()`);

  // Existing entries: personal data moves to audit_personal, then everything is sealed in id order.
  await knex.raw(`ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only`);
  await knex.raw(`
    WITH p AS (
      SELECT id, uuid_send(gen_random_uuid()) AS salt,
             jsonb_strip_nulls(jsonb_build_object('ip', ip, 'userAgent', user_agent, 'email', details->'email'))::text AS payload
        FROM audit_log WHERE ip IS NOT NULL OR user_agent IS NOT NULL OR details \\? 'email'),
    ins AS (INSERT INTO audit_personal (audit_id, salt, payload) SELECT id, salt, payload FROM p RETURNING audit_id, salt, payload)
    UPDATE audit_log a SET ip = NULL, user_agent = NULL, details = a.details - 'email',
           personal_digest = sha256(ins.salt || convert_to(ins.payload, 'UTF8'))
      FROM ins WHERE ins.audit_id = a.id`);
  await knex.raw(`ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only`);
  await knex.raw(`SELECT audit_log_seal(2147483647)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP TRIGGER audit_tasks ON tasks`);
  await knex.raw(`DROP FUNCTION audit_tasks()`);
  await knex.raw(`DROP TRIGGER audit_transfers ON transfers`);
  await knex.raw(`DROP FUNCTION audit_transfers()`);
  await knex.raw(`DROP FUNCTION audit_log_prune(timestamptz)`);
  await knex.raw(`DROP FUNCTION audit_log_seal(int)`);
  await knex.raw(`ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only`);
  // Personal data goes back into the rows it was taken from.
  await knex.raw(`
    UPDATE audit_log a SET ip = p.payload::jsonb->>'ip', user_agent = p.payload::jsonb->>'userAgent',
           details = a.details || jsonb_strip_nulls(jsonb_build_object('email', p.payload::jsonb->'email'))
      FROM audit_personal p WHERE p.audit_id = a.id`);
  await knex.raw(`ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only`);
  await knex.raw(`
    CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'P0001';
    END $$`);
  await knex.raw(`DROP FUNCTION audit_log_entry_hash(bytea, bigint, bigint, timestamptz, text, uuid, text, text, text, jsonb, bytea)`);
  await knex.schema.dropTable('audit_personal');
  await knex.raw(`DROP TABLE audit_chain`);
  await knex.raw(`DROP INDEX audit_log_created_at`);
  await knex.raw(`DROP INDEX audit_log_unsealed`);
  await knex.raw(`ALTER TABLE audit_log DROP CONSTRAINT audit_log_sealed_whole, DROP COLUMN seq, DROP COLUMN prev_hash, DROP COLUMN hash, DROP COLUMN personal_digest`);
}
