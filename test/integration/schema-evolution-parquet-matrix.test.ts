/**
 * The Parquet cells of the schema-change matrix (issue 21): a real SQL source (PostgreSQL, MariaDB) → the object-store
 * sink writing Parquet, append and replace, staged with NDJSON, `ndjson.gz`, Arrow and the engine's pass-through
 * codec. The source changes run by run — a column added, types widened (integer → bigint, varchar → text), a column dropped, a
 * column renamed (drop + add) — and after each run DuckDB reads the files the unit's `_CURRENT` pointer names with
 * `read_parquet([...], union_by_name = true)`; the rows, as text, equal the source's both ways: append every snapshot
 * (a dropped column's old values in the files written before the drop, NULL after; an added column NULL in older
 * files), replace the last snapshot only (the replaced runs' files are gone). Also a nullability relaxed, a type
 * narrowed and a reorder; and a pass-through slice staged before a change, imported after it, still lands as
 * a v1 file that DuckDB reads together with the next run's v2 file.
 */

import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { arrowCodec } from '../../src/arrow/index.js';
import { FileSystemObjectStore } from '../../src/fs/index.js';
import {
  exportUnit,
  type IngestionEvent,
  importUnit,
  MemoryKvStore,
  ObjectStoreSink,
  ObjectStoreStagingProvider,
  type RunUnitOptions,
  runUnit,
} from '../../src/index.js';
import { MySqlSource, mySqlLoadDataCodec } from '../../src/mysql/index.js';
import { PostgresSource, pgCopyCodec } from '../../src/postgres/index.js';
import { useMySql } from '../helpers/mysql.js';
import { usePostgres } from '../helpers/pg.js';

const pg = usePostgres('evparquet');
const my = useMySql('evparquet');

type Text = Array<string | null>;

interface Engine {
  name: 'postgres' | 'mariadb';
  exec(sql: string): Promise<void>;
  text(table: string, cols: string[], has: string[]): Promise<Text[]>;
  q(table: string): string;
  unitId(table: string): string;
  source(): RunUnitOptions['source'];
  passThrough(): ReturnType<typeof pgCopyCodec>;
  widen: string;
  relax: string;
  narrow: string;
}

const postgres: Engine = {
  name: 'postgres',
  exec: async (sql) => void (await pg.query(sql)),
  async text(table, cols, has) {
    const sel = cols.map((c, i) => `${has.includes(c) ? `${c}::text` : 'NULL::text'} AS c${i}`).join(', ');
    const { rows } = await pg.query(`SELECT ${sel} FROM "${pg.schema}".${table}`, []);
    return rows.map((r) => Object.values(r) as Text);
  },
  q: (t) => `"${pg.schema}".${t}`,
  unitId: (t) => `${pg.schema}.${t}`,
  source: () => new PostgresSource({ pool: pg.newPool() }),
  passThrough: () => pgCopyCodec(),
  widen: 'ALTER TABLE %t ALTER COLUMN name TYPE text, ALTER COLUMN qty TYPE bigint',
  relax: 'ALTER TABLE %t ALTER COLUMN name DROP NOT NULL',
  narrow: 'ALTER TABLE %t ALTER COLUMN region TYPE varchar(5)',
};

const mariadb: Engine = {
  name: 'mariadb',
  exec: async (sql) => void (await my.query(sql)),
  async text(table, cols, has) {
    const sel = cols.map((c, i) => `${has.includes(c) ? `CAST(${c} AS CHAR)` : 'NULL'} AS c${i}`).join(', ');
    const rows = await my.query<any[]>(`SELECT ${sel} FROM ${table}`);
    return rows.map((r) => Object.values(r).map((v) => (v === null ? null : String(v))));
  },
  q: (t) => t,
  unitId: (t) => `${my.database}.${t}`,
  source: () => new MySqlSource({ pool: my.newPool() }),
  passThrough: () => mySqlLoadDataCodec(),
  widen: 'ALTER TABLE %t MODIFY name TEXT NOT NULL, MODIFY qty BIGINT',
  relax: 'ALTER TABLE %t MODIFY name TEXT NULL',
  narrow: 'ALTER TABLE %t MODIFY region VARCHAR(5)',
};

const ALL = ['id', 'name', 'qty', 'legacy', 'region', 'zone'];
const sorted = (rows: Text[]) => [...rows].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));

let db: DuckDBInstance;
beforeAll(async () => {
  db = await DuckDBInstance.create(':memory:');
});
afterAll(() => db?.closeSync());

/** The Parquet files of the runs `_CURRENT` names, read together by column name, as text (absent columns NULL). */
async function readLake(root: string): Promise<{ rows: Text[]; files: string[]; types: Record<string, string> }> {
  const pointers = (readdirSync(root, { recursive: true }) as string[]).filter((p) => p.endsWith('_CURRENT'));
  expect(pointers).toHaveLength(1);
  const pointer = JSON.parse(readFileSync(join(root, pointers[0]!), 'utf8'));
  const files = (pointer.runs as Array<{ dir: string }>).flatMap((r) =>
    (readdirSync(join(root, r.dir)) as string[]).filter((f) => f.endsWith('.parquet')).map((f) => join(root, r.dir, f)),
  );
  const conn = await db.connect();
  try {
    const from = `read_parquet([${files.map((p) => `'${p.replaceAll("'", "''")}'`).join(', ')}], union_by_name = true)`;
    const described = (await conn.runAndReadAll(`DESCRIBE SELECT * FROM ${from}`)).getRowObjectsJson();
    const types = Object.fromEntries(described.map((r) => [String(r.column_name), String(r.column_type)]));
    const sel = ALL.map((c, i) => `${c in types ? `CAST("${c}" AS VARCHAR)` : 'NULL'} AS c${i}`).join(', ');
    const rows = (await conn.runAndReadAll(`SELECT ${sel} FROM ${from}`))
      .getRowObjectsJson()
      .map((r) => Object.values(r).map((v) => (v === null ? null : String(v))));
    return { rows, files, types };
  } finally {
    conn.closeSync();
  }
}

describe.each([postgres, mariadb])('schema-change matrix, Parquet target: $name → object store', (engine) => {
  it.each([
    ['ndjson', 'append'],
    ['ndjson.gz', 'append'],
    ['arrow', 'append'],
    ['pass-through', 'append'],
    ['ndjson', 'replace'],
    ['ndjson.gz', 'replace'],
    ['arrow', 'replace'],
    ['pass-through', 'replace'],
  ] as const)(
    '%s staging, %s: add, widen, drop, relax, narrow, rename (reorder); DuckDB reads the files by name',
    async (codec, disposition) => {
      const tag = `${codec.replace(/[^a-z]/g, '')}_${disposition}`;
      const src = `p_${tag}`;
      const root = mkdtempSync(join(tmpdir(), 'evparquet-lake-'));
      const sql = (s: string) => engine.exec(s.replaceAll('%t', engine.q(src)));
      const events: IngestionEvent[] = [];
      const base = {
        source: engine.source(),
        sink: new ObjectStoreSink({ store: new FileSystemObjectStore({ root }), format: 'parquet', prefix: 'lake' }),
        staging: new ObjectStoreStagingProvider({
          store: new FileSystemObjectStore({ root: mkdtempSync(join(tmpdir(), 'evparquet-stage-')) }),
          codec: codec === 'pass-through' ? engine.passThrough() : codec === 'arrow' ? arrowCodec() : codec,
        }),
        kv: new MemoryKvStore(),
        unit: { vendor: engine.name, endpointId: `evp-${tag}`, unitId: engine.unitId(src), sinkId: 'lake' },
        mode: 'full' as const,
        disposition,
        primaryKey: ['id'],
        onEvent: (e: IngestionEvent) => events.push(e),
        policy: { retry: { maxAttempts: 1 } },
      };
      let has = ['id', 'name', 'qty', 'legacy'];
      let expected: Text[] = [];
      let runs = 0;
      const run = async () => {
        await runUnit(base);
        runs++;
        const snap = await engine.text(src, ALL, has);
        expected = disposition === 'append' ? [...expected, ...snap] : snap;
        const lake = await readLake(root);
        expect(sorted(lake.rows)).toEqual(sorted(expected));
        // append keeps one file per run; replace leaves only the last run's file, on disk too
        expect(lake.files).toHaveLength(disposition === 'append' ? runs : 1);
        const onDisk = (readdirSync(root, { recursive: true }) as string[]).filter((p) => p.endsWith('.parquet'));
        expect(onDisk).toHaveLength(lake.files.length);
        return lake;
      };

      await sql('CREATE TABLE %t (id integer PRIMARY KEY, name varchar(10) NOT NULL, qty integer, legacy varchar(20))');
      await sql("INSERT INTO %t VALUES (1, 'a', 1, 'l1'), (2, 'b', NULL, 'l2'), (3, 'c', -3, NULL)");
      expect((await run()).types.qty).toBe('INTEGER');

      // add
      await sql('ALTER TABLE %t ADD COLUMN region varchar(20)');
      await sql("UPDATE %t SET region = 'eu' WHERE id = 1");
      await sql("INSERT INTO %t (id, name, qty, legacy, region) VALUES (4, 'd', 4, 'l4', 'us')");
      has = [...has, 'region'];
      await run();

      // widen: old files hold INTEGER, new ones BIGINT; read together as BIGINT
      await sql(engine.widen);
      await sql("UPDATE %t SET name = 'a much longer name than ten', qty = 9007199254740993 WHERE id = 2");
      expect((await run()).types.qty).toBe('BIGINT');

      // drop: old values in the files written before, NULL in the new file
      await sql('ALTER TABLE %t DROP COLUMN legacy');
      await sql("UPDATE %t SET name = 'c2' WHERE id = 3");
      has = has.filter((c) => c !== 'legacy');
      const dropped = await run();
      if (disposition === 'replace') expect(dropped.types).not.toHaveProperty('legacy');

      // nullability relaxed: a NULL name loads
      await sql(engine.relax);
      await sql("INSERT INTO %t (id, name, qty, region) VALUES (5, NULL, 5, 'x')");
      await run();

      // narrowed: the new files carry the narrower type, read together with the old
      await sql(engine.narrow);
      await run();

      // rename = drop + add
      await sql('ALTER TABLE %t RENAME COLUMN region TO zone');
      await sql("UPDATE %t SET zone = 'z' WHERE id = 1");
      has = [...has.filter((c) => c !== 'region'), 'zone'];
      const renamed = await run();
      expect(renamed.types).toHaveProperty('zone');
      if (disposition === 'replace') expect(renamed.types).not.toHaveProperty('region');

      // reorder: files match by column name (PostgreSQL cannot move a column: the table is rebuilt in another order)
      if (engine.name === 'mariadb') await sql('ALTER TABLE %t MODIFY qty BIGINT AFTER zone');
      else {
        await sql('CREATE TABLE %t_r AS SELECT id, name, zone, qty FROM %t');
        await sql('DROP TABLE %t');
        await sql(`ALTER TABLE %t_r RENAME TO ${src}`);
        await sql('ALTER TABLE %t ADD PRIMARY KEY (id)');
      }
      await run();

      const changed = events.filter((e) => e.type === 'schema.changed') as Array<
        Extract<IngestionEvent, { type: 'schema.changed' }>
      >;
      expect(changed.flatMap((e) => e.diff.added.map((x) => x.name))).toEqual(['region', 'zone']);
      expect(changed.flatMap((e) => e.diff.dropped)).toEqual(['legacy', 'region']);
      expect(changed.flatMap((e) => e.diff.widened.map((x) => x.name))).toEqual(expect.arrayContaining(['qty']));
    },
  );
  it('append: a pass-through slice staged before a change still loads as a v1 file; the next run writes v2', async () => {
    const src = 'p_resume';
    const root = mkdtempSync(join(tmpdir(), 'evparquet-lake-'));
    const sql = (s: string) => engine.exec(s.replaceAll('%t', engine.q(src)));
    const rest = {
      staging: new ObjectStoreStagingProvider({
        store: new FileSystemObjectStore({ root: mkdtempSync(join(tmpdir(), 'evparquet-stage-')) }),
        codec: engine.passThrough(),
      }),
      kv: new MemoryKvStore(),
      unit: { vendor: engine.name, endpointId: 'evp-resume', unitId: engine.unitId(src), sinkId: 'lake' },
      mode: 'full' as const,
      disposition: 'append' as const,
      primaryKey: ['id'],
      policy: { retry: { maxAttempts: 1 } },
    };
    const source = engine.source();
    const sink = new ObjectStoreSink({ store: new FileSystemObjectStore({ root }), format: 'parquet', prefix: 'lake' });
    await sql('CREATE TABLE %t (id integer PRIMARY KEY, name varchar(10) NOT NULL, qty integer, legacy varchar(20))');
    await sql("INSERT INTO %t VALUES (1, 'a', 1, 'l1'), (2, 'b', NULL, 'l2')");
    await exportUnit({ ...rest, source });
    const v1 = await engine.text(src, ALL, ['id', 'name', 'qty', 'legacy']);
    // the source changes after the export: the staged pass-through bytes are v1
    await sql('ALTER TABLE %t ADD COLUMN region varchar(20)');
    await sql(engine.widen);
    await sql('ALTER TABLE %t DROP COLUMN legacy');
    await sql("UPDATE %t SET region = 'eu', qty = 9007199254740993 WHERE id = 1");
    expect((await importUnit({ ...rest, sink })).stats.rowsImported).toBe(2);
    const first = await readLake(root);
    expect(sorted(first.rows)).toEqual(sorted(v1));
    expect(first.types).not.toHaveProperty('region');
    await runUnit({ ...rest, source, sink });
    const v2 = await engine.text(src, ALL, ['id', 'name', 'qty', 'region']);
    const both = await readLake(root);
    expect(both.files).toHaveLength(2);
    expect(sorted(both.rows)).toEqual(sorted([...v1, ...v2]));
    expect(both.types.qty).toBe('BIGINT');
  });
});
