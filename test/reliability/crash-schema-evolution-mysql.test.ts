/**
 * SIGKILL between the MySQL sink's `ADD COLUMN` and its first slice (issue 21), MariaDB → MariaDB, each worker a child
 * process (workers/schema-evolve-worker-mysql.ts), for merge, append and replace: the killed run leaves the column
 * added and the target's rows as the previous run left them (no slice written; MySQL's DDL commits on its own, so the
 * column stays); the next run, on another process, resumes the pending run, finds the column (no second ADD COLUMN
 * fails) and loads every row once; the target equals the source as text (append: the first snapshot with NULL in the
 * new column, then the second). And `replace` killed while its rows flow after a drop (the MySQL sink builds the new
 * table beside the target, loads it, then swaps it in with one atomic RENAME before writing its ledger rows): the
 * target is still the old table, untouched; the next run drops the stale new table, rebuilds and swaps.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useMySql } from '../helpers/mysql.js';
import { explain, killLeftovers, prepareWorker, sleep, spawnWorker } from './harness.js';

const WORKER = join(import.meta.dirname, 'workers/schema-evolve-worker-mysql.ts');
const my = useMySql('evolvekill');

beforeAll(() => prepareWorker(WORKER), 120_000);
afterAll(() => killLeftovers());

const N = 2000;

/** The rows of a table as sorted text lines of the given column expressions. */
async function text(table: string, cols: string[]): Promise<string[]> {
  const rows = await my.query<any[]>(
    `SELECT CONCAT_WS('|', ${cols.map((c) => `COALESCE(CAST(${c} AS CHAR), 'NULL')`).join(', ')}) AS t FROM ${table}`,
  );
  return rows.map((r) => String(r.t)).sort();
}

async function columns(table: string): Promise<string[]> {
  const rows = await my.query<any[]>(
    'SELECT COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION',
    [my.database, table],
  );
  return rows.map((r) => String(r.c));
}

function worker(src: string, dst: string, disposition: string, root: string, crashAt?: string) {
  return spawnWorker(
    {
      MY_URL: my.url,
      SRC: src,
      DST: dst,
      DISPOSITION: disposition,
      STAGING_ROOT: root,
      ...(crashAt ? { CRASH_AT: crashAt } : {}),
    },
    { script: WORKER },
  );
}

describe('SIGKILL during schema evolution, MariaDB target', { timeout: 120_000 }, () => {
  it.each(['merge', 'append', 'replace'] as const)(
    '%s: killed between ADD COLUMN and the first slice: nothing lost, nothing duplicated, the column added once',
    async (disposition) => {
      const src = `s_${disposition}`;
      const dst = `d_${disposition}`;
      const root = mkdtempSync(join(tmpdir(), 'evolve-kill-my-'));
      await my.query(`CREATE TABLE ${src} (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL)`);
      await my.query(`INSERT INTO ${src} SELECT seq, CONCAT('v', seq) FROM seq_1_to_${N}`);
      const first = await worker(src, dst, disposition, root).done;
      expect(first.result?.ok, explain(first)).toBe(true);
      const v1 = await text(src, ['id', 'v', 'NULL']);
      expect(await text(dst, ['id', 'v', 'NULL'])).toEqual(v1);

      await my.query(`ALTER TABLE ${src} ADD COLUMN region VARCHAR(20)`);
      await my.query(`UPDATE ${src} SET region = CONCAT('r', id % 7), v = CONCAT(v, '!')`);
      const killed = await worker(src, dst, disposition, root, 'schema.evolved').done;
      expect(killed.crashed, explain(killed)).toBe(true);
      expect(killed.lines).toContain('@@crash schema.evolved');
      // the column is there (MySQL DDL commits implicitly); no slice of the killed run was written
      expect(await columns(dst)).toEqual(['id', 'v', 'region']);
      expect(await text(dst, ['id', 'v', 'region'])).toEqual(v1);

      await sleep(1600); // the killed worker's lease expires
      const next = await worker(src, dst, disposition, root).done;
      expect(next.result?.ok, explain(next)).toBe(true);
      expect(next.result?.resumed).toBe(true);
      expect(await columns(dst)).toEqual(['id', 'v', 'region']);
      const v2 = await text(src, ['id', 'v', 'region']);
      const expected = disposition === 'append' ? [...v1, ...v2].sort() : v2;
      expect(await text(dst, ['id', 'v', 'region'])).toEqual(expected);
      const [{ n }] = await my.query<any[]>(`SELECT CAST(COUNT(*) AS SIGNED) AS n FROM ${dst}`);
      expect(Number(n)).toBe(disposition === 'append' ? 2 * N : N);
    },
  );
  it('replace killed while the rows flow into the table rebuilt beside the target: the old table stays as it was; the next run rebuilds and swaps', async () => {
    const root = mkdtempSync(join(tmpdir(), 'evolve-kill-my-'));
    await my.query('CREATE TABLE s_flow (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL, legacy VARCHAR(20) NOT NULL)');
    await my.query(`INSERT INTO s_flow SELECT seq, CONCAT('v', seq), CONCAT('l', seq) FROM seq_1_to_${N}`);
    const first = await worker('s_flow', 'd_flow', 'replace', root).done;
    expect(first.result?.ok, explain(first)).toBe(true);
    const v1 = await text('s_flow', ['id', 'v', 'legacy']);

    await my.query('ALTER TABLE s_flow ADD COLUMN region VARCHAR(20), DROP COLUMN legacy, MODIFY v TEXT NOT NULL');
    await my.query(`UPDATE s_flow SET region = CONCAT('r', id % 7), v = CONCAT(v, '!')`);
    const killed = await worker('s_flow', 'd_flow', 'replace', root, 'import.progress').done;
    expect(killed.crashed, explain(killed)).toBe(true);
    // nothing was swapped in: the old table, its columns and rows; the new table is left beside it
    expect(await columns('d_flow')).toEqual(['id', 'v', 'legacy']);
    expect(await text('d_flow', ['id', 'v', 'legacy'])).toEqual(v1);

    await sleep(1600);
    const next = await worker('s_flow', 'd_flow', 'replace', root).done;
    expect(next.result?.ok, explain(next)).toBe(true);
    expect(next.result?.resumed).toBe(true);
    // rebuilt from the staged schema: the dropped column is gone, nothing is left beside the target
    expect(await columns('d_flow')).toEqual(['id', 'v', 'region']);
    expect(await text('d_flow', ['id', 'v', 'region'])).toEqual(await text('s_flow', ['id', 'v', 'region']));
    const left = await my.query<any[]>(
      "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME LIKE '\\_nucleus\\_%\\_d\\_flow\\_%'",
      [my.database],
    );
    expect(left).toEqual([]);
  });
});
