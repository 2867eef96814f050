import type { Knex } from 'knex';

/**
 * Rolled-over subscription credits (issue 15) get their own transfer kind, `rollover`, which is
 * also their lot's source (a grant's lot takes its kind as source): history and statements then
 * show "Rollover" apart from the period's grant. Like subscription grants, they come from the
 * `subscriptions` system account.
 *
 * Additive and independent of the order of other branches' migrations (the same way as
 * 20261130190000_add_growth_credit_sources): `transfers_kind_check` and `ledger_counterparty` are
 * extended from their CURRENT definitions (read from the catalog), so kinds added by other
 * migrations stay; `down` removes exactly what `up` added (refused while rollover transfers exist).
 */
const KIND = 'rollover';
const ANCHOR = `WHEN 'expiry' THEN 'expired'`;
const ADDED = ` WHEN '${KIND}' THEN 'subscriptions'`;

async function kindConstraint(knex: Knex): Promise<string> {
  const r = await knex.raw(`SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conname = 'transfers_kind_check'`);
  const def = r.rows[0]?.def as string | undefined;
  if (!def?.includes('ARRAY[')) throw new Error(`transfers_kind_check is missing or has an unexpected shape: ${def}`);
  return def;
}

async function counterpartyDef(knex: Knex): Promise<string> {
  const r = await knex.raw(`SELECT pg_get_functiondef('ledger_counterparty(text)'::regprocedure) AS def`);
  return r.rows[0].def as string;
}

export async function up(knex: Knex): Promise<void> {
  const def = await kindConstraint(knex);
  await knex.raw(`ALTER TABLE transfers DROP CONSTRAINT transfers_kind_check`);
  await knex.raw(`ALTER TABLE transfers ADD CONSTRAINT transfers_kind_check ${def.replace('ARRAY[', `ARRAY['${KIND}'::text, `)}`);
  const fn = await counterpartyDef(knex);
  if (!fn.includes(ANCHOR)) throw new Error('ledger_counterparty has an unexpected shape');
  await knex.raw(fn.replace(ANCHOR, `${ANCHOR}${ADDED}`));
}

export async function down(knex: Knex): Promise<void> {
  const fn = await counterpartyDef(knex);
  await knex.raw(fn.replace(ADDED, ''));
  const def = await kindConstraint(knex);
  await knex.raw(`ALTER TABLE transfers DROP CONSTRAINT transfers_kind_check`);
  await knex.raw(`ALTER TABLE transfers ADD CONSTRAINT transfers_kind_check ${def.replace(`'${KIND}'::text, `, '')}`);
}
