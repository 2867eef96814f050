import type { Knex } from 'knex';

/**
 * Credits that enter without a purchase (issue 17): new transfer kinds, which are also the new lot
 * sources (a grant's lot takes its kind as source), and where each comes from:
 *
 *   promo → promotions · referral → promotions · trial → promotions (visitors' trial credits)
 *   gift, gift_return → gift_codes (a gift waiting to be claimed sits there; a direct gift moves
 *   from user to user and has no counterparty) · gift_code → sales (a pack bought as a gift is a
 *   sale, granted when its code is redeemed)
 *
 * Additive and independent of the order of other branches' migrations: the `transfers_kind_check`
 * constraint and `ledger_counterparty` are extended from their CURRENT definitions (read from the
 * catalog), so kinds added by other migrations stay; `down` removes exactly what `up` added.
 */
export const GROWTH_KINDS: Record<string, string> = {
  promo: 'promotions',
  referral: 'promotions',
  trial: 'promotions',
  gift: 'gift_codes',
  gift_return: 'gift_codes',
  gift_code: 'sales',
};

const ANCHOR = `WHEN 'expiry' THEN 'expired'`;
const ADDED = Object.entries(GROWTH_KINDS)
  .map(([k, code]) => ` WHEN '${k}' THEN '${code}'`)
  .join('');

async function kindConstraint(knex: Knex): Promise<string> {
  const r = await knex.raw(`SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conname = 'transfers_kind_check'`);
  const def = r.rows[0]?.def as string | undefined;
  if (!def) throw new Error('transfers_kind_check is missing');
  return def;
}

async function counterpartyDef(knex: Knex): Promise<string> {
  const r = await knex.raw(`SELECT pg_get_functiondef('ledger_counterparty(text)'::regprocedure) AS def`);
  return r.rows[0].def as string;
}

export async function up(knex: Knex): Promise<void> {
  await knex('accounts').insert({ code: 'gift_codes' }).onConflict('code').ignore();

  const def = await kindConstraint(knex);
  const added = Object.keys(GROWTH_KINDS)
    .map((k) => `'${k}'::text, `)
    .join('');
  if (!def.includes('ARRAY[')) throw new Error(`transfers_kind_check has an unexpected shape: ${def}`);
  await knex.raw(`ALTER TABLE transfers DROP CONSTRAINT transfers_kind_check`);
  await knex.raw(`ALTER TABLE transfers ADD CONSTRAINT transfers_kind_check ${def.replace('ARRAY[', `ARRAY[${added}`)}`);

  const fn = await counterpartyDef(knex);
  if (!fn.includes(ANCHOR)) throw new Error('ledger_counterparty has an unexpected shape');
  await knex.raw(fn.replace(ANCHOR, `${ANCHOR}${ADDED}`));
}

export async function down(knex: Knex): Promise<void> {
  const fn = await counterpartyDef(knex);
  await knex.raw(fn.replace(ADDED, ''));
  const def = await kindConstraint(knex);
  let restored = def;
  for (const k of Object.keys(GROWTH_KINDS)) restored = restored.replace(`'${k}'::text, `, '');
  await knex.raw(`ALTER TABLE transfers DROP CONSTRAINT transfers_kind_check`);
  await knex.raw(`ALTER TABLE transfers ADD CONSTRAINT transfers_kind_check ${restored}`);
  await knex('accounts').where({ code: 'gift_codes' }).delete();
}
