import { describe, expect, it } from 'vitest';
import { PostgresSource } from '../../src/postgres/index.js';
import { testContext } from '../../src/testing/index.js';
import { usePostgres } from '../helpers/pg.js';

const env = usePostgres('split');

/**
 * A large table is cut into slices from a block sample of its keys (not a sort of every key): the slices are about
 * the size asked for, and between them they read every row exactly once — also where the sample may find nothing (an
 * estimate far above the rows left) and the whole key is used instead.
 */
describe('PostgresSource plan: slice cuts of a large table', () => {
  async function sliceSizes(
    source: PostgresSource,
    unitId: string,
    sliceMaxRows: number,
    mode: 'full' | 'incremental' = 'full',
    checkpoint: any = null,
  ) {
    const ctx = testContext({ unitId });
    const plan = await source.plan({ unitId, mode, checkpoint, hints: { sliceMaxRows } }, ctx);
    const seen = new Map<number, number>();
    const sizes: number[] = [];
    for (const slice of plan.slices) {
      let n = 0;
      for await (const b of source.read({ unitId, mode, checkpoint, slice, hints: { chunkSize: 50_000 } }, ctx)) {
        n += b.rows.length;
        for (const r of b.rows) seen.set(Number(r.id), (seen.get(Number(r.id)) ?? 0) + 1);
      }
      sizes.push(n);
    }
    return { plan, sizes, seen };
  }

  it('a 300,000-row table in slices of 50,000: six slices of about that size, every row once', async () => {
    // keys with gaps and a dense run, so even value ranges would not give even slices
    await env.query(`CREATE TABLE "${env.schema}".big (id bigint PRIMARY KEY, v text)`);
    await env.query(
      `INSERT INTO "${env.schema}".big SELECT CASE WHEN g <= 150000 THEN g ELSE 10000000 + g * 1000 END, 'v' || g
       FROM generate_series(1, 300000) g`,
    );
    await env.query(`ANALYZE "${env.schema}".big`);
    const unitId = `${env.schema}.big`;
    const source = new PostgresSource({ pool: env.newPool() });
    const { plan, sizes, seen } = await sliceSizes(source, unitId, 50_000);
    // more than four slices: each is read through the key's index, not by a scan of the table
    expect(plan.slices.every((s) => !(s.bounds as { scan?: boolean }).scan)).toBe(true);
    expect(sizes.length).toBeGreaterThanOrEqual(5);
    expect(sizes.length).toBeLessThanOrEqual(6);
    for (const n of sizes) {
      expect(n).toBeGreaterThan(25_000);
      expect(n).toBeLessThan(80_000);
    }
    expect(seen.size).toBe(300_000);
    expect([...seen.values()].every((c) => c === 1)).toBe(true);
    await source.close();
  });

  it('two slices of the whole table are read by table scans, and between them read every row once', async () => {
    const unitId = `${env.schema}.big`;
    const source = new PostgresSource({ pool: env.newPool() });
    const { plan, sizes, seen } = await sliceSizes(source, unitId, 150_000);
    expect(plan.slices).toHaveLength(2);
    expect(plan.slices.every((s) => (s.bounds as { scan?: boolean }).scan === true)).toBe(true);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(300_000);
    expect(seen.size).toBe(300_000);
    expect([...seen.values()].every((c) => c === 1)).toBe(true);
    await source.close();
  });

  it('an estimate far above the rows left (a sample may find none): cut on the keys there are, every row once', async () => {
    await env.query(`CREATE TABLE "${env.schema}".stale (id bigint PRIMARY KEY, v text)`);
    await env.query(`INSERT INTO "${env.schema}".stale SELECT g, 'v' || g FROM generate_series(1, 300000) g`);
    await env.query(`ANALYZE "${env.schema}".stale`);
    // the estimate stays at 300,000; three rows are left, in the one block of the table's first 1,000 rows
    await env.query(`DELETE FROM "${env.schema}".stale WHERE id NOT IN (7, 8, 9)`);
    const unitId = `${env.schema}.stale`;
    const source = new PostgresSource({ pool: env.newPool() });
    const { plan, sizes, seen } = await sliceSizes(source, unitId, 1);
    // cut after each of the three keys: the last range is empty
    expect(plan.slices.length).toBe(4);
    expect(sizes).toEqual([1, 1, 1, 0]);
    expect([...seen.keys()].sort()).toEqual([7, 8, 9]);
    await source.close();
  });
});
