/**
 * The PostgreSQL endpoints never wait on a connection they can never get: a pool of one shared by source, sink and
 * KvStore, and a pool whose other connections the application holds for the whole run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kysely, PostgresDialect } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { arrowCodec } from '../../src/arrow/index.js';
import { FileSystemObjectStore } from '../../src/fs/index.js';
import {
  checkpointKey,
  MemoryStagingProvider,
  ndjsonCodec,
  ObjectStoreStagingProvider,
  type RecordCodec,
  runUnit,
} from '../../src/index.js';
import { PostgresKvStore, PostgresSink, PostgresSource, pgCopyCodec } from '../../src/postgres/index.js';
import { testContext } from '../../src/testing/index.js';
import { usePostgres } from '../helpers/pg.js';

const env = usePostgres('pool');
const tmp = mkdtempSync(join(tmpdir(), 'pg-pool-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function table(name: string, rows: number) {
  await env.query(`CREATE TABLE "${env.schema}"."${name}" (id int PRIMARY KEY, v text NOT NULL, seq int NOT NULL)`);
  await env.query(`CREATE TABLE "${env.schema}"."${name}_dst" (id int, v text, seq int)`);
  await env.query(`INSERT INTO "${env.schema}"."${name}" SELECT g, 'v' || g, g FROM generate_series(1, $1) g`, [rows]);
  await env.query(`ANALYZE "${env.schema}"."${name}"`);
}

const count = async (name: string) =>
  Number(
    (await env.query(`SELECT count(DISTINCT id)::int AS d, count(*)::int AS n FROM "${env.schema}"."${name}"`)).rows[0]
      .n,
  );

describe('PostgreSQL endpoints on small and shared pools', { timeout: 60_000 }, () => {
  it('one pool of max 1 serves source, sink and KvStore for a sliced run with concurrency 4', async () => {
    await table('one', 2000);
    const pool = env.newPool({ max: 1 });
    const kv = new PostgresKvStore({
      db: new Kysely<any>({ dialect: new PostgresDialect({ pool }) }),
      schema: env.schema,
    });
    await kv.migrate();
    const unitId = `${env.schema}.one`;
    const unit = { vendor: 'postgres', endpointId: 'pg', unitId };
    const result = await runUnit({
      source: new PostgresSource({ pool, units: { [unitId]: { cursorColumns: ['seq'] } } }),
      sink: new PostgresSink({
        pool,
        importConcurrency: 4,
        tables: { [unitId]: `${env.schema}.one_dst` },
        ledgerTable: `${env.schema}.ledger`,
      }),
      staging: new MemoryStagingProvider(),
      kv,
      unit,
      mode: 'incremental',
      policy: { sliceMaxRows: 300, exportConcurrency: 4, retry: { maxAttempts: 1 } },
      // a deadlock would hang: end it as a failure instead
      signal: AbortSignal.timeout(45_000),
    });
    expect(result.stats.slices).toBeGreaterThanOrEqual(6);
    expect(result.stats.rowsImported).toBe(2000);
    expect(await count('one_dst')).toBe(2000);
    expect((await kv.get(checkpointKey(unit)))?.value).toMatchObject({ values: ['2000'] });
  });

  // the byte paths (pass-through, transcoded NDJSON and Arrow) hold a connection for a whole COPY: they too must
  // take one connection at a time from a pool of one, with every concurrency above it
  for (const [name, codec] of [
    ['pg-copy', pgCopyCodec()],
    ['ndjson', ndjsonCodec()],
    ['arrow', arrowCodec()],
  ] as [string, RecordCodec][]) {
    it(`one pool of max 1 for source, sink and KvStore with ${name} staging on disk (COPY out and in, concurrency 4)`, async () => {
      const name_ = `one_${name.replace('-', '_')}`;
      await table(name_, 2000);
      const pool = env.newPool({ max: 1 });
      const kv = new PostgresKvStore({
        db: new Kysely<any>({ dialect: new PostgresDialect({ pool }) }),
        schema: env.schema,
      });
      await kv.migrate();
      const unitId = `${env.schema}.${name_}`;
      const unit = { vendor: 'postgres', endpointId: 'pg', unitId };
      let rowReads = 0;
      // counts the row path's reads: every slice here must take the byte path
      const source = new (class extends PostgresSource {
        override read(...args: Parameters<PostgresSource['read']>) {
          rowReads++;
          return super.read(...args);
        }
      })({ pool, units: { [unitId]: { cursorColumns: ['seq'] } } });
      const result = await runUnit({
        source,
        sink: new PostgresSink({
          pool,
          importConcurrency: 4,
          tables: { [unitId]: `${env.schema}.${name_}_dst` },
          ledgerTable: `${env.schema}.ledger`,
        }),
        staging: new ObjectStoreStagingProvider({
          store: new FileSystemObjectStore({ root: join(tmp, name_) }),
          codec,
        }),
        kv,
        unit,
        mode: 'incremental',
        policy: { sliceMaxRows: 300, exportConcurrency: 4, retry: { maxAttempts: 1 } },
        signal: AbortSignal.timeout(45_000),
      });
      expect(result.stats.slices).toBeGreaterThanOrEqual(6);
      expect(rowReads).toBe(0);
      expect(result.stats.rowsImported).toBe(2000);
      expect(await count(`${name_}_dst`)).toBe(2000);
      const diff = await env.query(
        `SELECT count(*)::int AS n FROM ((TABLE "${env.schema}"."${name_}" EXCEPT ALL TABLE "${env.schema}"."${name_}_dst")
         UNION ALL (TABLE "${env.schema}"."${name_}_dst" EXCEPT ALL TABLE "${env.schema}"."${name_}")) d`,
      );
      expect(diff.rows[0].n).toBe(0);
      expect((await kv.get(checkpointKey(unit)))?.value).toMatchObject({ values: ['2000'] });
      expect((await pool.query('SELECT 1 AS one')).rows[0].one).toBe(1);
    });
  }

  it('a sink on a pool of max 1 imports many slices directly (no second connection is awaited)', async () => {
    await table('direct', 900);
    const pool = env.newPool({ max: 1 });
    const unitId = `${env.schema}.direct`;
    const staging = new MemoryStagingProvider();
    const ctx = testContext({ unitId, runId: 'run-direct', signal: AbortSignal.timeout(30_000) });
    const session = await staging.allocateSession(ctx);
    const source = new PostgresSource({ pool, units: { [unitId]: { cursorColumns: ['seq'] } } });
    const plan = await source.plan({ unitId, mode: 'full', checkpoint: null, hints: { sliceMaxRows: 100 } }, ctx);
    for (const slice of plan.slices) {
      const w = session.writer({ slice: slice.index, schema: plan.schema });
      for await (const b of source.read({ unitId, mode: 'full', checkpoint: null, slice }, ctx))
        await w.writeBatch(b.rows);
      await w.close();
    }
    await session.seal();
    const desc = await session.describe();
    expect(desc.slices.length).toBeGreaterThanOrEqual(8);
    const sink = new PostgresSink({
      pool,
      importConcurrency: 8,
      tables: { [unitId]: `${env.schema}.direct_dst` },
      ledgerTable: `${env.schema}.ledger`,
    });
    const r = await sink.import(
      {
        unitId,
        reader: session.reader(),
        slices: desc.slices.map((s) => ({ index: s.index, rows: s.rows, reader: session.reader({ slice: s.index }) })),
        handles: [],
        schema: plan.schema,
        disposition: 'append',
      },
      ctx,
    );
    expect(r.rowsImported).toBe(900);
    expect(await count('direct_dst')).toBe(900);
    // the pool is whole again: a query gets the connection
    expect((await pool.query('SELECT 1 AS one')).rows[0].one).toBe(1);
  });

  it('a pool of max 2 whose other connection the application holds for the whole run', async () => {
    await table('shared', 1500);
    const pool = env.newPool({ max: 2 });
    const held = await pool.connect(); // e.g. a LISTEN connection, or the app's own transaction
    try {
      await held.query('BEGIN');
      await held.query('SELECT 1');
      const unitId = `${env.schema}.shared`;
      const result = await runUnit({
        source: new PostgresSource({ pool, units: { [unitId]: { cursorColumns: ['seq'] } } }),
        sink: new PostgresSink({
          pool,
          importConcurrency: 4,
          tables: { [unitId]: `${env.schema}.shared_dst` },
          ledgerTable: `${env.schema}.ledger`,
        }),
        staging: new MemoryStagingProvider(),
        kv: new PostgresKvStore({ db: env.newKysely(), schema: env.schema }),
        unit: { vendor: 'postgres', endpointId: 'pg', unitId },
        mode: 'incremental',
        policy: { sliceMaxRows: 200, exportConcurrency: 4, retry: { maxAttempts: 1 } },
        signal: AbortSignal.timeout(45_000),
      });
      expect(result.stats.slices).toBeGreaterThanOrEqual(6);
      expect(await count('shared_dst')).toBe(1500);
    } finally {
      await held.query('ROLLBACK');
      held.release();
    }
  });
});
