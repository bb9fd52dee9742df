import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileSystemObjectStore } from '../../src/fs/index.js';
import {
  JsonText,
  MemoryKvStore,
  MemoryStagingProvider,
  ObjectStoreStagingProvider,
  runUnit,
  Timestamp,
} from '../../src/index.js';
import { PostgresSink, PostgresSource } from '../../src/postgres/index.js';
import { testContext } from '../../src/testing/index.js';
import { usePostgres } from '../helpers/pg.js';

const env = usePostgres('rt');
const tmp = mkdtempSync(join(tmpdir(), 'pg-rt-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Every mapped type, with values that stress each encoding. */
const DDL = (schema: string, name: string) => `CREATE TABLE "${schema}"."${name}" (
  id bigint PRIMARY KEY,
  i2 smallint, i4 integer, i8 bigint, num numeric(30,10), num_free numeric, f4 real, f8 double precision,
  b boolean, t text, vc varchar(40), ch char(5), u uuid, mood "${schema}".mood,
  ts timestamp(3), tstz timestamptz(3), d date, j json, jb jsonb, by bytea,
  ai int[], at text[], ai8 bigint[], am "${schema}".mood[], ai2d int[][],
  updated_at timestamptz(3) NOT NULL DEFAULT '2024-01-01T00:00:00Z'
)`;

const COLS =
  'id, i2, i4, i8, num, num_free, f4, f8, b, t, vc, ch, u, mood, ts, tstz, d, j::text AS j, jb, by, ai, at, ai8, am, ai2d, updated_at';

async function seed(schema: string, name: string) {
  await env.query(DDL(schema, name));
  await env.query(`INSERT INTO "${schema}"."${name}" (id, i2, i4, i8, num, num_free, f4, f8, b, t, vc, ch, u, mood, ts, tstz, d, j, jb, by, ai, at, ai8, am, ai2d) VALUES
    (1, -32768, -2147483648, -9223372036854775808, '-12345678901234567890.0123456789', '1e-30', 1.5, 1.7976931348623157e308, true,
     E'quote '' dq " bs \\\\ nl \\n cr \\r tab \\t comma , semi ; \\\\. end', 'unicode ü € 😀 \u{1F600}', 'ab', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'happy',
     '1970-01-01 00:00:00.001', '2024-02-29T23:59:59.999+05:30', '2024-02-29', '{"a":1,"big":12345678901234567890,"s":"x\\"y"}',
     '{"nested": {"big": 98765432109876543210, "neg": -9007199254740993, "f": 0.5, "arr": [1, null, "two"]}, "__proto__": {"x": 1}}',
     '\\x00ff10', '{1,NULL,3}', '{"a,b","c\\"d",NULL,"NULL",""}', '{9223372036854775807,-1}', '{happy,sad}', '{{1,2},{3,4}}'),
    (2, 32767, 2147483647, 9223372036854775807, '0.0000000001', 'NaN', -0.25, 'Infinity', false,
     '', '\\.', '     ', '00000000-0000-0000-0000-000000000000', 'sad',
     '2262-04-11 23:47:16.854', '0001-01-01T00:00:00Z', '0001-01-01', '[]', '"just a string"', '\\x', '{}', '{}', '{}', '{}', '{}'),
    (3, 0, 0, 0, '0', '-0.5', 'NaN', '-Infinity', null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null),
    (4, null, null, null, null, null, null, null, null, 'line1
line2', null, null, null, null, null, null, null, null, '{"k": "\\\\u0001 ctl"}', null, null, null, null, null, null)`);
  await env.query(`INSERT INTO "${schema}"."${name}" (id, i4, t, num, tstz, jb)
    SELECT g, g, 'row ' || g, g::numeric / 7, '2024-01-01T00:00:00Z'::timestamptz + g * interval '1 millisecond', jsonb_build_object('g', g)
    FROM generate_series(5, 1200) g`);
}

/** Rows in one table and not the other (both ways, with multiplicity); empty when equal. */
async function diff(schema: string, a: string, b: string): Promise<unknown[]> {
  const q = (x: string, y: string) =>
    `SELECT '${x}' AS only_in, s.* FROM (SELECT ${COLS} FROM "${schema}"."${x}" EXCEPT ALL SELECT ${COLS} FROM "${schema}"."${y}") s`;
  const [ab, ba] = await Promise.all([env.query(q(a, b)), env.query(q(b, a))]);
  return [...ab.rows, ...ba.rows];
}

describe('PostgreSQL source → staging → PostgreSQL sink', () => {
  const run = async (opts: {
    disposition: 'append' | 'replace' | 'merge';
    target: string;
    staging?: any;
    kv?: MemoryKvStore;
    mode?: 'full' | 'incremental';
  }) => {
    const pool = env.newPool();
    const source = new PostgresSource({ pool, units: { [`${env.schema}.src`]: { cursorColumns: ['updated_at'] } } });
    const sink = new PostgresSink({ pool, tables: { [`${env.schema}.src`]: `${env.schema}.${opts.target}` } });
    const events: any[] = [];
    const res = await runUnit({
      source,
      sink,
      staging: opts.staging ?? new MemoryStagingProvider(),
      kv: opts.kv ?? new MemoryKvStore(),
      unit: { vendor: 'postgres', endpointId: 'pg', unitId: `${env.schema}.src` },
      mode: opts.mode ?? 'full',
      disposition: opts.disposition,
      policy: { chunkSize: 100, sliceMaxRows: 300, exportConcurrency: 3 },
      onEvent: (e) => events.push(e),
    });
    return { res, events };
  };

  it('seeds a source table of every mapped type', async () => {
    await env.query(`CREATE TYPE "${env.schema}".mood AS ENUM ('happy', 'sad')`);
    await seed(env.schema, 'src');
    await env.query(`ANALYZE "${env.schema}".src`);
    const { rows } = await env.query(`SELECT count(*)::int AS n FROM "${env.schema}".src`);
    expect(rows[0].n).toBe(1200);
  });

  for (const disposition of ['append', 'replace', 'merge'] as const) {
    it(`${disposition}: the target equals the source (EXCEPT both ways), through memory staging`, async () => {
      const target = `dst_${disposition}`;
      await env.query(DDL(env.schema, target));
      if (disposition !== 'append') {
        // something to replace / merge over: stale copies of some rows and a row the source lacks
        await env.query(
          `INSERT INTO "${env.schema}"."${target}" (id, t) SELECT g, 'stale' FROM generate_series(1, 50) g`,
        );
        if (disposition === 'replace')
          await env.query(`INSERT INTO "${env.schema}"."${target}" (id, t) VALUES (99999, 'gone')`);
      }
      const { res, events } = await run({ disposition, target });
      expect(res.stats.rowsExported).toBe(1200);
      expect(res.stats.rowsImported).toBe(1200);
      expect(res.stats.slices).toBeGreaterThan(1);
      expect(await diff(env.schema, 'src', target)).toEqual([]);
      expect(events.some((e) => e.type === 'import.progress')).toBe(true);
    });
  }

  it('append through filesystem staging (NDJSON on disk) gives an equal target', async () => {
    await env.query(DDL(env.schema, 'dst_fs'));
    const staging = new ObjectStoreStagingProvider({ store: new FileSystemObjectStore({ root: tmp }) });
    const { res } = await run({ disposition: 'append', target: 'dst_fs', staging });
    expect(res.stats.rowsImported).toBe(1200);
    expect(await diff(env.schema, 'src', 'dst_fs')).toEqual([]);
  });

  it("creates a missing target from the staged schema, with the source's built-in column types, user-defined ones mapped, and no key for append", async () => {
    const { res } = await run({ disposition: 'append', target: 'dst_created' });
    expect(res.stats.rowsImported).toBe(1200);
    const typesOf = async (table: string) => {
      const { rows } = await env.query(
        `SELECT attname AS c, format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
        [`"${env.schema}".${table}`],
      );
      return Object.fromEntries(rows.map((r) => [r.c, r.t]));
    };
    const types = await typesOf('dst_created');
    // exactly the source's built-in types (numeric(30,10), character(5), timestamp(3), uuid, arrays …); the source
    // schema's enum is not referenced (dropping the source schema must not drop target columns): text
    expect(types).toEqual({ ...(await typesOf('src')), mood: 'text', am: 'text[]' });
    expect(types).toMatchObject({
      num: 'numeric(30,10)',
      ch: 'character(5)',
      u: 'uuid',
      mood: 'text',
      ts: 'timestamp(3) without time zone',
      tstz: 'timestamp(3) with time zone',
      ai: 'integer[]',
      am: 'text[]',
    });
    const pk = await env.query(
      `SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = $1::regclass AND i.indisprimary`,
      [`"${env.schema}".dst_created`],
    );
    // append keeps history: a created append target has no unique key
    expect(pk.rows.map((r) => r.attname)).toEqual([]);
    const same = COLS.replace('mood,', 'mood::text AS mood,').replace(' am,', ' am::text[] AS am,');
    const n = await env.query(
      `SELECT (SELECT count(*) FROM (SELECT ${same} FROM "${env.schema}".src EXCEPT SELECT ${same} FROM "${env.schema}".dst_created) a)::int
            + (SELECT count(*) FROM (SELECT ${same} FROM "${env.schema}".dst_created EXCEPT SELECT ${same} FROM "${env.schema}".src) b)::int AS n`,
    );
    expect(n.rows[0].n).toBe(0);
    const arr = await env.query(`SELECT ai, ai8::text AS ai8, am, ai2d FROM "${env.schema}".dst_created WHERE id = 1`);
    expect(arr.rows[0]).toEqual({
      ai: [1, null, 3],
      ai8: '{9223372036854775807,-1}',
      am: ['happy', 'sad'],
      ai2d: [
        [1, 2],
        [3, 4],
      ],
    });
  });

  it('reads values with the documented JS types (exact: Timestamp, JsonText, strings)', async () => {
    const pool = env.newPool();
    const source = new PostgresSource({ pool });
    const { rows, schema } = await source.preview(
      { unitId: `${env.schema}.src`, limit: 4 },
      testContext({ unitId: `${env.schema}.src` }),
    );
    const r1 = rows.find((r) => r.id === 1n)!;
    expect(r1.i2).toBe(-32768);
    expect(r1.i8).toBe(-9223372036854775808n);
    expect(r1.num).toBe('-12345678901234567890.0123456789');
    expect(r1.f4).toBe(1.5);
    expect(r1.tstz).toBeInstanceOf(Timestamp);
    expect((r1.tstz as Timestamp).toISOString()).toBe('2024-02-29T18:29:59.999000Z');
    expect((r1.tstz as Timestamp).zoned).toBe(true);
    expect((r1.ts as Timestamp).toPostgres()).toBe('1970-01-01 00:00:00.001');
    expect((r1.ts as Timestamp).zoned).toBe(false);
    expect(r1.d).toBe('2024-02-29');
    expect(r1.u).toBe('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
    expect(r1.mood).toBe('happy');
    expect(r1.j).toBeInstanceOf(JsonText);
    expect((r1.j as JsonText).text).toBe('{"a":1,"big":12345678901234567890,"s":"x\\"y"}');
    expect(((r1.j as JsonText).parse() as any).big).toBe(12345678901234567890n);
    const jb = (r1.jb as JsonText).parse() as any;
    expect(jb.nested.big).toBe(98765432109876543210n);
    expect(jb.nested.neg).toBe(-9007199254740993n);
    expect(Object.hasOwn(jb, '__proto__')).toBe(true);
    expect(r1.by).toBeInstanceOf(Uint8Array);
    expect([...(r1.by as Uint8Array)]).toEqual([0, 255, 16]);
    expect(r1.ai).toEqual([1, null, 3]);
    expect(r1.at).toEqual(['a,b', 'c"d', null, 'NULL', '']);
    expect(r1.ai8).toEqual([9223372036854775807n, -1n]);
    expect(r1.am).toEqual(['happy', 'sad']);
    expect(r1.ai2d).toEqual([
      [1, 2],
      [3, 4],
    ]);
    const types = Object.fromEntries(schema!.fields.map((f) => [f.name, f.type]));
    expect(types).toMatchObject({
      i2: 'int32',
      i8: 'int64',
      num: 'decimal',
      f4: 'float64',
      b: 'boolean',
      t: 'string',
      u: 'uuid',
      mood: 'string',
    });
    expect(types).toMatchObject({
      ts: 'timestamp',
      tstz: 'timestamp',
      d: 'date',
      j: 'json',
      jb: 'json',
      by: 'binary',
      ai: 'json',
    });
    expect(schema!.primaryKey).toEqual(['id']);
  });
});
