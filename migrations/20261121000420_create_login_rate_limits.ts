import type { Knex } from 'knex';

/**
 * rate-limiter-flexible's RateLimiterPostgres table (its own CREATE statement), made here rather
 * than at run time (`tableCreated: true`). Keys are `<prefix>:<sha256>`; `expire` is ms since epoch.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE login_rate_limits (
      key varchar(255) PRIMARY KEY,
      points integer NOT NULL DEFAULT 0,
      expire bigint
    )`);
  await knex.raw(`CREATE INDEX login_rate_limits_expire ON login_rate_limits (expire)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('login_rate_limits');
}
