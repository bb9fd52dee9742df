/**
 * The shared part of the schema-change matrix tests (schema-evolution-matrix*.test.ts): the engines (PostgreSQL and
 * MariaDB, each a source and a target), a unit with its own source table, target, KvStore and staging, and the run of
 * change kinds each cell goes through, every run compared with the source as text both ways.
 */

import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { arrowCodec } from '../../src/arrow/index.js';
import { FileSystemObjectStore } from '../../src/fs/index.js';
import {
  type IngestionEvent,
  MemoryKvStore,
  ObjectStoreStagingProvider,
  type RunUnitOptions,
  runUnit,
} from '../../src/index.js';
import { MySqlSink, MySqlSource, mySqlLoadDataCodec } from '../../src/mysql/index.js';
import { PostgresSink, PostgresSource, pgCopyCodec } from '../../src/postgres/index.js';
import { useMySql } from '../helpers/mysql.js';
import { usePostgres } from '../helpers/pg.js';

export type Text = Array<string | null>;
export type Disposition = 'merge' | 'append' | 'replace';
export type Codec = 'ndjson' | 'ndjson.gz' | 'arrow' | 'pass-through';

export interface Engine {
  name: 'postgres' | 'mariadb';
  exec(sql: string): Promise<void>;
  text(table: string, cols: string[], has: string[]): Promise<Text[]>;
  columns(table: string): Promise<Record<string, { type: string; nullable: boolean }>>;
  q(table: string): string;
  unitId(table: string): string;
  source(): RunUnitOptions['source'];
  sink(unitId: string, target: string): RunUnitOptions['sink'];
  passThrough(): ReturnType<typeof pgCopyCodec>;
  ddl: { create: string; widen: string[]; relax: string; narrow: string; retype: string };
}

/** The two engines on a fresh PostgreSQL schema and MariaDB database of the calling test file. */
export function useEngines(prefix: string) {
  const pg = usePostgres(prefix);
  const my = useMySql(prefix);
  const postgres: Engine = {
    name: 'postgres',
    exec: async (sql) => void (await pg.query(sql)),
    async text(table, cols, has) {
      const sel = cols.map((c, i) => `${has.includes(c) ? `${c}::text` : 'NULL::text'} AS c${i}`).join(', ');
      const { rows } = await pg.query(`SELECT ${sel} FROM "${pg.schema}".${table}`, []);
      return rows.map((r) => Object.values(r) as Text);
    },
    async columns(table) {
      const { rows } = await pg.query(
        `SELECT attname AS c, format_type(atttypid, atttypmod) AS t, NOT attnotnull AS n FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`,
        [`"${pg.schema}".${table}`],
      );
      return Object.fromEntries(rows.map((r) => [r.c, { type: r.t, nullable: r.n }]));
    },
    q: (t) => `"${pg.schema}".${t}`,
    unitId: (t) => `${pg.schema}.${t}`,
    source: () => new PostgresSource({ pool: pg.newPool() }),
    sink: (unitId, target) => new PostgresSink({ pool: pg.newPool(), tables: { [unitId]: `${pg.schema}.${target}` } }),
    passThrough: () => pgCopyCodec(),
    ddl: {
      create:
        'id integer PRIMARY KEY, name varchar(10) NOT NULL, qty integer, amount numeric(10,2), legacy varchar(20) NOT NULL',
      widen: [
        'ALTER TABLE %t ALTER COLUMN name TYPE text',
        'ALTER TABLE %t ALTER COLUMN qty TYPE bigint',
        'ALTER TABLE %t ALTER COLUMN amount TYPE numeric(14,2)',
      ],
      relax: 'ALTER TABLE %t ALTER COLUMN name DROP NOT NULL',
      narrow: 'ALTER TABLE %t ALTER COLUMN region TYPE varchar(5)',
      retype: 'ALTER TABLE %t ALTER COLUMN qty TYPE varchar(30)',
    },
  };

  const mariadb: Engine = {
    name: 'mariadb',
    exec: async (sql) => void (await my.query(sql)),
    async text(table, cols, has) {
      const sel = cols.map((c, i) => `${has.includes(c) ? `CAST(${c} AS CHAR)` : 'NULL'} AS c${i}`).join(', ');
      const rows = await my.query<any[]>(`SELECT ${sel} FROM ${table}`);
      return rows.map((r) => Object.values(r).map((v) => (v === null ? null : String(v))));
    },
    async columns(table) {
      const rows = await my.query<any[]>(
        'SELECT COLUMN_NAME AS c, COLUMN_TYPE AS t, IS_NULLABLE AS n FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
        [my.database, table],
      );
      return Object.fromEntries(rows.map((r) => [r.c, { type: String(r.t), nullable: r.n === 'YES' }]));
    },
    q: (t) => t,
    unitId: (t) => `${my.database}.${t}`,
    source: () => new MySqlSource({ pool: my.newPool() }),
    sink: (unitId, target) => new MySqlSink({ pool: my.newPool(), tables: { [unitId]: target } }),
    passThrough: () => mySqlLoadDataCodec(),
    ddl: {
      create:
        'id INT PRIMARY KEY, name VARCHAR(10) NOT NULL, qty INT, amount DECIMAL(10,2), legacy VARCHAR(20) NOT NULL',
      widen: ['ALTER TABLE %t MODIFY name TEXT NOT NULL, MODIFY qty BIGINT, MODIFY amount DECIMAL(14,2)'],
      relax: 'ALTER TABLE %t MODIFY name TEXT NULL',
      narrow: 'ALTER TABLE %t MODIFY region VARCHAR(5)',
      retype: 'ALTER TABLE %t MODIFY qty VARCHAR(30)',
    },
  };
  return { pg, my, postgres, mariadb };
}

export const ALL = ['id', 'name', 'qty', 'amount', 'legacy', 'region', 'zone'];
export const sorted = (rows: Text[]) => [...rows].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));

/** A unit of `engine`'s source table `s_<tag>` into `to`'s target `d_<tag>` (the same engine unless given). */
export function unitOf(engine: Engine, codec: Codec, disposition: Disposition, tag: string, to: Engine = engine) {
  const src = `s_${tag}`;
  const dst = `d_${tag}`;
  const unitId = engine.unitId(src);
  const events: IngestionEvent[] = [];
  let has = ['id', 'name', 'qty', 'amount', 'legacy'];
  let expected: Text[] = [];
  const root = mkdtempSync(join(tmpdir(), 'evmatrix-'));
  const base = {
    source: engine.source(),
    sink: to.sink(unitId, dst),
    staging: new ObjectStoreStagingProvider({
      store: new FileSystemObjectStore({ root }),
      codec: codec === 'pass-through' ? engine.passThrough() : codec === 'arrow' ? arrowCodec() : codec,
    }),
    kv: new MemoryKvStore(),
    unit: { vendor: engine.name, endpointId: `evm-${tag}`, unitId, sinkId: 'x' },
    mode: 'full' as const,
    disposition,
    primaryKey: ['id'],
    onEvent: (e: IngestionEvent) => events.push(e),
    policy: { retry: { maxAttempts: 1 } },
  };
  return {
    to,
    src,
    dst,
    events,
    base,
    sql: (s: string) => engine.exec(s.replaceAll('%t', engine.q(src))),
    /** The staged slice files' names (the codec's extension). */
    staged: () => (readdirSync(root, { recursive: true }) as string[]).filter((p) => /\/\d+\.[a-z.]+$/.test(p)),
    setHas(cols: string[]) {
      has = cols;
    },
    /** The target as text (every column of ALL; NULL where the target has no such column). */
    async target() {
      return sorted(await to.text(dst, ALL, Object.keys(await to.columns(dst))));
    },
    async run() {
      const r = await runUnit(base);
      await this.landed();
      return r;
    },
    async landed() {
      const snap = await engine.text(src, ALL, has);
      expected = disposition === 'append' ? [...expected, ...snap] : snap;
      expect(await this.target()).toEqual(sorted(expected));
    },
  };
}

/** add, widen, drop, relax, narrow, rename, reorder, tighten; each run compared with the source as text. */
export async function changeKinds(engine: Engine, u: ReturnType<typeof unitOf>) {
  await u.sql(`CREATE TABLE %t (${engine.ddl.create})`);
  await u.sql(
    `INSERT INTO %t (id, name, qty, amount, legacy) VALUES (1, 'a', 1, 1.50, 'l1'), (2, 'b', NULL, NULL, 'l2'), (3, 'c', 3, -3.25, 'l3')`,
  );
  await u.run();

  // add
  await u.sql('ALTER TABLE %t ADD COLUMN region varchar(20)');
  await u.sql("UPDATE %t SET region = 'eu' WHERE id = 1");
  await u.sql("INSERT INTO %t (id, name, qty, amount, legacy, region) VALUES (4, 'd', 4, 4.00, 'l4', 'us')");
  u.setHas(['id', 'name', 'qty', 'amount', 'legacy', 'region']);
  await u.run();
  expect((await u.to.columns(u.dst)).region!.nullable).toBe(true);

  // widen
  for (const s of engine.ddl.widen) await u.sql(s);
  await u.sql(
    "UPDATE %t SET name = 'a much longer name than ten', qty = 9007199254740993, amount = 123456789012.34 WHERE id = 2",
  );
  await u.run();
  const widened = await u.to.columns(u.dst);
  expect(widened.qty!.type).toMatch(/^bigint/);
  expect(widened.amount!.type).toMatch(/^(numeric|decimal)\(14,2\)$/);

  // drop: old values before the drop, NULL in every row written after it
  await u.sql('ALTER TABLE %t DROP COLUMN legacy');
  await u.sql("UPDATE %t SET name = 'c2' WHERE id = 3");
  u.setHas(['id', 'name', 'qty', 'amount', 'region']);
  await u.run();

  // nullability relaxed
  await u.sql(engine.ddl.relax);
  await u.sql("INSERT INTO %t (id, name, qty, amount, region) VALUES (5, NULL, 5, 5.00, 'x')");
  await u.run();
  expect((await u.to.columns(u.dst)).name!.nullable).toBe(true);

  // narrow
  await u.sql(engine.ddl.narrow);
  await u.run();

  // rename = drop + add
  await u.sql('ALTER TABLE %t RENAME COLUMN region TO zone');
  await u.sql("UPDATE %t SET zone = 'z' WHERE id = 1");
  u.setHas(['id', 'name', 'qty', 'amount', 'zone']);
  await u.run();

  // reorder: columns match by name (PostgreSQL cannot move a column: the source table is rebuilt in another order)
  await reorder(engine, u.sql, u.src);
  await u.run();
  expect(u.events.some((e) => e.type === 'schema.changed' && e.diff.reordered)).toBe(true);

  // nullability tightened (NOT NULL added at the source): nothing to change, the target column still takes NULL
  await u.sql("UPDATE %t SET zone = '-' WHERE zone IS NULL");
  await u.sql(
    engine.name === 'postgres'
      ? 'ALTER TABLE %t ALTER COLUMN zone SET NOT NULL'
      : 'ALTER TABLE %t MODIFY zone VARCHAR(5) NOT NULL',
  );
  await u.run();
}

/** Move `qty` after `zone` at the source. */
export async function reorder(engine: Engine, sql: (s: string) => Promise<void>, src: string) {
  if (engine.name === 'mariadb') return sql('ALTER TABLE %t MODIFY qty BIGINT AFTER zone');
  await sql('CREATE TABLE %t_r AS SELECT id, name, amount, zone, qty FROM %t');
  await sql('DROP TABLE %t');
  await sql(`ALTER TABLE %t_r RENAME TO ${src}`);
  await sql('ALTER TABLE %t ADD PRIMARY KEY (id)');
}
