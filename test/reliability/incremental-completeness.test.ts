/**
 * A committed incremental run loads every row that existed when it started — with numeric cursors whose text
 * order differs from their numeric order (1 … 5000: '999' > '5000' as text). The crash suites use sequence
 * numbers of equal width (from 1 000 001), so this file is where that property is proved on its own.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { FileSystemObjectStore } from '../../src/fs/index.js';
import type { SourceEndpoint } from '../../src/index.js';
import { checkpointKey, MemoryKvStore, ObjectStoreStagingProvider, runUnit } from '../../src/index.js';
import { PostgresKvStore, PostgresSink, PostgresSource } from '../../src/postgres/index.js';
import { usePostgres } from '../helpers/pg.js';

const env = usePostgres('rel_incr');
const root = mkdtempSync(join(tmpdir(), 'nucleus-incr-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('incremental completeness', () => {
  for (const type of ['bigint', 'integer', 'numeric'] as const) {
    it(`one committed run loads all 5000 rows of a ${type} cursor 1…5000, and the checkpoint is 5000`, async () => {
      const s = env.schema;
      await env.query(`CREATE TABLE "${s}"."src_${type}" (seq ${type} PRIMARY KEY, payload text)`);
      await env.query(`CREATE TABLE "${s}"."dst_${type}" (seq ${type} NOT NULL, payload text)`);
      await env.query(`INSERT INTO "${s}"."src_${type}" SELECT g, 'p' || g FROM generate_series(1, 5000) g`);
      const unitId = `${s}.src_${type}`;
      const kv = new PostgresKvStore({ db: env.newKysely(), schema: s });
      await kv.migrate();
      const unit = { vendor: 'postgres', endpointId: 'incr', unitId, sinkId: type };
      const result = await runUnit({
        source: new PostgresSource({ pool: env.newPool({ max: 2 }), units: { [unitId]: { cursorColumns: ['seq'] } } }),
        sink: new PostgresSink({ pool: env.newPool({ max: 2 }), schema: s, tables: { [unitId]: `${s}.dst_${type}` } }),
        staging: new ObjectStoreStagingProvider({ store: new FileSystemObjectStore({ root }) }),
        kv,
        unit,
        mode: 'incremental',
        policy: { sliceMaxRows: 2000 },
      });
      const loaded = (await env.query(`SELECT count(*)::int AS n FROM "${s}"."dst_${type}"`)).rows[0].n;
      const cp = (await kv.get(checkpointKey(unit)))?.value as { values?: string[] } | undefined;
      expect({ rowsImported: result.stats.rowsImported, loaded, checkpoint: cp?.values?.[0] }).toEqual({
        rowsImported: 5000,
        loaded: 5000,
        checkpoint: '5000',
      });
    }, 60_000);
  }

  for (const mode of ['planned', 'unplanned'] as const) {
    it(`runs repeated while writers insert ties and commit late load every row exactly once, with lag (${mode})`, async () => {
      const s = env.schema;
      const src = `"${s}"."live_${mode}"`;
      const dst = `"${s}"."live_${mode}_dst"`;
      await env.query(
        `CREATE TABLE ${src} (id bigserial PRIMARY KEY, writer int NOT NULL, ts timestamptz(0) NOT NULL)`,
      );
      await env.query(`CREATE TABLE ${dst} (id bigint, writer int, ts timestamptz)`);
      const unitId = `${s}.live_${mode}`;
      const pool = env.newPool({ max: 4 });
      const pgSource = new PostgresSource({ pool, units: { [unitId]: { cursorColumns: ['ts'], lag: '5 seconds' } } });
      const source: SourceEndpoint<any> =
        mode === 'planned' ? pgSource : { descriptor: pgSource.descriptor, read: (r, c) => pgSource.read(r, c) };
      const kv = new MemoryKvStore();
      const opts = {
        source,
        sink: new PostgresSink({ pool, tables: { [unitId]: `${s}.live_${mode}_dst` }, ledgerTable: `${s}.ledger` }),
        staging: new ObjectStoreStagingProvider({ store: new FileSystemObjectStore({ root }), prefix: `live-${mode}` }),
        kv,
        unit: { vendor: 'postgres', endpointId: 'live', unitId },
        mode: 'incremental' as const,
        policy: { sliceMaxRows: 50, retry: { maxAttempts: 1 } },
      };
      // three writers: the cursor is the second the row is written (many ties); every third transaction holds its
      // rows for up to 1.5 s before it commits (late commits inside the 5 s lag). Without lag this test loses rows
      // (measured: 45 to 55 of about 315).
      let stop = false;
      const writers = [0, 1, 2].map(async (w) => {
        const c = new pg.Client({ connectionString: env.url });
        await c.connect();
        let n = 0;
        try {
          while (!stop) {
            n++;
            await c.query('BEGIN');
            await c.query(
              `INSERT INTO ${src} (writer, ts) SELECT $1, date_trunc('second', clock_timestamp()) FROM generate_series(1, 5)`,
              [w],
            );
            if (n % 3 === 0) await c.query('SELECT pg_sleep($1)', [0.3 + ((n * 7 + w) % 12) / 10]);
            await c.query('COMMIT');
          }
        } finally {
          await c.end();
        }
      });
      const started = Date.now();
      let runs = 0;
      while (Date.now() - started < 6_000) {
        await runUnit(opts);
        runs++;
      }
      stop = true;
      await Promise.all(writers);
      await runUnit(opts); // the last rows, after every writer committed
      const total = Number((await env.query(`SELECT count(*) AS n FROM ${src}`)).rows[0].n);
      const diff = await env.query(
        `SELECT count(*)::int AS n FROM ((SELECT id, writer, ts FROM ${src} EXCEPT ALL SELECT id, writer, ts FROM ${dst})
          UNION ALL (SELECT id, writer, ts FROM ${dst} EXCEPT ALL SELECT id, writer, ts FROM ${src})) d`,
      );
      expect(runs).toBeGreaterThan(3);
      expect(total).toBeGreaterThan(100);
      const rowsInTarget = Number((await env.query(`SELECT count(*) AS n FROM ${dst}`)).rows[0].n);
      expect({ rowsInTarget, differing: diff.rows[0].n }).toEqual({ rowsInTarget: total, differing: 0 });
      expect((await kv.get(checkpointKey(opts.unit)))?.value).toMatchObject({ version: 2, columns: ['ts'] });
    }, 120_000);
  }
});
