/**
 * Cross copies for the types both servers have: MariaDB → staging → PostgreSQL and PostgreSQL → staging → MariaDB
 * (a target the MySQL sink creates from the PostgreSQL schema), compared value by value as text.
 */

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileSystemObjectStore } from '../../src/fs/index.js';
import { MemoryKvStore, ObjectStoreStagingProvider, runUnit } from '../../src/index.js';
import { MySqlSink, MySqlSource, mySqlLoadDataCodec } from '../../src/mysql/index.js';
import { PostgresSink, PostgresSource } from '../../src/postgres/index.js';
import { useMySql } from '../helpers/mysql.js';
import { usePostgres } from '../helpers/pg.js';

const my = useMySql('cross');
const pg = usePostgres('cross');
type Codec = 'ndjson' | 'mysql-tsv';
const staging = (codec: Codec) =>
  new ObjectStoreStagingProvider({
    store: new FileSystemObjectStore({ root: mkdtempSync(join(tmpdir(), 'cross-')) }),
    codec: codec === 'mysql-tsv' ? mySqlLoadDataCodec() : 'ndjson',
  });

/** Column → [MariaDB type, PostgreSQL type, MariaDB text expression, PostgreSQL text expression]. */
const SHARED: Record<string, [string, string, string, string]> = {
  i2: ['SMALLINT', 'smallint', 'CAST(i2 AS CHAR)', 'i2::text'],
  i4: ['INT', 'integer', 'CAST(i4 AS CHAR)', 'i4::text'],
  i8: ['BIGINT', 'bigint', 'CAST(i8 AS CHAR)', 'i8::text'],
  nu: ['DECIMAL(30,10)', 'numeric(30,10)', 'CAST(nu AS CHAR)', 'nu::text'],
  fl: ['DOUBLE', 'double precision', 'fl', 'fl'],
  vc: ['VARCHAR(40)', 'varchar(40)', 'vc', 'vc'],
  tx: ['LONGTEXT', 'text', 'tx', 'tx'],
  bt: ['LONGBLOB', 'bytea', 'LOWER(HEX(bt))', "encode(bt, 'hex')"],
  dt: ['DATE', 'date', 'CAST(dt AS CHAR)', "to_char(dt, 'YYYY-MM-DD')"],
  ts: ['DATETIME(6)', 'timestamp(6)', 'CAST(ts AS CHAR)', `to_char(ts, 'YYYY-MM-DD HH24:MI:SS.US')`],
  tz: [
    'TIMESTAMP(6) NULL',
    'timestamptz(6)',
    'CAST(tz AS CHAR)',
    `to_char(tz AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')`,
  ],
  tm: ['TIME(6)', 'time(6)', 'CAST(tm AS CHAR)', `to_char(tm, 'HH24:MI:SS.US')`],
  js: ['JSON', 'json', 'CAST(js AS CHAR)', 'js::text'],
  uu: ['CHAR(36)', 'uuid', 'uu', 'uu::text'],
};
const COLS = Object.keys(SHARED);

const VALUES: Array<Record<string, string | null>> = [
  {
    i2: '-32768',
    i4: '2147483647',
    i8: '-9223372036854775808',
    nu: '12345678901234567890.0123456789',
    fl: '0.1',
    vc: 'it\'s "q" \\ ü 😀',
    tx: 'line1\nline2\ttab',
    bt: '00ff0a5c',
    dt: '1000-01-01',
    ts: '2024-01-02 03:04:05.123456',
    tz: '2024-06-30 23:59:59.000001',
    tm: '23:59:59.999999',
    js: '{"a": 1.50, "big": 123456789012345678901234567890}',
    uu: '123e4567-e89b-12d3-a456-426614174000',
  },
  {
    i2: '0',
    i4: '-1',
    i8: '9223372036854775807',
    nu: '-0.0000000001',
    fl: '-1.7976931348623157e308',
    vc: '',
    tx: '',
    bt: '',
    dt: '9999-12-31',
    ts: '9999-12-31 23:59:59.999999',
    tz: '1970-01-01 00:00:01.000000',
    tm: '00:00:00.000000',
    js: '[1, null, "x"]',
    uu: '00000000-0000-0000-0000-000000000000',
  },
  Object.fromEntries(COLS.map((c) => [c, null])),
];

const myLiteral = (c: string, v: string | null) =>
  v === null
    ? 'NULL'
    : c === 'bt'
      ? `X'${v}'`
      : `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n').replace(/\t/g, '\\t')}'`;

async function myText(table: string): Promise<string[][]> {
  const rows = await my.query<any[]>(
    `SELECT id, ${COLS.map((c) => `${SHARED[c][2]} AS ${c}`).join(', ')} FROM ${table} ORDER BY id`,
  );
  return rows.map((r) => [String(r.id), ...COLS.map((c) => norm(c, r[c]))]);
}

async function pgText(table: string): Promise<string[][]> {
  const { rows } = await pg.query(
    `SELECT id::text AS id, ${COLS.map((c) => `${SHARED[c][3]} AS ${c}`).join(', ')} FROM "${pg.schema}".${table} ORDER BY id`,
  );
  return rows.map((r) => [String(r.id), ...COLS.map((c) => norm(c, r[c]))]);
}

/** Floats compare as numbers (each server prints its own shortest form); everything else as text. */
function norm(c: string, v: unknown): string {
  if (v === null || v === undefined) return '∅';
  if (c === 'fl') return String(Number(v));
  return Buffer.isBuffer(v) ? v.toString('utf8') : String(v);
}

describe.each(['ndjson', 'mysql-tsv'] as const)(
  'cross copies between MariaDB and PostgreSQL, value by value as text (%s staging)',
  (codec) => {
    // mysql-tsv: the MySQL source stages LOAD DATA text, read back as rows by the PostgreSQL sink; PostgreSQL rows are
    // encoded as LOAD DATA text and streamed to LOAD DATA unchanged
    const src = `src_${codec.replace('-', '_')}`;
    const dst = `dst_${codec.replace('-', '_')}`;
    const psrc = `psrc_${codec.replace('-', '_')}`;
    const pdst = `pdst_${codec.replace('-', '_')}`;
    it('MariaDB → staging → PostgreSQL (pre-created target of the corresponding types)', async () => {
      await my.query(`CREATE TABLE ${src} (id INT PRIMARY KEY, ${COLS.map((c) => `${c} ${SHARED[c][0]}`).join(', ')})`);
      await my.query(
        `INSERT INTO ${src} VALUES ${VALUES.map((v, i) => `(${i + 1}, ${COLS.map((c) => myLiteral(c, v[c])).join(', ')})`).join(', ')}`,
      );
      await pg.query(
        `CREATE TABLE "${pg.schema}".${dst} (id integer PRIMARY KEY, ${COLS.map((c) => `${c} ${SHARED[c][1]}`).join(', ')})`,
      );
      const unitId = `${my.database}.${src}`;
      const debugs: string[] = [];
      const r = await runUnit({
        source: new MySqlSource({ pool: my.newPool() }),
        // a session time zone far from UTC: TIMESTAMP values must arrive as instants, DATETIME as wall-clock text
        sink: new PostgresSink({
          pool: pg.newPool({ options: `-c search_path="${pg.schema}",public -c TimeZone=America/St_Johns` }),
          tables: { [unitId]: `${pg.schema}.${dst}` },
        }),
        staging: staging(codec),
        kv: new MemoryKvStore(),
        logger: { debug: (m: string) => debugs.push(m), info() {}, warn() {}, error() {} },
        unit: { vendor: 'mysql', endpointId: 'cross-my', unitId, sinkId: 'pg' },
        mode: 'full',
      });
      expect(r.stats.rowsImported).toBe(VALUES.length);
      // LOAD DATA text is transcoded to COPY text by the sink (no row objects); NDJSON from MySQL goes through rows
      const transcoded = debugs.filter((m) => m.includes('(mysql-tsv) transcoded to COPY text')).length;
      expect(transcoded).toBe(codec === 'mysql-tsv' ? 1 : 0);
      const a = await myText(src);
      expect(a[0][COLS.indexOf('vc') + 1]).toBe(VALUES[0].vc);
      expect(await pgText(dst)).toEqual(a);
    });

    it('PostgreSQL → staging → MariaDB, into a target the MySQL sink creates from the PostgreSQL schema', async () => {
      const pgTypes = {
        ...Object.fromEntries(COLS.map((c) => [c, SHARED[c][1]])),
        js: 'jsonb',
        arr: 'integer[]',
        bo: 'boolean',
      };
      await pg.query(
        `CREATE TABLE "${pg.schema}".${psrc} (id integer PRIMARY KEY, ${Object.entries(pgTypes)
          .map(([c, t]) => `${c} ${t}`)
          .join(', ')})`,
      );
      for (const [i, v] of VALUES.entries()) {
        const cols = [...COLS, 'arr', 'bo'];
        const vals = [
          ...COLS.map((c) =>
            c === 'bt' && v[c] !== null ? Buffer.from(v[c]!, 'hex') : c === 'tz' && v[c] !== null ? `${v[c]}+00` : v[c],
          ),
          v.i2 === null ? null : [1, null, 3],
          v.i2 === null ? null : i === 0,
        ];
        await pg.query(
          `INSERT INTO "${pg.schema}".${psrc} (id, ${cols.join(', ')}) VALUES (${i + 1}, ${cols.map((_, j) => `$${j + 1}`).join(', ')})`,
          vals,
        );
      }
      const unitId = `${pg.schema}.${psrc}`;
      const r = await runUnit({
        source: new PostgresSource({ pool: pg.newPool() }),
        sink: new MySqlSink({ pool: my.newPool(), tables: { [unitId]: pdst } }),
        staging: staging(codec),
        kv: new MemoryKvStore(),
        unit: { vendor: 'postgres', endpointId: 'cross-pg', unitId, sinkId: 'my' },
        mode: 'full',
      });
      expect(r.stats.rowsImported).toBe(VALUES.length);
      const types = await my.query<any[]>(
        `SELECT COLUMN_NAME AS c, COLUMN_TYPE AS t FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
        [my.database, pdst],
      );
      const typeOf = Object.fromEntries(types.map((t) => [t.c, String(t.t)]));
      expect(typeOf).toMatchObject({
        i2: 'smallint(6)',
        i4: 'int(11)',
        i8: 'bigint(20)',
        nu: 'decimal(30,10)',
        fl: 'double',
        vc: 'varchar(40)',
        tx: 'longtext',
        bt: 'longblob',
        dt: 'date',
        ts: 'datetime(6)',
        tz: 'datetime(6)',
        tm: 'time(6)',
        js: 'longtext',
        uu: 'char(36)',
        arr: 'longtext',
        bo: 'tinyint(1)',
      });
      const pgRows = await pgText(psrc);
      const myRows = await myText(pdst);
      // jsonb prints its own normal form; compare the copy with what PostgreSQL prints
      expect(myRows).toEqual(pgRows);
      const extra = await my.query<any[]>(`SELECT CAST(arr AS CHAR) AS arr, bo FROM ${pdst} ORDER BY id`);
      expect(extra.map((e) => [e.arr === null ? null : String(e.arr), e.bo])).toEqual([
        ['[1,null,3]', 1],
        ['[1,null,3]', 0],
        [null, null],
      ]);
    });

    it('MariaDB columns the client library refuses in a result (__proto__, …) copy to MariaDB and PostgreSQL', async () => {
      const t = `proto_${codec.replace('-', '_')}`;
      const cols = '`id` INT PRIMARY KEY, `__proto__` VARCHAR(10), `__lookupGetter__` INT, `#__defineSetter__` TEXT';
      await my.query(`CREATE TABLE ${t} (${cols})`);
      await my.query(`INSERT INTO ${t} VALUES (1, 'p', 7, 'x'), (2, NULL, NULL, NULL)`);
      const unitId = `${my.database}.${t}`;
      const run = (sink: MySqlSink | PostgresSink, sinkId: string) =>
        runUnit({
          source: new MySqlSource({ pool: my.newPool() }),
          sink,
          staging: staging(codec),
          kv: new MemoryKvStore(),
          unit: { vendor: 'mysql', endpointId: 'cross-proto', unitId, sinkId },
          mode: 'full',
        });
      const want = [
        ['1', 'p', '7', 'x'],
        ['2', null, null, null],
      ];
      for (const loadMethod of ['load-data', 'insert'] as const) {
        const target = `${t}_${loadMethod.replace('-', '_')}`;
        const r = await run(new MySqlSink({ pool: my.newPool(), loadMethod, tables: { [unitId]: target } }), target);
        expect(r.stats.rowsImported).toBe(2);
        const got = await my.query<any[]>(
          `SELECT CAST(id AS CHAR) AS a, \`__proto__\` AS b, CAST(\`__lookupGetter__\` AS CHAR) AS c, \`#__defineSetter__\` AS d FROM ${target} ORDER BY id`,
        );
        expect(got.map((g) => [g.a, g.b, g.c, g.d])).toEqual(want);
      }
      const r = await run(new PostgresSink({ pool: pg.newPool(), tables: { [unitId]: `${pg.schema}.${t}` } }), 'pg');
      expect(r.stats.rowsImported).toBe(2);
      const { rows } = await pg.query(
        `SELECT id::text AS a, "__proto__" AS b, "__lookupGetter__"::text AS c, "#__defineSetter__" AS d FROM "${pg.schema}".${t} ORDER BY id`,
      );
      expect(rows.map((g) => [g.a, g.b, g.c, g.d])).toEqual(want);
      // the alias of `__proto__` is `#__proto__`: a table holding both is refused naming them, not read wrongly
      await my.query(`CREATE TABLE ${t}_both (id INT PRIMARY KEY, \`__proto__\` INT, \`#__proto__\` INT)`);
      await my.query(`INSERT INTO ${t}_both VALUES (1, 2, 3)`);
      const both = `${my.database}.${t}_both`;
      const err = await runUnit({
        source: new MySqlSource({ pool: my.newPool() }),
        sink: new PostgresSink({ pool: pg.newPool(), tables: { [both]: `${pg.schema}.${t}_both` } }),
        staging: staging(codec),
        kv: new MemoryKvStore(),
        unit: { vendor: 'mysql', endpointId: 'cross-proto', unitId: both, sinkId: 'pg' },
        mode: 'full',
      }).catch((e) => e);
      expect(err).toMatchObject({ code: 'source_failed' });
      expect(err.message).toContain('"#__proto__"');
    });
  },
);
