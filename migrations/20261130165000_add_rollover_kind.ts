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

/** The kinds `transfers_kind_check` allows now (other migrations may have added theirs). */
async function currentKinds(knex: Knex): Promise<string[]> {
  const r = await knex.raw(`SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conname = 'transfers_kind_check' AND conrelid = 'transfers'::regclass`);
  const kinds = [...String(r.rows[0]?.def ?? '').matchAll(/'([a-z_]+)'/g)].map((m) => m[1]!);
  if (kinds.length === 0) throw new Error('transfers_kind_check is missing or has an unexpected shape');
  return kinds;
}

async function setKinds(knex: Knex, kinds: string[]): Promise<void> {
  await knex.raw(`ALTER TABLE transfers DROP CONSTRAINT transfers_kind_check`);
  await knex.raw(`ALTER TABLE transfers ADD CONSTRAINT transfers_kind_check CHECK (kind IN (${kinds.map((k) => `'${k}'`).join(', ')}))`);
}

async function counterpartyDef(knex: Knex): Promise<string> {
  const r = await knex.raw(`SELECT pg_get_functiondef('ledger_counterparty(text)'::regprocedure) AS def`);
  return r.rows[0].def as string;
}

export async function up(knex: Knex): Promise<void> {
  await setKinds(knex, [...new Set([...(await currentKinds(knex)), KIND])]);
  const fn = await counterpartyDef(knex);
  if (!fn.includes(ANCHOR)) throw new Error('ledger_counterparty has an unexpected shape');
  await knex.raw(fn.replace(ANCHOR, `${ANCHOR}${ADDED}`));
}

export async function down(knex: Knex): Promise<void> {
  const fn = await counterpartyDef(knex);
  await knex.raw(fn.replace(ADDED, ''));
  await setKinds(knex, (await currentKinds(knex)).filter((k) => k !== KIND));
}
