import type { Db } from '../db/database.ts';

/** What the scrape-time gauges show, read from the database. Amounts are millicredits. */
export interface GaugeReadings {
  activeHolds: number;
  heldMillicredits: number;
  /** Unspent lot remainders by lot source (purchase, signup_bonus, bonus, subscription, …). */
  outstandingBySource: Record<string, number>;
  queue: Array<{ queue: string; state: string; count: number }>;
}

/**
 * Reads the gauges in three cheap statements, each on a partial index: active holds
 * (`holds_active_by_expiry`, status = 'active'), open lots (`lots_open`, remaining > 0), and
 * pg-boss jobs not yet finished (none when pg-boss never created its schema, e.g. in tests).
 */
export async function readGauges(db: Db): Promise<GaugeReadings> {
  const [holds, lots, queue] = await Promise.all([
    db.raw<{ rows: Array<{ n: string; held: string }> }>(`SELECT count(*) AS n, coalesce(sum(amount), 0) AS held FROM holds WHERE status = 'active'`),
    db.raw<{ rows: Array<{ source: string; remaining: string }> }>(`SELECT source, sum(remaining) AS remaining FROM lots WHERE open GROUP BY source`),
    db.raw<{ rows: Array<{ queue: string; state: string; n: string }> }>(
      `SELECT name AS queue, state::text AS state, count(*) AS n FROM pgboss.job
        WHERE state IN ('created', 'retry', 'active') GROUP BY name, state`,
    ).catch((err: { code?: string }) => {
      if (err.code === '42P01' || err.code === '3F000') return { rows: [] }; // no pg-boss schema (yet)
      throw err;
    }),
  ]);
  return {
    activeHolds: Number(holds.rows[0]?.n ?? 0),
    heldMillicredits: Number(holds.rows[0]?.held ?? 0),
    outstandingBySource: Object.fromEntries(lots.rows.map((r) => [r.source, Number(r.remaining)])),
    queue: queue.rows.map((r) => ({ queue: r.queue, state: r.state, count: Number(r.n) })),
  };
}
