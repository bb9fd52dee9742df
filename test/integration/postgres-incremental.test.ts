import { describe, expect, it } from 'vitest';
import { MemoryKvStore, MemoryStagingProvider, runUnit } from '../../src/index.js';
import { type PostgresCheckpoint, PostgresSink, PostgresSource } from '../../src/postgres/index.js';
import { testContext } from '../../src/testing/index.js';
import { usePostgres } from '../helpers/pg.js';

const env = usePostgres('inc');

/** 1000 rows; the cursor value is shared by groups of 100 rows and groups differ by one microsecond. */
async function seed(table: string, n = 1000) {
  await env.query(`CREATE TABLE "${env.schema}"."${table}" (id bigint PRIMARY KEY, v text, updated_at timestamptz(6))`);
  await env.query(
    `INSERT INTO "${env.schema}"."${table}" SELECT g, 'v' || g, '2024-01-01T00:00:00.000001Z'::timestamptz + (g / 100) * interval '1 microsecond' FROM generate_series(1, $1) g`,
    [n],
  );
}

const unitOf = (table: string) => `${env.schema}.${table}`;

async function readIds(
  source: PostgresSource,
  unitId: string,
  checkpoint: PostgresCheckpoint | null,
  chunkSize: number,
) {
  const batches: Array<{ ids: number[]; checkpoint?: PostgresCheckpoint }> = [];
  for await (const b of source.read(
    { unitId, mode: 'incremental', checkpoint, hints: { chunkSize } },
    testContext({ unitId }),
  )) {
    batches.push({ ids: b.rows.map((r) => Number(r.id)), checkpoint: b.checkpoint });
  }
  return batches;
}

describe('PostgresSource incremental reads', () => {
  it('an unplanned read takes every row once, in bounded batches, and its checkpoint reads nothing more', async () => {
    await seed('ties');
    const unitId = unitOf('ties');
    const source = new PostgresSource({ pool: env.newPool(), units: { [unitId]: { cursorColumns: ['updated_at'] } } });
    const batches = await readIds(source, unitId, null, 64);
    const all = batches.flatMap((b) => b.ids);
    expect(all).toHaveLength(1000);
    expect(new Set(all).size).toBe(1000);
    expect(Math.max(...batches.map((b) => b.ids.length))).toBeLessThanOrEqual(64);
    // only the last batch carries the position; it is PostgreSQL's own text of the cursor
    expect(batches.slice(0, -1).every((b) => b.checkpoint === undefined)).toBe(true);
    const ck = batches.at(-1)!.checkpoint!;
    expect(ck).toMatchObject({
      version: 2,
      columns: ['updated_at'],
      values: ['2024-01-01 00:00:00.000011+00'],
      from: ['2024-01-01 00:00:00.000011+00'],
      seenRows: 1, // id 1000 is the only row at the greatest value
    });
    expect((await readIds(source, unitId, ck, 64)).flatMap((b) => b.ids)).toEqual([]);
    await source.close();
  });

  it('a checkpoint taken on other cursor columns is refused with checkpoint_invalid', async () => {
    const unitId = unitOf('ties');
    const source = new PostgresSource({ pool: env.newPool(), units: { [unitId]: { cursorColumns: ['updated_at'] } } });
    const bad = { version: 2, columns: ['id'], values: ['1'], from: ['1'], seen: '', seenRows: 0 } as const;
    await expect(readIds(source, unitId, bad as unknown as PostgresCheckpoint, 10)).rejects.toMatchObject({
      code: 'checkpoint_invalid',
    });
  });

  it('plan() splits a large table into primary-key ranges that cover every row exactly once', async () => {
    const unitId = unitOf('ties');
    await env.query(`ANALYZE "${env.schema}".ties`);
    const source = new PostgresSource({ pool: env.newPool(), units: { [unitId]: { cursorColumns: ['updated_at'] } } });
    const ctx = testContext({ unitId });
    const plan = await source.plan({ unitId, mode: 'full', checkpoint: null, hints: { sliceMaxRows: 150 } }, ctx);
    expect(plan.slices.length).toBeGreaterThanOrEqual(6);
    expect(plan.checkpoint).toMatchObject({
      version: 2,
      columns: ['updated_at'],
      values: ['2024-01-01 00:00:00.000011+00'],
    });
    const ids: number[] = [];
    const sizes: number[] = [];
    await Promise.all(
      plan.slices.map(async (slice) => {
        let n = 0;
        for await (const b of source.read(
          { unitId, mode: 'full', checkpoint: null, slice, hints: { chunkSize: 40 } },
          ctx,
        )) {
          ids.push(...b.rows.map((r) => Number(r.id)));
          n += b.rows.length;
        }
        sizes.push(n);
      }),
    );
    expect(ids).toHaveLength(1000);
    expect(new Set(ids).size).toBe(1000);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(200);
  });

  it('rows arriving after plan() are left for the next run', async () => {
    await seed('late', 300);
    const unitId = unitOf('late');
    const source = new PostgresSource({ pool: env.newPool(), units: { [unitId]: { cursorColumns: ['updated_at'] } } });
    const ctx = testContext({ unitId });
    const plan = await source.plan(
      { unitId, mode: 'incremental', checkpoint: null, hints: { sliceMaxRows: 100 } },
      ctx,
    );
    await env.query(`INSERT INTO "${env.schema}".late VALUES (5000, 'late', '2030-01-01T00:00:00Z')`);
    const ids: number[] = [];
    for (const slice of plan.slices) {
      for await (const b of source.read({ unitId, mode: 'incremental', checkpoint: null, slice }, ctx))
        ids.push(...b.rows.map((r) => Number(r.id)));
    }
    expect(ids).toHaveLength(300);
    expect(ids).not.toContain(5000);
    const next = await source.plan(
      { unitId, mode: 'incremental', checkpoint: plan.checkpoint, hints: { sliceMaxRows: 100 } },
      ctx,
    );
    const later: number[] = [];
    for (const slice of next.slices) {
      for await (const b of source.read({ unitId, mode: 'incremental', checkpoint: plan.checkpoint, slice }, ctx))
        later.push(...b.rows.map((r) => Number(r.id)));
    }
    expect(later).toEqual([5000]);
  });

  it('runUnit: an incremental run after inserts and updates moves exactly the changed rows', async () => {
    await seed('orders', 1000);
    await env.query(`ANALYZE "${env.schema}".orders`);
    const unitId = unitOf('orders');
    await env.query(`CREATE TABLE "${env.schema}".orders_log (id bigint, v text, updated_at timestamptz(6))`);
    await env.query(
      `CREATE TABLE "${env.schema}".orders_mirror (id bigint PRIMARY KEY, v text, updated_at timestamptz(6))`,
    );
    const pool = env.newPool();
    const source = new PostgresSource({ pool, units: { [unitId]: { cursorColumns: ['updated_at'] } } });
    const kv = new MemoryKvStore();
    const staging = new MemoryStagingProvider();
    const run = (sinkId: 'log' | 'mirror') =>
      runUnit({
        source,
        sink: new PostgresSink({ pool, tables: { [unitId]: `${env.schema}.orders_${sinkId}` } }),
        staging,
        kv,
        unit: { vendor: 'postgres', endpointId: 'pg', unitId, sinkId },
        mode: 'incremental',
        disposition: sinkId === 'log' ? 'append' : 'merge',
        policy: { chunkSize: 77, sliceMaxRows: 250 },
      });
    const first = await Promise.all([run('log'), run('mirror')]);
    expect(first.map((r) => r.stats.rowsExported)).toEqual([1000, 1000]);
    expect(first[0].newCheckpoint).toMatchObject({
      version: 2,
      columns: ['updated_at'],
      values: ['2024-01-01 00:00:00.000011+00'],
    });

    await env.query(
      `INSERT INTO "${env.schema}".orders SELECT g, 'new' || g, '2024-01-02T00:00:00Z' FROM generate_series(1001, 1037) g`,
    );
    await env.query(
      `UPDATE "${env.schema}".orders SET v = 'changed', updated_at = '2024-01-02T00:00:00.5Z' WHERE id % 43 = 0`,
    ); // 23 rows
    const second = await Promise.all([run('log'), run('mirror')]);
    expect(second.map((r) => r.stats.rowsExported)).toEqual([60, 60]);
    const { rows: moved } = await env.query(
      `SELECT id FROM "${env.schema}".orders_log GROUP BY id HAVING count(*) > 1 OR min(v) <> max(v) ORDER BY id`,
    );
    expect(moved.map((r) => Number(r.id))).toEqual(Array.from({ length: 23 }, (_, i) => (i + 1) * 43));
    const { rows: logCount } = await env.query(`SELECT count(*)::int AS n FROM "${env.schema}".orders_log`);
    expect(logCount[0].n).toBe(1060);
    // compared to the millisecond: exact timestamps are the value model's business (issue 10 item 1), not this test's
    const ms = `id, v, date_trunc('milliseconds', updated_at) AS updated_at`;
    const { rows: d } = await env.query(
      `SELECT count(*)::int AS n FROM ((SELECT ${ms} FROM "${env.schema}".orders EXCEPT ALL SELECT ${ms} FROM "${env.schema}".orders_mirror)
        UNION ALL (SELECT ${ms} FROM "${env.schema}".orders_mirror EXCEPT ALL SELECT ${ms} FROM "${env.schema}".orders)) x`,
    );
    expect(d[0].n).toBe(0);

    const third = await run('log');
    expect(third.stats.rowsExported).toBe(0);
    expect(third.newCheckpoint).toEqual(second[0].newCheckpoint);
  });

  it('a planned run over a large boundary (every row ties) is sliced; a tie arriving after the plan above the key the plan saw waits for the next run (500 ties are kept by key, ADR 0005 amendment)', async () => {
    await env.query(`CREATE TABLE "${env.schema}".allties (id int PRIMARY KEY, d date NOT NULL)`);
    await env.query(`INSERT INTO "${env.schema}".allties SELECT g, DATE '2024-06-01' FROM generate_series(1, 500) g`);
    await env.query(`ANALYZE "${env.schema}".allties`);
    const unitId = unitOf('allties');
    const source = new PostgresSource({ pool: env.newPool(), units: { [unitId]: { cursorColumns: ['d'] } } });
    const ctx = testContext({ unitId });
    const plan = await source.plan(
      { unitId, mode: 'incremental', checkpoint: null, hints: { sliceMaxRows: 100 } },
      ctx,
    );
    expect(plan.slices.length).toBeGreaterThanOrEqual(4);
    expect(plan.checkpoint).toMatchObject({
      version: 3,
      values: ['2024-06-01'],
      from: ['2024-06-01'],
      seenRows: 0,
      byKey: { columns: ['id'], ties: ['500'] },
    });
    await env.query(`INSERT INTO "${env.schema}".allties VALUES (0, DATE '2024-06-01'), (1000, DATE '2024-06-01')`);
    const ids: number[] = [];
    for (const slice of plan.slices)
      for await (const b of source.read({ unitId, mode: 'incremental', checkpoint: null, slice }, ctx))
        ids.push(...b.rows.map((r) => Number(r.id)));
    // 0 is below the key the plan saw: in key mode the slice covering it reads it (exported once, by this run);
    // 1000 is above it and waits for the next run
    expect(ids.sort((a, b) => a - b)).toEqual(Array.from({ length: 501 }, (_, i) => i));
    const next = await source.plan(
      { unitId, mode: 'incremental', checkpoint: plan.checkpoint, hints: { sliceMaxRows: 100 } },
      ctx,
    );
    const later: number[] = [];
    for (const slice of next.slices)
      for await (const b of source.read({ unitId, mode: 'incremental', checkpoint: plan.checkpoint, slice }, ctx))
        later.push(...b.rows.map((r) => Number(r.id)));
    expect(later.sort((a, b) => a - b)).toEqual([1000]);
    await source.close();
  });
});
