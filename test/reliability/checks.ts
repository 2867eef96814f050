import pg from 'pg';

/**
 * The books as a user and an auditor would check them after a storm, straight from the database:
 * every finding is a sentence; an empty list means clean.
 */
export async function bookFindings(databaseUrl: string): Promise<{ findings: string[]; counts: Record<string, number> }> {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  const findings: string[] = [];
  try {
    const q = async (sql: string) => (await db.query(sql)).rows as Array<Record<string, unknown>>;
    // every completed task charged exactly its price for its pages, by exactly one usage transfer
    for (const r of await q(`
      SELECT t.id, t.pages, t.charged_millicredits AS charged, p.base_millicredits + p.per_unit_millicredits * t.pages AS price,
             (SELECT count(*)::int FROM transfers x WHERE x.kind = 'usage' AND x.reference_type = 'task' AND x.reference_id = t.id::text) AS usages,
             (SELECT coalesce(sum(x.amount), 0)::bigint FROM transfers x WHERE x.kind = 'usage' AND x.reference_type = 'task' AND x.reference_id = t.id::text) AS used
      FROM tasks t CROSS JOIN operation_prices p
      WHERE p.operation = 'ocr' AND t.status = 'completed'
        AND (t.charged_millicredits <> p.base_millicredits + p.per_unit_millicredits * t.pages
             OR (SELECT count(*) FROM transfers x WHERE x.kind = 'usage' AND x.reference_type = 'task' AND x.reference_id = t.id::text) <> 1
             OR (SELECT coalesce(sum(x.amount), 0) FROM transfers x WHERE x.kind = 'usage' AND x.reference_type = 'task' AND x.reference_id = t.id::text) <> t.charged_millicredits)`)) {
      findings.push(`completed task ${r.id} (${r.pages} pages): charged ${r.charged}, price ${r.price}, ${r.usages} usage transfers of ${r.used}`);
    }
    // no task (even a deleted one) charged more than once
    for (const r of await q(`SELECT reference_id, count(*)::int AS n FROM transfers WHERE kind = 'usage' AND reference_type = 'task' GROUP BY reference_id HAVING count(*) > 1`)) {
      findings.push(`task ${r.reference_id} has ${r.n} usage transfers`);
    }
    // a failed task charged nothing
    for (const r of await q(`SELECT t.id FROM tasks t WHERE t.status = 'failed' AND EXISTS (SELECT 1 FROM transfers x WHERE x.kind = 'usage' AND x.reference_type = 'task' AND x.reference_id = t.id::text AND x.hold_id = t.hold_id)`)) {
      findings.push(`failed task ${r.id} was charged`);
    }
    // no orphan hold: an active hold belongs to an unfinished task that still points at it
    for (const r of await q(`
      SELECT h.id, h.reference_type, h.reference_id FROM holds h
      WHERE h.status = 'active' AND NOT EXISTS (
        SELECT 1 FROM tasks t WHERE h.reference_type = 'task' AND t.id::text = h.reference_id AND t.hold_id = h.id AND t.status IN ('queued', 'processing'))`)) {
      findings.push(`orphan hold ${r.id} (${r.reference_type} ${r.reference_id})`);
    }
    // each paid payment fulfilled by exactly one purchase transfer, and none that is not paid
    for (const r of await q(`
      SELECT p.id, p.status, (SELECT count(*)::int FROM transfers x WHERE x.kind = 'purchase' AND x.id = 'purchase:' || p.id) AS purchases
      FROM payments p
      WHERE (p.status IN ('paid', 'refunded', 'partially_refunded')) <> ((SELECT count(*) FROM transfers x WHERE x.kind = 'purchase' AND x.id = 'purchase:' || p.id) = 1)`)) {
      findings.push(`payment ${r.id} is ${r.status} with ${r.purchases} purchase transfers`);
    }
    const counts = (await q(`SELECT
        (SELECT count(*)::int FROM tasks WHERE status = 'completed') AS completed,
        (SELECT count(*)::int FROM tasks WHERE status = 'failed') AS failed,
        (SELECT count(*)::int FROM tasks WHERE status IN ('queued', 'processing')) AS unfinished,
        (SELECT count(*)::int FROM transfers) AS transfers,
        (SELECT count(*)::int FROM holds) AS holds,
        (SELECT count(*)::int FROM payments WHERE status = 'paid') AS paid`))[0] as Record<string, number>;
    return { findings, counts };
  } finally {
    await db.end();
  }
}

/** Unfinished tasks (queued or processing). */
export async function unfinishedTasks(databaseUrl: string): Promise<number> {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    return (await db.query(`SELECT count(*)::int AS n FROM tasks WHERE status IN ('queued', 'processing')`)).rows[0].n as number;
  } finally {
    await db.end();
  }
}
