import type { Knex } from 'knex';

/**
 * Idempotency keys remembered for 24 hours whatever happens to what they created (as Stripe
 * does): one row per (user, key), with a hash of the request it came with and the response it got.
 * A retried request with the same key gets the same answer and holds nothing new, even after the
 * task it created was deleted; the same key with another request is a 409.
 * Keys of the last 24 hours already stored on tasks are copied in.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('idempotency_keys', (t) => {
    t.uuid('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.text('key').notNullable();
    // What the key was used for, e.g. 'task.create'; and sha256 of the request's content.
    t.text('operation').notNullable();
    t.text('request_hash').notNullable();
    t.integer('status_code').notNullable();
    t.jsonb('response').notNullable();
    t.text('resource_type');
    t.text('resource_id');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.primary(['user_id', 'key']);
    t.index(['created_at']);
  });
  await knex.raw(`
    ALTER TABLE idempotency_keys
      ADD CONSTRAINT idempotency_keys_key_length CHECK (length(key) BETWEEN 1 AND 255),
      ADD CONSTRAINT idempotency_keys_status_code CHECK (status_code BETWEEN 200 AND 599)`);
  await knex.raw(`
    INSERT INTO idempotency_keys (user_id, key, operation, request_hash, status_code, response, resource_type, resource_id, created_at)
    SELECT user_id, idempotency_key, 'task.create', encode(sha256(convert_to('task.create' || chr(10) || sha256, 'UTF8')), 'hex'),
           202, jsonb_build_object('task', jsonb_build_object('id', id, 'fileName', file_name)), 'task', id::text, created_at
      FROM tasks
     WHERE idempotency_key IS NOT NULL AND created_at > now() - interval '24 hours'
    ON CONFLICT DO NOTHING`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('idempotency_keys');
}
