/**
 * Memory follows bytes, not rows: 12,000 rows of 50 KB (≈ 600 MB) go PostgreSQL → filesystem staging → PostgreSQL
 * through runUnit while the process's resident memory stays within 400 MiB of where it started; a single 40 MB row
 * goes through too.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileSystemObjectStore } from '../../src/fs/index.js';
import { MemoryKvStore, ObjectStoreStagingProvider, runUnit } from '../../src/index.js';
import { PostgresSink, PostgresSource } from '../../src/postgres/index.js';
import { usePostgres } from '../helpers/pg.js';

const env = usePostgres('wide');
const root = mkdtempSync(join(tmpdir(), 'nucleus-wide-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const MiB = 1024 * 1024;

/** Sample `rss` every 25 ms while `fn` runs; returns the peak growth over the RSS at the start. */
async function peakRssGrowth<T>(fn: () => Promise<T>): Promise<{ result: T; growth: number; start: number }> {
  (globalThis as { gc?: () => void }).gc?.();
  const start = process.memoryUsage().rss;
  let peak = start;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 25);
  try {
    const result = await fn();
    peak = Math.max(peak, process.memoryUsage().rss);
    return { result, growth: peak - start, start };
  } finally {
    clearInterval(timer);
  }
}

describe('PostgreSQL wide rows', { timeout: 600_000 }, () => {
  it('12,000 rows × 50 KB: peak RSS stays within 400 MiB of the start, every row lands intact', async () => {
    const s = env.schema;
    await env.query(`CREATE TABLE "${s}".wide (id int PRIMARY KEY, seq int NOT NULL, payload text NOT NULL)`);
    await env.query(`CREATE TABLE "${s}".wide_dst (id int, seq int, payload text)`);
    // 50 KB of text per row, different in every row (md5 chains), stored uncompressed
    await env.query(`ALTER TABLE "${s}".wide ALTER COLUMN payload SET STORAGE EXTERNAL`);
    await env.query(`INSERT INTO "${s}".wide SELECT g, g, repeat(md5(g::text), 1600) FROM generate_series(1, 12000) g`);
    await env.query(`ANALYZE "${s}".wide`);
    const unitId = `${s}.wide`;
    const pool = env.newPool({ max: 4 });
    const { result, growth, start } = await peakRssGrowth(() =>
      runUnit({
        source: new PostgresSource({ pool, units: { [unitId]: { cursorColumns: ['seq'] } } }),
        sink: new PostgresSink({ pool, tables: { [unitId]: `${s}.wide_dst` }, ledgerTable: `${s}.ledger` }),
        staging: new ObjectStoreStagingProvider({ store: new FileSystemObjectStore({ root }) }),
        kv: new MemoryKvStore(),
        unit: { vendor: 'postgres', endpointId: 'pg', unitId },
        mode: 'incremental',
        policy: { sliceMaxRows: 4000 },
      }),
    );
    console.log(
      `wide rows: RSS at start ${(start / MiB).toFixed(0)} MiB, peak growth ${(growth / MiB).toFixed(0)} MiB (limit 400 MiB)`,
    );
    expect(result.stats.rowsImported).toBe(12_000);
    expect(result.stats.bytesStaged).toBeGreaterThan(600_000_000);
    expect(growth).toBeLessThan(400 * MiB);
    const { rows } = await env.query(
      `SELECT count(*)::int AS n FROM ((SELECT id, seq, md5(payload) FROM "${s}".wide EXCEPT ALL SELECT id, seq, md5(payload) FROM "${s}".wide_dst)
        UNION ALL (SELECT id, seq, md5(payload) FROM "${s}".wide_dst EXCEPT ALL SELECT id, seq, md5(payload) FROM "${s}".wide)) d`,
    );
    expect(rows[0].n).toBe(0);
  });

  it('a single 40 MB row goes through intact', async () => {
    const s = env.schema;
    await env.query(`CREATE TABLE "${s}".huge (id int PRIMARY KEY, seq int NOT NULL, payload text NOT NULL)`);
    await env.query(`CREATE TABLE "${s}".huge_dst (id int, seq int, payload text)`);
    await env.query(
      `INSERT INTO "${s}".huge VALUES (1, 1, repeat('x"\\,', 10 * 1024 * 1024)), (2, 2, 'small'), (3, 3, repeat(md5('a'), 1000))`,
    );
    const unitId = `${s}.huge`;
    const pool = env.newPool({ max: 2 });
    const result = await runUnit({
      source: new PostgresSource({ pool, units: { [unitId]: { cursorColumns: ['seq'] } } }),
      sink: new PostgresSink({ pool, tables: { [unitId]: `${s}.huge_dst` }, ledgerTable: `${s}.ledger` }),
      staging: new ObjectStoreStagingProvider({ store: new FileSystemObjectStore({ root }) }),
      kv: new MemoryKvStore(),
      unit: { vendor: 'postgres', endpointId: 'pg', unitId },
      mode: 'incremental',
    });
    expect(result.stats.rowsImported).toBe(3);
    const { rows } = await env.query(
      `SELECT s.id, length(d.payload) AS len, md5(s.payload) = md5(d.payload) AS same FROM "${s}".huge s JOIN "${s}".huge_dst d USING (id) ORDER BY s.id`,
    );
    expect(rows).toEqual([
      { id: 1, len: 40 * 1024 * 1024, same: true },
      { id: 2, len: 5, same: true },
      { id: 3, len: 32_000, same: true },
    ]);
  });
});
