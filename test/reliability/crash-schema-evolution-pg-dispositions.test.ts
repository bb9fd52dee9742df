/**
 * SIGKILL between the PostgreSQL sink's `ADD COLUMN` and its first slice (issue 21) for the dispositions
 * crash-schema-evolution.test.ts leaves out — append and replace (it covers merge) — with the same worker
 * (workers/schema-evolve-worker.ts): the column is added (committed before the first slice) and the killed run wrote
 * no row (the target holds the previous run's rows exactly); the next run, on another process, resumes and loads
 * every row once; the target equals the source as text (append: the first snapshot with NULL in the new column, then
 * the second).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { usePostgres } from '../helpers/pg.js';
import { explain, killLeftovers, prepareWorker, sleep, spawnWorker } from './harness.js';

const WORKER = join(import.meta.dirname, 'workers/schema-evolve-worker.ts');
const env = usePostgres('evolvekill2');

beforeAll(() => prepareWorker(WORKER), 120_000);
afterAll(() => killLeftovers());

const N = 2000;

async function text(table: string, cols: string[]): Promise<string[]> {
  const { rows } = await env.query(
    `SELECT concat_ws('|', ${cols.map((c) => `coalesce(${c}::text, 'NULL')`).join(', ')}) AS t FROM "${env.schema}".${table}`,
  );
  return rows.map((r) => r.t as string).sort();
}

async function columns(table: string): Promise<string[]> {
  const { rows } = await env.query(
    `SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
    [`"${env.schema}".${table}`],
  );
  return rows.map((r) => r.attname as string);
}

function worker(src: string, dst: string, disposition: string, root: string, crashAt?: string) {
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

describe('SIGKILL during schema evolution, PostgreSQL append and replace', { timeout: 120_000 }, () => {
  it.each(['append', 'replace'] as const)(
    '%s: killed between ADD COLUMN and the first slice: nothing lost, nothing duplicated, the column added once',
    async (disposition) => {
      const src = `s_${disposition}`;
      const dst = `d_${disposition}`;
      const root = mkdtempSync(join(tmpdir(), 'evolve-kill-pg-'));
      await env.query(`CREATE TABLE "${env.schema}".${src} (id integer PRIMARY KEY, v text NOT NULL)`);
      await env.query(`INSERT INTO "${env.schema}".${src} SELECT g, 'v' || g FROM generate_series(1, ${N}) g`);
      const first = await worker(src, dst, disposition, root).done;
      expect(first.result?.ok, explain(first)).toBe(true);
      const v1 = await text(src, ['id', 'v', 'NULL']);

      await env.query(`ALTER TABLE "${env.schema}".${src} ADD COLUMN region varchar(20)`);
      await env.query(`UPDATE "${env.schema}".${src} SET region = 'r' || (id % 7), v = v || '!'`);
      const killed = await worker(src, dst, disposition, root, 'schema.evolved').done;
      expect(killed.crashed, explain(killed)).toBe(true);
      expect(killed.lines).toContain('@@crash schema.evolved');
      // the column is there (the evolve commits before the first slice), no row of the killed run reached the target
      expect(await columns(dst)).toEqual(['id', 'v', 'region']);
      expect(await text(dst, ['id', 'v', 'region'])).toEqual(v1);

      await sleep(1600); // the killed worker's lease expires
      const next = await worker(src, dst, disposition, root).done;
      expect(next.result?.ok, explain(next)).toBe(true);
      expect(next.result?.resumed).toBe(true);
      expect(await columns(dst)).toEqual(['id', 'v', 'region']);
      const v2 = await text(src, ['id', 'v', 'region']);
      expect(await text(dst, ['id', 'v', 'region'])).toEqual(disposition === 'append' ? [...v1, ...v2].sort() : v2);
    },
  );
});
