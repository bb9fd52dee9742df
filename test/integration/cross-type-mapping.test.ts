/**
 * Created-target type mappings across engines (ADR 0014, docs/type-mapping.md): for every source type class, a
 * target the other engine's sink creates holds the source's extreme values, compared as text in SQL on both sides.
 * MariaDB → PostgreSQL and PostgreSQL → MariaDB, through every staging codec and both MySQL load methods.
 */

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { arrowCodec } from '../../src/arrow/index.js';
import { FileSystemObjectStore } from '../../src/fs/index.js';
import { MemoryKvStore, ObjectStoreStagingProvider, type RecordCodec, runUnit } from '../../src/index.js';
import { MySqlSink, MySqlSource, mySqlLoadDataCodec } from '../../src/mysql/index.js';
import { PostgresSink, PostgresSource } from '../../src/postgres/index.js';
import { useMySql } from '../helpers/mysql.js';
import { usePostgres } from '../helpers/pg.js';

const my = useMySql('xtypes');
const pg = usePostgres('xtypes');

type Codec = 'ndjson' | 'ndjson.gz' | 'arrow' | 'mysql-tsv';
const staging = (codec: Codec) =>
  new ObjectStoreStagingProvider({
    store: new FileSystemObjectStore({ root: mkdtempSync(join(tmpdir(), 'xtypes-')) }),
    codec: (codec === 'mysql-tsv' ? mySqlLoadDataCodec() : codec === 'arrow' ? arrowCodec() : codec) as
      | RecordCodec
      | 'ndjson',
  });

/** `[-]H:MM:SS[.ffffff]` (MySQL TIME, PostgreSQL interval of hours) → microseconds, as text. */
function timeMicros(s: string): string {
  const m = /^(-)?(\d+):(\d\d):(\d\d)(?:\.(\d{1,6}))?$/.exec(s);
  if (!m) return `?${s}`;
  const us =
    ((BigInt(m[2]) * 60n + BigInt(m[3])) * 60n + BigInt(m[4])) * 1_000_000n + BigInt((m[5] ?? '').padEnd(6, '0'));
  return (m[1] ? -us : us).toString();
}

/** Column → [MariaDB type, MariaDB text expression, PostgreSQL text expression, values (MariaDB literals)]. */
const MY: Record<string, [string, string, string, Array<string | null>]> = {
  ti: ['TINYINT', 'CAST(ti AS CHAR)', 'ti::text', ['-128', '127']],
  tu: ['TINYINT UNSIGNED', 'CAST(tu AS CHAR)', 'tu::text', ['0', '255']],
  sm: ['SMALLINT', 'CAST(sm AS CHAR)', 'sm::text', ['-32768', '32767']],
  su: ['SMALLINT UNSIGNED', 'CAST(su AS CHAR)', 'su::text', ['0', '65535']],
  mi: ['MEDIUMINT', 'CAST(mi AS CHAR)', 'mi::text', ['-8388608', '8388607']],
  mu: ['MEDIUMINT UNSIGNED', 'CAST(mu AS CHAR)', 'mu::text', ['0', '16777215']],
  i4: ['INT', 'CAST(i4 AS CHAR)', 'i4::text', ['-2147483648', '2147483647']],
  iu: ['INT UNSIGNED', 'CAST(iu AS CHAR)', 'iu::text', ['0', '4294967295']],
  bi: ['BIGINT', 'CAST(bi AS CHAR)', 'bi::text', ['-9223372036854775808', '9223372036854775807']],
  bu: ['BIGINT UNSIGNED', 'CAST(bu AS CHAR)', 'bu::text', ['9223372036854775808', '18446744073709551615']],
  de: [
    'DECIMAL(65,30)',
    'CAST(de AS CHAR)',
    'de::text',
    ['-99999999999999999999999999999999999.999999999999999999999999999999', '0.000000000000000000000000000001'],
  ],
  du: ['DECIMAL(10,2) UNSIGNED', 'CAST(du AS CHAR)', 'du::text', ['99999999.99', '0.00']],
  db: ['DOUBLE', 'CAST(db AS CHAR)', 'db::text', ['-1.7976931348623157e308', '5e-324']],
  // FLOAT compared as the float4 widened to a double: 6 significant digits (16777200) would differ
  fa: ['FLOAT', 'CAST(CAST(fa AS DOUBLE) AS CHAR)', 'fa::float8::text', ['16777216', '3.40282e38']],
  fb: ['FLOAT', 'CAST(CAST(fb AS DOUBLE) AS CHAR)', 'fb::float8::text', ['0.1', '1.4e-45']],
  fc: ['FLOAT(10,2)', 'CAST(CAST(fc AS DOUBLE) AS CHAR)', 'fc::float8::text', ['12345.67', '-1.17549e-38']],
  b1: ['BIT(1)', 'LPAD(BIN(b1), 1, 0)', 'b1::text', ["b'1'", "b'0'"]],
  b64: ['BIT(64)', 'LPAD(BIN(b64), 64, 0)', 'b64::text', ["b'1'", `b'${'1'.repeat(64)}'`]],
  yr: ['YEAR', 'CAST(yr AS CHAR)', 'yr::text', ['1901', '2155']],
  dt: ['DATE', 'CAST(dt AS CHAR)', "to_char(dt, 'YYYY-MM-DD')", ['1000-01-01', '9999-12-31']],
  d0: [
    'DATETIME',
    'CAST(d0 AS CHAR)',
    "to_char(d0, 'YYYY-MM-DD HH24:MI:SS')",
    ['1000-01-01 00:00:00', '9999-12-31 23:59:59'],
  ],
  d6: [
    'DATETIME(6)',
    'CAST(d6 AS CHAR)',
    "to_char(d6, 'YYYY-MM-DD HH24:MI:SS.US')",
    ['1000-01-01 00:00:00.000000', '9999-12-31 23:59:59.999999'],
  ],
  tm: ['TIME(6)', 'CAST(tm AS CHAR)', 'tm::text', ['-838:59:59.000000', '838:59:59.000000']],
  t0: ['TIME', 'CAST(t0 AS CHAR)', 't0::text', ['-00:00:01', '24:00:00']],
  ch: ['CHAR(5)', 'ch', 'ch::text', ['', 'abcde']],
  vc: ['VARCHAR(300)', 'vc', 'vc::text', ['a  ', 'x'.repeat(300)]],
  tx: ['MEDIUMTEXT', 'tx', 'tx', ['😀\\ttab', "it''s"]],
  en: ["ENUM('a','b c')", 'CAST(en AS CHAR)', 'en', ["'b c'", "'a'"]],
  st: ["SET('x','y')", 'CAST(st AS CHAR)', 'st', ["'x,y'", "''"]],
  js: ['JSON', 'CAST(js AS CHAR)', 'js::text', [`'{"a": 1.50, "a": 2}'`, `'[12345678901234567890123, 1e400]'`]],
  uu: [
    'UUID',
    'CAST(uu AS CHAR)',
    'uu::text',
    ["'ffffffff-ffff-ffff-ffff-ffffffffffff'", "'00000000-0000-0000-0000-000000000001'"],
  ],
  i6: ['INET6', 'CAST(i6 AS CHAR)', 'i6', ["'::ffff:1.2.3.4'", "'2001:db8::1'"]],
  bn: ['BINARY(3)', 'LOWER(HEX(bn))', "encode(bn, 'hex')", ["X'00'", "X'ffffff'"]],
  bl: ['BLOB', 'LOWER(HEX(bl))', "encode(bl, 'hex')", ["X''", "X'5c0a'"]],
};
const MY_COLS = Object.keys(MY);
const quoteIfBare = (c: string, v: string) =>
  /^(b'|X'|')/.test(v) ? v : ['ch', 'vc', 'tx', 'dt', 'd0', 'd6', 'tm', 't0'].includes(c) ? `'${v}'` : v;

/** Numbers compare as numbers where each server prints its own shortest form; TIME as microseconds. */
function norm(c: string, v: unknown): string {
  if (v === null || v === undefined) return '∅';
  const s = Buffer.isBuffer(v) ? v.toString('utf8') : String(v);
  if (['db', 'fa', 'fb', 'fc'].includes(c)) return String(Number(s));
  if (c === 'tm' || c === 't0') return timeMicros(s);
  return s;
}

describe('MariaDB → PostgreSQL: the created target holds every value of every source type', () => {
  it.each(['ndjson', 'arrow', 'mysql-tsv'] as const)('%s staging', async (codec) => {
    const src = `my_${codec.replace(/\W/g, '_')}`;
    await my.query(`CREATE TABLE ${src} (id INT PRIMARY KEY, ${MY_COLS.map((c) => `${c} ${MY[c][0]}`).join(', ')})`);
    const rows = [0, 1].map(
      (i) => `(${i + 1}, ${MY_COLS.map((c) => quoteIfBare(c, MY[c][3][i] as string)).join(', ')})`,
    );
    await my.query(`INSERT INTO ${src} VALUES ${rows.join(', ')}, (3, ${MY_COLS.map(() => 'NULL').join(', ')})`);
    const unitId = `${my.database}.${src}`;
    const r = await runUnit({
      source: new MySqlSource({ pool: my.newPool() }),
      sink: new PostgresSink({ pool: pg.newPool(), tables: { [unitId]: `${pg.schema}.${src}` } }),
      staging: staging(codec),
      kv: new MemoryKvStore(),
      unit: { vendor: 'mysql', endpointId: 'x-my', unitId, sinkId: 'pg' },
      mode: 'full',
    });
    expect(r.stats.rowsImported).toBe(3);
    const { rows: types } = await pg.query(
      `SELECT attname AS c, format_type(atttypid, atttypmod) AS t FROM pg_attribute
        WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`,
      [`"${pg.schema}".${src}`],
    );
    expect(Object.fromEntries(types.map((t) => [t.c, t.t]))).toMatchObject({
      tu: 'smallint',
      su: 'integer',
      mu: 'integer',
      iu: 'bigint',
      bu: 'numeric(20,0)',
      fa: 'real',
      du: 'numeric(10,2)',
      b64: 'bit(64)',
      d0: 'timestamp(0) without time zone',
      tm: 'interval',
      js: 'json',
      uu: 'uuid',
    });
    const mine = await my.query<any[]>(
      `SELECT id, ${MY_COLS.map((c) => `${MY[c][1]} AS ${c}`).join(', ')} FROM ${src} ORDER BY id`,
    );
    const { rows: theirs } = await pg.query(
      `SELECT id, ${MY_COLS.map((c) => `${MY[c][2]} AS ${c}`).join(', ')} FROM "${pg.schema}".${src} ORDER BY id`,
    );
    const text = (rs: any[]) => rs.map((x) => [String(x.id), ...MY_COLS.map((c) => `${c}=${norm(c, x[c])}`)]);
    expect(text(theirs)).toEqual(text(mine));
  });
});

/** Column → [PostgreSQL type, PostgreSQL text expression, MariaDB text expression, expected MariaDB type, values]. */
const PG: Record<string, [string, string, string, string, Array<string | null>]> = {
  i2: ['smallint', 'i2::text', 'CAST(i2 AS CHAR)', 'smallint(6)', ['-32768', '32767']],
  i4: ['integer', 'i4::text', 'CAST(i4 AS CHAR)', 'int(11)', ['-2147483648', '2147483647']],
  i8: ['bigint', 'i8::text', 'CAST(i8 AS CHAR)', 'bigint(20)', ['-9223372036854775808', '9223372036854775807']],
  o: ['oid', 'o::text', 'CAST(o AS CHAR)', 'int(10) unsigned', ['0', '4294967295']],
  n12: ['numeric(12,2)', 'n12::text', 'CAST(n12 AS CHAR)', 'decimal(12,2)', ['-9999999999.99', '0.01']],
  n65: [
    'numeric(65,30)',
    'n65::text',
    'CAST(n65 AS CHAR)',
    'decimal(65,30)',
    ['99999999999999999999999999999999999.999999999999999999999999999999', '-0.000000000000000000000000000001'],
  ],
  nneg: ['numeric(5,-2)', 'nneg::text', 'CAST(nneg AS CHAR)', 'decimal(7,0)', ['9999900', '-100']],
  nfrac: ['numeric(2,5)', 'nfrac::text', 'CAST(nfrac AS CHAR)', 'decimal(5,5)', ['0.00099', '-0.00001']],
  n40: ['numeric(40,35)', 'n40::text', 'n40', 'longtext', ['12345.00000000000000000000000000000000001', '0']],
  nu: ['numeric', 'nu::text', 'nu', 'longtext', ['1e-100', `${'9'.repeat(200)}.${'1'.repeat(50)}`]],
  nnan: ['numeric', 'nnan::text', 'nnan', 'longtext', ['NaN', '-Infinity']],
  db: ['double precision', 'db::text', 'CAST(db AS CHAR)', 'double', ['-1.7976931348623157e308', '5e-324']],
  ra: ['real', 'ra::float8::text', 'CAST(CAST(ra AS DOUBLE) AS CHAR)', 'float', ['16777216', '3.4028235e38']],
  rb: ['real', 'rb::float8::text', 'CAST(CAST(rb AS DOUBLE) AS CHAR)', 'float', ['0.1', '1e-45']],
  c3: ['character(3)', 'c3::text', 'c3', 'char(3)', ['ab', 'abc']],
  c300: ['character(300)', 'rtrim(c300)', 'RTRIM(c300)', 'varchar(300)', ['x', 'y'.repeat(300)]],
  vc: ['varchar(20000)', 'vc', 'vc', 'longtext', ['a ', 'z'.repeat(20000)]],
  tx: ['text', 'tx', 'tx', 'longtext', ['😀\t', "it's \\"]],
  tt: ['timetz', 'tt::text', 'tt', 'varchar(32)', ['12:34:56.789+05:30', '24:00:00-15:59']],
  tm: ['time(6)', "to_char(tm, 'HH24:MI:SS.US')", 'CAST(tm AS CHAR)', 'time(6)', ['00:00:00', '23:59:59.999999']],
  iv: ['interval', 'iv::text', 'iv', 'varchar(255)', ['1 year 2 mons -3 days 04:05:06.000007', '-178000000 years']],
  bo: ['boolean', 'bo::int::text', 'CAST(bo AS CHAR)', 'tinyint(1)', ['true', 'false']],
  ma: ['macaddr', 'ma::text', 'ma', 'longtext', ['08:00:2b:01:02:03', 'ff:ff:ff:ff:ff:ff']],
  ci: ['cidr', 'ci::text', 'ci', 'longtext', ['10.0.0.0/8', '::/0']],
  bt5: ['bit(5)', 'bt5::text', 'bt5', 'varchar(5)', ['10101', '00000']],
  vb: ['bit varying(10)', 'vb::text', 'vb', 'varchar(10)', ['1', '1111111111']],
  js: ['json', 'js::text', 'CAST(js AS CHAR)', 'longtext', ['{"a": 1.50, "a": 2}', '[1e400, 12345678901234567890123]']],
  rg: ['int4range', 'rg::text', 'rg', 'longtext', ['[1,5)', 'empty']],
  uu: [
    'uuid',
    'uu::text',
    'uu',
    'char(36)',
    ['ffffffff-ffff-ffff-ffff-ffffffffffff', '00000000-0000-0000-0000-000000000000'],
  ],
  ba: ['bytea', "encode(ba, 'hex')", 'LOWER(HEX(ba))', 'longblob', ['\\x', '\\x00ff5c']],
};
const PG_COLS = Object.keys(PG);

describe('PostgreSQL → MariaDB: the created target holds every value of every source type', () => {
  it.each([
    ['ndjson', 'insert'],
    ['ndjson', 'load-data'],
    ['arrow', 'insert'],
    ['mysql-tsv', 'load-data'],
  ] as const)('%s staging, %s', async (codec, loadMethod) => {
    const src = `pg_${codec.replace(/\W/g, '_')}_${loadMethod.replace(/\W/g, '_')}`;
    await pg.query(
      `CREATE TABLE "${pg.schema}".${src} (id integer PRIMARY KEY, ${PG_COLS.map((c) => `${c} ${PG[c][0]}`).join(', ')})`,
    );
    for (const i of [0, 1])
      await pg.query(
        `INSERT INTO "${pg.schema}".${src} VALUES (${i + 1}, ${PG_COLS.map((_, j) => `$${j + 1}`).join(', ')})`,
        PG_COLS.map((c) => PG[c][4][i]),
      );
    await pg.query(`INSERT INTO "${pg.schema}".${src} (id) VALUES (3)`);
    const unitId = `${pg.schema}.${src}`;
    const r = await runUnit({
      source: new PostgresSource({ pool: pg.newPool() }),
      sink: new MySqlSink({ pool: my.newPool(), tables: { [unitId]: src }, loadMethod }),
      staging: staging(codec),
      kv: new MemoryKvStore(),
      unit: { vendor: 'postgres', endpointId: 'x-pg', unitId, sinkId: 'my' },
      mode: 'full',
    });
    expect(r.stats.rowsImported).toBe(3);
    const types = await my.query<any[]>(
      'SELECT COLUMN_NAME AS c, COLUMN_TYPE AS t FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
      [my.database, src],
    );
    expect(Object.fromEntries(types.map((t) => [t.c, String(t.t)]))).toMatchObject(
      Object.fromEntries(PG_COLS.map((c) => [c, PG[c][3]])),
    );
    const { rows: theirs } = await pg.query(
      `SELECT id, ${PG_COLS.map((c) => `${PG[c][1]} AS ${c}`).join(', ')} FROM "${pg.schema}".${src} ORDER BY id`,
    );
    const mine = await my.query<any[]>(
      `SELECT id, ${PG_COLS.map((c) => `${PG[c][2]} AS ${c}`).join(', ')} FROM ${src} ORDER BY id`,
    );
    const text = (rs: any[]) =>
      rs.map((x) => [
        String(x.id),
        ...PG_COLS.map(
          (c) => `${c}=${x[c] === null ? '∅' : ['db', 'ra', 'rb'].includes(c) ? String(Number(x[c])) : String(x[c])}`,
        ),
      ]);
    expect(text(mine)).toEqual(text(theirs));
  });
});
