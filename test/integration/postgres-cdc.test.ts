import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IngestError, MemoryKvStore, MemoryObjectStore, MemoryStagingProvider, runUnit } from '../../src/index.js';
import { PostgresCdcSource, PostgresSink } from '../../src/postgres/index.js';
import { ObjectStoreSink } from '../../src/sinks/object-store-sink.js';
import { createSourceTable, diffAsText, insertRows, prng, writeOnce } from '../helpers/cdc.js';
import { useLogicalCluster } from '../helpers/pg-logical.js';

const cluster = useLogicalCluster();
const closers: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const c of closers.reverse()) await c().catch(() => {});
});

function setup(
  name: string,
  opts: { batchRows?: number; maxRows?: number; changes?: { deletes?: 'soft' }; heartbeatTable?: string } = {},
) {
  const unitId = `app.${name}`;
  const source = new PostgresCdcSource({
    connectionString: cluster.url,
    publication: `pub_${name}`,
    slot: 'nucleus',
    units: [unitId],
    batchRows: opts.batchRows ?? 500,
    maxWaitMs: 5_000,
    ...(opts.maxRows && { maxRows: opts.maxRows }),
    ...(opts.heartbeatTable && { heartbeatTable: opts.heartbeatTable }),
  });
  const sink = new PostgresSink({ connectionString: cluster.url, schema: 'tgt', changes: opts.changes });
  closers.push(
    () => source.close(),
    () => sink.close(),
  );
  const kv = new MemoryKvStore();
  const staging = new MemoryStagingProvider();
  const run = (extra: Partial<Parameters<typeof runUnit>[0]> = {}) =>
    runUnit({
      source,
      sink,
      staging,
      kv,
      unit: { vendor: 'postgres', endpointId: 'cdc', unitId },
      disposition: 'merge',
      policy: { sliceMaxRows: 400, retry: { maxAttempts: 1 } },
      ...extra,
    });
  return { unitId, source, sink, kv, run, table: `app.${name}`, target: `tgt.${name}` };
}

/** Run until a run finds nothing new (caught up). */
async function drain(run: () => Promise<{ stats: { rowsExported: number } }>, max = 50) {
  for (let i = 0; i < max; i++) {
    const r = await run();
    if (r.stats.rowsExported === 0) return i + 1;
  }
  throw new Error('did not catch up');
}

describe('PostgresCdcSource → PostgresSink (private cluster, wal_level = logical)', () => {
  let db: pg.Pool;
  beforeAll(async () => {
    db = cluster.pool();
    await db.query('CREATE SCHEMA app');
  });
  it('snapshot while a writer changes the table, then stream: no gap, no overlap; deletes and TOAST kept', async () => {
    const t = setup('items', { batchRows: 100 });
    await createSourceTable(db, t.table, 'pub_items', 3000);

    // a writer runs during the snapshot (the snapshot reads 30 FETCHes of 100 rows)
    const rnd = prng(7);
    const next = { id: 100_000 };
    let writes = 0;
    let stop = false;
    const writer = (async () => {
      const c = await db.connect();
      try {
        while (!stop) writes += await writeOnce(c, t.table, rnd, next);
      } finally {
        c.release();
      }
    })();
    const before = writes;
    const first = await t.run();
    const during = writes - before;
    expect(first.stats.rowsExported).toBeGreaterThanOrEqual(3000 - during);
    expect(during).toBeGreaterThan(0);
    await t.run();
    stop = true;
    await writer;
    await drain(t.run);

    expect(await diffAsText(db, t.table, t.target)).toEqual({ missing: 0, extra: 0 });
    const deleted = Number((await db.query(`SELECT count(*) AS n FROM ${t.target} WHERE id <= 3000`)).rows[0].n);
    expect(deleted).toBeLessThan(3000); // deletes reached the target
    const [status] = await t.source.status();
    expect(status.exists).toBe(true);
    expect(status.lagBytes).toBeLessThan(1024 * 1024);
  });

  it('unchanged TOASTed values are never written as NULL (update in the same slice, later run, key moved)', async () => {
    const t = setup('toast');
    await createSourceTable(db, t.table, 'pub_toast', 20); // ids 10 and 20 have a 4 KiB `big`
    await t.run();
    // in one run: a new row with big, then an update of another column (same slice), a key move of a TOASTed row
    await db.query(`INSERT INTO ${t.table} (id, name, big) VALUES (500, 'x', repeat(md5('a'), 200))`);
    await db.query(`UPDATE ${t.table} SET qty = 1 WHERE id = 500`);
    await db.query(`UPDATE ${t.table} SET id = 1000, qty = 2 WHERE id = 10`);
    await db.query(`UPDATE ${t.table} SET qty = 3 WHERE id = 1000`);
    await t.run();
    // in a later run: only a small column of a TOASTed row
    await db.query(`UPDATE ${t.table} SET qty = 4 WHERE id = 20`);
    await t.run();
    expect(await diffAsText(db, t.table, t.target)).toEqual({ missing: 0, extra: 0 });
    const big = await db.query(`SELECT id, length(big) AS n FROM ${t.target} WHERE id IN (20, 500, 1000) ORDER BY id`);
    expect(big.rows.map((r) => [Number(r.id), r.n])).toEqual([
      [20, 4096],
      [500, 6400],
      [1000, 4096],
    ]);
  });

  it('truncate empties the target; the change log (append) keeps every change with op and LSN', async () => {
    const t = setup('trunc');
    await createSourceTable(db, t.table, 'pub_trunc', 5);
    await t.run();
    await db.query(`TRUNCATE ${t.table}`);
    await insertRows(db, t.table, 7, 2);
    await db.query(`DELETE FROM ${t.table} WHERE id = 8`);
    await t.run();
    expect(await diffAsText(db, t.table, t.target)).toEqual({ missing: 0, extra: 0 });

    // the same unit into a change log: every change row kept, with the change fields as columns
    const log = new PostgresSink({ connectionString: cluster.url, schema: 'log' });
    closers.push(() => log.close());
    const src2 = new PostgresCdcSource({
      connectionString: cluster.url,
      publication: 'pub_trunc',
      slot: 'changelog',
      units: [t.unitId],
      maxWaitMs: 5_000,
    });
    closers.push(() => src2.close());
    const kv = new MemoryKvStore();
    const runLog = () =>
      runUnit({
        source: src2,
        sink: log,
        staging: new MemoryStagingProvider(),
        kv,
        unit: { vendor: 'postgres', endpointId: 'cdc-log', unitId: t.unitId },
        disposition: 'append',
      });
    await runLog();
    await db.query(`UPDATE ${t.table} SET qty = 99 WHERE id = 7`);
    await db.query(`DELETE FROM ${t.table} WHERE id = 7`);
    await runLog();
    const ops = await db.query(`SELECT id, _op, _lsn > 0 AS has_lsn FROM log.trunc ORDER BY _lsn, _seq`);
    expect(ops.rows.map((r) => `${r.id}:${r._op}:${r.has_lsn}`)).toEqual([
      '7:insert:true',
      '7:update:true',
      '7:delete:true',
    ]);
  });

  it('soft deletes keep the row with _deleted_at, _op and _lsn', async () => {
    const t = setup('soft', { changes: { deletes: 'soft' } });
    await createSourceTable(db, t.table, 'pub_soft', 3);
    await t.run();
    await db.query(`DELETE FROM ${t.table} WHERE id = 2`);
    await db.query(`UPDATE ${t.table} SET qty = 5 WHERE id = 3`);
    await t.run();
    const rows = await db.query(`SELECT id, qty, _deleted_at IS NOT NULL AS deleted, _op FROM ${t.target} ORDER BY id`);
    expect(rows.rows.map((r) => [Number(r.id), r.qty, r.deleted, r._op])).toEqual([
      [1, 1, false, 'insert'],
      [2, 2, true, 'delete'],
      [3, 5, false, 'update'],
    ]);
  });

  it('a lost slot fails non-retryable naming the unit and the resync; mode full + replace resyncs', async () => {
    const t = setup('lost');
    await createSourceTable(db, t.table, 'pub_lost', 10);
    await t.run();
    await db.query(`DELETE FROM ${t.table} WHERE id <= 5`);
    await t.source.dropSlot(t.unitId); // as PostgreSQL does when it invalidates a slot, the changes are gone
    const err = await t.run().catch((e) => e);
    expect(IngestError.is(err)).toBe(true);
    expect(err.code).toBe('checkpoint_invalid');
    expect(err.retryable).toBe(false);
    expect(err.message).toContain(t.unitId);
    expect(err.message).toContain("mode 'full'");
    await t.run({ mode: 'full', disposition: 'replace' });
    expect(await diffAsText(db, t.table, t.target)).toEqual({ missing: 0, extra: 0 });
    await db.query(`INSERT INTO ${t.table} (id, name) VALUES (77, 'after')`);
    await t.run();
    expect(await diffAsText(db, t.table, t.target)).toEqual({ missing: 0, extra: 0 });
  });

  it("an idle unit: other tables' WAL and the heartbeat move its slot forward (empty runs release what they read)", async () => {
    const t = setup('idle', { heartbeatTable: 'app.nucleus_heartbeat' });
    await createSourceTable(db, t.table, 'pub_idle', 3);
    await t.run();
    await db.query('CREATE TABLE IF NOT EXISTS app.noise (id serial PRIMARY KEY, v text)');
    await db.query("INSERT INTO app.noise (v) SELECT repeat('x', 200) FROM generate_series(1, 20000)");
    const [before] = await t.source.status();
    expect(before.lagBytes).toBeGreaterThan(1024 * 1024);
    const r = await t.run();
    expect(r.stats.rowsExported).toBe(0);
    const [after] = await t.source.status();
    expect(after.lagBytes).toBeLessThan(256 * 1024);
    expect(Number((await db.query('SELECT count(*) AS n FROM app.nucleus_heartbeat')).rows[0].n)).toBe(1);
  });

  it('a slot PostgreSQL invalidated (max_slot_wal_keep_size) fails with checkpoint_invalid, not retryable', async () => {
    const t = setup('inval');
    await createSourceTable(db, t.table, 'pub_inval', 3);
    await t.run();
    await db.query('CREATE TABLE IF NOT EXISTS app.noise (id serial PRIMARY KEY, v text)');
    await db.query(`ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'`);
    await db.query('SELECT pg_reload_conf()');
    try {
      for (let i = 0; i < 4; i++) {
        await db.query("INSERT INTO app.noise (v) SELECT repeat('y', 100) FROM generate_series(1, 2000)");
        await db.query('SELECT pg_switch_wal()');
      }
      await db.query('CHECKPOINT');
      const [s] = await t.source.status();
      expect(s.walStatus).toBe('lost');
      expect(s.warning).toBe(true);
      const err = await t.run().catch((e) => e);
      expect(err.code).toBe('checkpoint_invalid');
      expect(err.retryable).toBe(false);
      expect(err.message).toContain('invalidated');
      expect(err.message).toContain(t.unitId);
    } finally {
      await db.query('ALTER SYSTEM RESET max_slot_wal_keep_size');
      await db.query('SELECT pg_reload_conf()');
    }
    await t.run({ mode: 'full', disposition: 'replace' });
    expect(await diffAsText(db, t.table, t.target)).toEqual({ missing: 0, extra: 0 });
  });

  it('the object-store sink writes change files (append): one line per change with its op and position', async () => {
    await db.query('CREATE TABLE app.files (id bigint PRIMARY KEY, v text)');
    await db.query('CREATE PUBLICATION pub_files FOR TABLE app.files');
    await db.query("INSERT INTO app.files VALUES (1, 'a'), (2, 'b')");
    const source = new PostgresCdcSource({
      connectionString: cluster.url,
      publication: 'pub_files',
      slot: 'files',
      units: ['app.files'],
      maxWaitMs: 5_000,
    });
    closers.push(() => source.close());
    const store = new MemoryObjectStore();
    const kv = new MemoryKvStore();
    for (const format of ['ndjson', 'parquet'] as const) {
      const sink = new ObjectStoreSink({ store, format, prefix: format });
      const run = () =>
        runUnit({
          source,
          sink,
          staging: new MemoryStagingProvider(),
          kv,
          unit: { vendor: 'postgres', endpointId: `files-${format}`, unitId: 'app.files' },
          disposition: 'append',
        });
      await run();
      await db.query(`UPDATE app.files SET v = '${format}' WHERE id = 1`);
      await db.query('DELETE FROM app.files WHERE id = 2');
      await db.query('INSERT INTO app.files VALUES (2, $1)', [format]);
      const r = await run();
      expect(r.stats.rowsImported).toBe(3);
    }
    const lines: string[] = [];
    for await (const o of store.list('ndjson/')) {
      if (!o.key.endsWith('.ndjson')) continue;
      let text = '';
      for await (const chunk of await store.get(o.key)) text += Buffer.from(chunk).toString('utf8');
      lines.push(...text.trim().split('\n'));
    }
    const changes = lines.map((l) => JSON.parse(l)).filter((x) => x._commit_ts !== null);
    expect(changes.map((x) => `${x.id}:${x._op}`)).toEqual(['1:update', '2:delete', '2:insert']);
    let parquet = 0;
    for await (const o of store.list('parquet/')) if (o.key.endsWith('.parquet')) parquet++;
    expect(parquet).toBeGreaterThanOrEqual(2);
  });

  it('two sinks of one unit read slots of their own: each target follows the source', async () => {
    await createSourceTable(db, 'app.two', 'pub_two', 10);
    const source = new PostgresCdcSource({
      connectionString: cluster.url,
      publication: 'pub_two',
      slot: 'two',
      units: ['app.two'],
      maxWaitMs: 5_000,
    });
    closers.push(() => source.close());
    const kv = new MemoryKvStore();
    const sinks = {
      a: new PostgresSink({ connectionString: cluster.url, schema: 'tgt_a' }),
      b: new PostgresSink({ connectionString: cluster.url, schema: 'tgt_b' }),
    };
    closers.push(
      () => sinks.a.close(),
      () => sinks.b.close(),
    );
    const run = (sinkId: 'a' | 'b') =>
      runUnit({
        source,
        sink: sinks[sinkId],
        staging: new MemoryStagingProvider(),
        kv,
        unit: { vendor: 'postgres', endpointId: 'two', unitId: 'app.two', sinkId },
        disposition: 'merge',
      });
    expect(source.slotOf('app.two', 'a')).not.toBe(source.slotOf('app.two', 'b'));
    await run('a');
    await db.query('DELETE FROM app.two WHERE id <= 3');
    await run('a'); // confirms a's slot past the delete; b has not even started
    await run('b');
    await db.query("UPDATE app.two SET name = 'x' WHERE id = 5");
    await run('b');
    await run('a');
    expect(await diffAsText(db, 'app.two', 'tgt_a.two')).toEqual({ missing: 0, extra: 0 });
    expect(await diffAsText(db, 'app.two', 'tgt_b.two')).toEqual({ missing: 0, extra: 0 });
    const slots = (await source.status({ sinkId: 'b' }))[0];
    expect(slots.exists).toBe(true);
  });
});
