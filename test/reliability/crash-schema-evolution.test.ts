/**
 * SIGKILL at the new steps of schema evolution (issue 21), PostgreSQL → PostgreSQL, each worker a child process:
 *
 * - between the sink's `ADD COLUMN` and its first slice (merge): the column is there, no row was written; the next run
 *   (on another process) finds the column, loads every row once; the target equals the source as text;
 * - inside a rebuilding `replace` (rows flowing into the table built beside the target, the swap's transaction open):
 *   the old table is untouched (its type, its rows); the next run rebuilds and swaps; the target equals the source.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { usePostgres } from '../helpers/pg.js';
import { explain, killLeftovers, prepareWorker, sleep, spawnWorker } from './harness.js';

const WORKER = join(import.meta.dirname, 'workers/schema-evolve-worker.ts');
const env = usePostgres('evolvekill');

beforeAll(() => prepareWorker(WORKER), 120_000);
afterAll(() => killLeftovers());

const N = 2000;

/** The rows of a table as sorted text lines of the given columns. */
async function text(table: string, cols: string[]): Promise<string[]> {
  const { rows } = await env.query(
    `SELECT concat_ws('|', ${cols.map((c) => `coalesce(${c}::text, 'NULL')`).join(', ')}) AS t FROM "${env.schema}".${table}`,
  );
  return rows.map((r) => r.t as string).sort();
}

function worker(src: string, dst: string, disposition: 'merge' | 'replace', root: string, crashAt?: string) {
  return spawnWorker(
    {
      PG_URL: env.url,
      PG_SCHEMA: env.schema,
      SRC: src,
      DST: dst,
      DISPOSITION: disposition,
      STAGING_ROOT: root,
      ...(crashAt ? { CRASH_AT: crashAt } : {}),
    },
    { script: WORKER },
  );
}

describe('SIGKILL during schema evolution', { timeout: 180_000 }, () => {
  it('between ADD COLUMN and the first slice: nothing lost, nothing duplicated, the column added once', async () => {
    const root = mkdtempSync(join(tmpdir(), 'evolve-kill-'));
    await env.query(`CREATE TABLE "${env.schema}".s1 (id integer PRIMARY KEY, v text NOT NULL)`);
    await env.query(`INSERT INTO "${env.schema}".s1 SELECT g, 'v' || g FROM generate_series(1, ${N}) g`);
    const first = await worker('s1', 'd1', 'merge', root).done;
    expect(first.result?.ok, explain(first)).toBe(true);

    await env.query(`ALTER TABLE "${env.schema}".s1 ADD COLUMN region varchar(20)`);
    await env.query(`UPDATE "${env.schema}".s1 SET region = 'r' || (id % 7), v = v || '!'`);
    const killed = await worker('s1', 'd1', 'merge', root, 'schema.evolved').done;
    expect(killed.crashed, explain(killed)).toBe(true);
    const cols = await env.query(
      `SELECT attname FROM pg_attribute WHERE attrelid = '"${env.schema}".d1'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
    );
    expect(cols.rows.map((r) => r.attname)).toEqual(['id', 'v', 'region']);
    // no slice of the killed run was written: the target holds the first run's rows
    expect(await text('d1', ['id', 'v'])).toEqual(await text('s1', ['id', 'left(v, -1)']));

    await sleep(1600); // the killed worker's lease expires
    const next = await worker('s1', 'd1', 'merge', root).done;
    expect(next.result?.ok, explain(next)).toBe(true);
    expect(next.result?.resumed).toBe(true);
    expect(await text('d1', ['id', 'v', 'region'])).toEqual(await text('s1', ['id', 'v', 'region']));
    const n = await env.query(`SELECT count(*)::int AS n FROM "${env.schema}".d1`);
    expect(n.rows[0].n).toBe(N);
  });

  it('inside the replace swap: the old table stays as it was; the next run rebuilds it', async () => {
    const root = mkdtempSync(join(tmpdir(), 'evolve-kill-'));
    await env.query(`CREATE TABLE "${env.schema}".s2 (id integer PRIMARY KEY, qty integer, legacy text)`);
    await env.query(`INSERT INTO "${env.schema}".s2 SELECT g, g, 'l' || g FROM generate_series(1, ${N}) g`);
    const first = await worker('s2', 'd2', 'replace', root).done;
    expect(first.result?.ok, explain(first)).toBe(true);
    const before = await text('d2', ['id', 'qty', 'legacy']);

    await env.query(`ALTER TABLE "${env.schema}".s2 ALTER COLUMN qty TYPE text, DROP COLUMN legacy`);
    await env.query(`UPDATE "${env.schema}".s2 SET qty = 'q' || qty`);
    const killed = await worker('s2', 'd2', 'replace', root, 'import.progress').done;
    expect(killed.crashed, explain(killed)).toBe(true);
    const type = await env.query(
      `SELECT format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = '"${env.schema}".d2'::regclass AND attname = 'qty'`,
    );
    expect(type.rows[0].t).toBe('integer');
    expect(await text('d2', ['id', 'qty', 'legacy'])).toEqual(before);

    await sleep(1600);
    const next = await worker('s2', 'd2', 'replace', root).done;
    expect(next.result?.ok, explain(next)).toBe(true);
    expect(await text('d2', ['id', 'qty'])).toEqual(await text('s2', ['id', 'qty']));
    const cols = await env.query(
      `SELECT attname FROM pg_attribute WHERE attrelid = '"${env.schema}".d2'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
    );
    expect(cols.rows.map((r) => r.attname)).toEqual(['id', 'qty']);
    // nothing of the swap is left beside the target
    const left = await env.query(
      `SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname LIKE '\\_nucleus\\_%'`,
      [env.schema],
    );
    expect(left.rows[0].n).toBe(0);
  });
});
