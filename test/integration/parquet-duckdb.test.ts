/**
 * Parquet logical types checked by another reader (ADR 0014): PostgreSQL → staging → the object-store sink's Parquet
 * → DuckDB. `DESCRIBE` gives DECIMAL(p,s) for bounded numerics (unbounded `numeric` stays exact text), UUID, JSON
 * for json/jsonb, REQUIRED for NOT NULL, LIST for arrays; the values as text and the sums equal PostgreSQL's.
 */

import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { describe, expect, it } from 'vitest';
import { FileSystemObjectStore } from '../../src/fs/index.js';
import {
  IngestError,
  MemoryKvStore,
  MemoryStagingProvider,
  ObjectStoreSink,
  type ObjectStoreSinkParquetOptions,
  ObjectStoreStagingProvider,
  runUnit,
} from '../../src/index.js';
import { PostgresSource } from '../../src/postgres/index.js';
import { usePostgres } from '../helpers/pg.js';

const pg = usePostgres('pqduck');

/** Column → [PostgreSQL type, DuckDB type, values]. */
const COLS: Record<string, [string, string, Array<string | null>]> = {
  n12: ['numeric(12,2) NOT NULL', 'DECIMAL(12,2)', ['12.50', '-9999999999.99', '0.01', '0.00']],
  n5: ['numeric(5,0)', 'DECIMAL(5,0)', ['99999', '-1', null, '0']],
  n18: ['numeric(18,4)', 'DECIMAL(18,4)', ['99999999999999.9999', '-0.0001', '1', null]],
  n38: [
    'numeric(38,10)',
    'DECIMAL(38,10)',
    ['1234567890123456789012345678.0123456789', '-9999999999999999999999999999.9999999999', null, '0.0000000001'],
  ],
  nu: ['numeric', 'VARCHAR', ['1e-100', 'NaN', '123456789012345678901234567890123456789012.5', null]],
  u: [
    'uuid',
    'UUID',
    [
      '123e4567-e89b-12d3-a456-426614174000',
      null,
      'ffffffff-ffff-ffff-ffff-ffffffffffff',
      '00000000-0000-0000-0000-000000000000',
    ],
  ],
  jb: ['jsonb', 'JSON', ['{"a": 1.50, "b": [1, 2]}', 'null', null, '12345678901234567890123']],
  js: ['json', 'JSON', ['{"a":1.50,"a":2}', null, '[]', '"x"']],
  t: ['text NOT NULL', 'VARCHAR', ['a', '', 'é', 'x y']],
  i8: ['bigint', 'BIGINT', ['-9223372036854775808', '9223372036854775807', null, '0']],
};
const NAMES = Object.keys(COLS);

/** A table in the test schema with the rows of `cols` (id 1…n); its unit id. */
async function table(name: string, cols: Record<string, [string, string, Array<string | null>]>): Promise<string> {
  const names = Object.keys(cols);
  await pg.query(
    `CREATE TABLE "${pg.schema}".${name} (id integer PRIMARY KEY, ${names.map((c) => `${c} ${cols[c]![0]}`).join(', ')})`,
  );
  const n = cols[names[0]!]![2].length;
  for (let i = 0; i < n; i++)
    await pg.query(
      `INSERT INTO "${pg.schema}".${name} VALUES (${i + 1}, ${names.map((_, j) => `$${j + 1}`).join(', ')})`,
      names.map((c) => cols[c]![2][i]),
    );
  return `${pg.schema}.${name}`;
}
function run(
  unitId: string,
  root: string,
  opts: { parquet?: ObjectStoreSinkParquetOptions; disposition?: 'append' | 'replace'; runId?: string } = {},
  staging: 'memory' | 'ndjson' = 'memory',
) {
  return runUnit({
    source: new PostgresSource({ pool: pg.newPool() }),
    sink: new ObjectStoreSink({
      store: new FileSystemObjectStore({ root }),
      format: 'parquet',
      prefix: 'lake',
      ...(opts.parquet ? { parquet: opts.parquet } : {}),
    }),
    staging:
      staging === 'memory'
        ? new MemoryStagingProvider()
        : new ObjectStoreStagingProvider({
            store: new FileSystemObjectStore({ root: mkdtempSync(join(tmpdir(), 'pqduck-staging-')) }),
            codec: 'ndjson',
          }),
    kv: new MemoryKvStore(),
    unit: { vendor: 'postgres', endpointId: 'pq', unitId },
    mode: 'full',
    ...(opts.disposition ? { disposition: opts.disposition } : {}),
    ...(opts.runId ? { runId: opts.runId } : {}),
  });
}

describe('Parquet written by the object-store sink, read by DuckDB', () => {
  it.each(['memory', 'ndjson'] as const)(
    'has the logical types, REQUIRED for NOT NULL, and PostgreSQL’s values and sums (%s staging)',
    async (via) => {
      const src = `src_${via}`;
      const unitId = await table(src, COLS);
      const root = mkdtempSync(join(tmpdir(), 'pqduck-'));
      await run(unitId, root, {}, via);
      const files = readdirSync(root, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.parquet'));
      expect(files.length).toBe(1);
      const file = join(root, files[0]).replace(/'/g, "''");
      const db = await DuckDBInstance.create(':memory:');
      const con = await db.connect();
      const rows = async (sql: string) => (await con.runAndReadAll(sql)).getRowObjectsJS() as Record<string, unknown>[];
      try {
        const described = await rows(`DESCRIBE SELECT * FROM read_parquet('${file}')`);
        expect(Object.fromEntries(described.map((d) => [d.column_name, d.column_type]))).toMatchObject({
          id: 'INTEGER',
          ...Object.fromEntries(NAMES.map((c) => [c, COLS[c][1]])),
        });
        const repetition = await rows(`SELECT name, repetition_type FROM parquet_schema('${file}')`);
        const rep = Object.fromEntries(repetition.map((r) => [r.name, r.repetition_type]));
        expect(rep).toMatchObject({ id: 'REQUIRED', n12: 'REQUIRED', t: 'REQUIRED', n5: 'OPTIONAL', u: 'OPTIONAL' });
        const duck = await rows(
          `SELECT id, ${NAMES.map((c) => `CAST(${c} AS VARCHAR) AS ${c}`).join(', ')} FROM read_parquet('${file}') ORDER BY id`,
        );
        const { rows: theirs } = await pg.query(
          `SELECT id, ${NAMES.map((c) => `${c}::text AS ${c}`).join(', ')} FROM "${pg.schema}".${src} ORDER BY id`,
        );
        const text = (rs: Record<string, unknown>[]) =>
          rs.map((r) => [Number(r.id), ...NAMES.map((c) => `${c}=${r[c] ?? '∅'}`)]);
        expect(text(duck)).toEqual(text(theirs));
        const sums = ['n12', 'n5', 'n18', 'n38'];
        const [duckSum] = await rows(
          `SELECT ${sums.map((c) => `CAST(sum(${c}) AS VARCHAR) AS ${c}`).join(', ')} FROM read_parquet('${file}')`,
        );
        const { rows: pgSum } = await pg.query(
          `SELECT ${sums.map((c) => `sum(${c})::text AS ${c}`).join(', ')} FROM "${pg.schema}".${src}`,
        );
        expect(duckSum).toEqual(pgSum[0]);
      } finally {
        con.closeSync();
      }
    },
  );
});

/** Array column → [PostgreSQL type, DuckDB type, values of rows 1–4]. */
const ARRAYS: Record<string, [string, string, Array<string | null>]> = {
  ia: ['integer[]', 'INTEGER[]', ['{1,NULL,3}', '{}', null, '{-2147483648,2147483647}']],
  na: ['numeric(12,2)[]', 'DECIMAL(12,2)[]', ['{1.50,NULL,-2.25}', '{}', null, '{9999999999.99,0.01}']],
  ta: ['text[]', 'VARCHAR[]', ['{a,NULL,"","b c"}', '{}', null, '{"NULL","é,\\"x\\""}']],
  ua: [
    'uuid[]',
    'UUID[]',
    ['{123e4567-e89b-12d3-a456-426614174000,NULL}', '{}', null, '{00000000-0000-0000-0000-000000000000}'],
  ],
  tsa: [
    'timestamptz[]',
    'TIMESTAMP WITH TIME ZONE[]',
    ['{"2024-01-01 00:00:00.000001+00",NULL}', '{}', null, '{"1999-12-31 23:59:59.999999+00"}'],
  ],
  ja: ['jsonb[]', 'JSON[]', [`{"{\\"a\\": 1.50}",NULL,"[1, 2]"}`, '{}', null, `{"12345678901234567890123","\\"x\\""}`]],
  i8a: ['bigint[]', 'BIGINT[]', ['{9223372036854775807,NULL}', '{}', null, '{-9223372036854775808}']],
  da: ['date[]', 'DATE[]', ['{2024-02-29,NULL}', '{}', null, '{1970-01-01}']],
  ba: ['boolean[]', 'BOOLEAN[]', ['{t,NULL,f}', '{}', null, '{f}']],
  m: ['integer[][]', 'INTEGER[][]', ['{{1,2},{3,NULL}}', '{}', null, '{{5},{6}}']],
  ea: ['text[] NOT NULL', 'VARCHAR[]', ['{x}', '{}', '{NULL}', '{}']],
};
const ARRAY_NAMES = Object.keys(ARRAYS);

describe('arrays in Parquet written by the object-store sink, read by DuckDB', () => {
  const parquetFiles = (root: string) =>
    readdirSync(root, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.parquet'))
      .sort()
      .map((f) => join(root, f).replace(/'/g, "''"));
  async function duck<T>(fn: (rows: (sql: string) => Promise<Record<string, unknown>[]>) => Promise<T>): Promise<T> {
    const db = await DuckDBInstance.create(':memory:');
    const con = await db.connect();
    try {
      return await fn(async (sql) => (await con.runAndReadAll(sql)).getRowObjectsJS() as Record<string, unknown>[]);
    } finally {
      con.closeSync();
    }
  }
  it.each(['memory', 'ndjson'] as const)(
    'writes LISTs DuckDB reads as typed lists with PostgreSQL’s elements, NULLs, empties and sums (%s staging)',
    async (via) => {
      const unitId = await table(`arr_${via}`, ARRAYS);
      const root = mkdtempSync(join(tmpdir(), 'pqduck-arr-'));
      // the column declared integer[][] is a 2-D LIST: the PostgreSQL source reports its declared dimensions
      await run(unitId, root, {}, via);
      const [file] = parquetFiles(root);
      const utc = pg.newPool({ options: '-c TimeZone=UTC' });
      try {
        await duck(async (rows) => {
          const described = await rows(`DESCRIBE SELECT * FROM read_parquet('${file}')`);
          expect(Object.fromEntries(described.map((d) => [d.column_name, d.column_type]))).toEqual({
            id: 'INTEGER',
            ...Object.fromEntries(ARRAY_NAMES.map((c) => [c, ARRAYS[c]![1]])),
          });
          const rep = await rows(`SELECT name, repetition_type FROM parquet_schema('${file}')`);
          expect(rep.filter((r) => r.name === 'ea' || r.name === 'ia')).toEqual([
            { name: 'ia', repetition_type: 'OPTIONAL' },
            { name: 'ea', repetition_type: 'REQUIRED' },
          ]);
          // every element as text, with its position (2-D flattened in row-major order, as PostgreSQL's unnest)
          const flat = (c: string) => (c === 'm' ? `flatten(${c})` : c);
          const duckElems = await rows(
            ARRAY_NAMES.map(
              (c) =>
                `SELECT id, '${c}' AS col, generate_subscripts(${flat(c)}, 1) AS k, CAST(unnest(${flat(c)}) AS VARCHAR) AS e FROM read_parquet('${file}')`,
            ).join(' UNION ALL '),
          );
          const { rows: pgElems } = await utc.query(
            ARRAY_NAMES.map(
              (c) =>
                `SELECT id, '${c}' AS col, k, e::text AS e FROM "${pg.schema}".arr_${via}, unnest(${c}) WITH ORDINALITY AS u(e, k)`,
            ).join(' UNION ALL '),
          );
          const key = (rs: Record<string, unknown>[]) => rs.map((r) => `${r.id}|${r.col}|${r.k}|${r.e ?? '∅'}`).sort();
          expect(pgElems.length).toBeGreaterThan(20);
          // equal both ways: every PostgreSQL element is in the file, and nothing else
          expect(key(duckElems)).toEqual(key(pgElems));
          // NULL arrays stay NULL, empty arrays empty, and the 2-D shape is kept
          const shapes = await rows(
            `SELECT id, ${ARRAY_NAMES.map((c) => `CASE WHEN ${c} IS NULL THEN 'null' ELSE CAST(len(${flat(c)}) AS VARCHAR) END AS ${c}`).join(', ')}, CAST(len(m[1]) AS VARCHAR) AS m2 FROM read_parquet('${file}') ORDER BY id`,
          );
          const { rows: pgShapes } = await pg.query(
            `SELECT id, ${ARRAY_NAMES.map((c) => `CASE WHEN ${c} IS NULL THEN 'null' ELSE cardinality(${c})::text END AS ${c}`).join(', ')}, array_length(m, 2)::text AS m2 FROM "${pg.schema}".arr_${via} ORDER BY id`,
          );
          expect(shapes).toEqual(pgShapes);
          // whole arrays as JSON where both render JSON alike (DuckDB's to_json re-renders decimals and JSON)
          const exactJson = ['ia', 'ta', 'ua', 'i8a', 'ba', 'm', 'ea'];
          const duckJson = await rows(
            `SELECT id, ${exactJson.map((c) => `CAST(to_json(${c}) AS VARCHAR) AS ${c}`).join(', ')} FROM read_parquet('${file}') ORDER BY id`,
          );
          const { rows: pgJson } = await pg.query(
            `SELECT id, ${exactJson.map((c) => `array_to_json(${c})::text AS ${c}`).join(', ')} FROM "${pg.schema}".arr_${via} ORDER BY id`,
          );
          expect(duckJson).toEqual(pgJson);
          const [duckSum] = await rows(
            `SELECT CAST(sum(e) AS VARCHAR) AS na, (SELECT CAST(sum(x) AS VARCHAR) FROM (SELECT unnest(ia) AS x FROM read_parquet('${file}'))) AS ia FROM (SELECT unnest(na) AS e FROM read_parquet('${file}'))`,
          );
          const { rows: pgSum } = await pg.query(
            `SELECT (SELECT sum(e)::text FROM "${pg.schema}".arr_${via}, unnest(na) e) AS na, (SELECT sum(e)::text FROM "${pg.schema}".arr_${via}, unnest(ia) e) AS ia`,
          );
          expect(duckSum).toEqual(pgSum[0]);
          const perRow = await rows(
            `SELECT id, CAST(list_sum(na) AS VARCHAR) AS s FROM read_parquet('${file}') ORDER BY id`,
          );
          const { rows: pgPerRow } = await pg.query(
            `SELECT id, (SELECT sum(e)::text FROM unnest(na) e) AS s FROM "${pg.schema}".arr_${via} ORDER BY id`,
          );
          expect(perRow).toEqual(pgPerRow);
        });
      } finally {
        await utc.end();
      }
    },
  );

  it('refuses a 2-D value in a 1-D column and a non-default lower bound with row_rejected naming column, slice and row; arrays: json keeps them', async () => {
    const root = mkdtempSync(join(tmpdir(), 'pqduck-rej-'));
    const cases: Array<[string, string, RegExp]> = [
      ['ragged', '{{1},{2}}', /row 1, column "ia" has more than 1 dimension at \[0\].*\(slice 0 of unit .*, run /],
      ['bounds', '[0:1]={1,2}', /row 1, column "ia" is PostgreSQL array text \("\[0:1\]=\{1,2\}".*\(slice 0 of unit /],
    ];
    for (const [name, value, message] of cases) {
      const unitId = await table(`rej_${name}`, { ia: ['integer[]', '', ['{1,2}', value, '{3}']] });
      const err = await run(unitId, root).catch((e: unknown) => e);
      expect(IngestError.is(err, 'row_rejected'), String(err)).toBe(true);
      expect((err as IngestError).message).toMatch(message);
      expect((err as IngestError).message).toContain("parquet: { arrays: 'json' }");
      expect((err as IngestError).details).toMatchObject({ column: 'ia', row: 1, slice: 0, unitId });
      // nothing of the run is visible: no pointer names it
      expect(existsSync(join(root, 'lake', encodeURIComponent(unitId), '_CURRENT'))).toBe(false);

      // the previous encoding keeps every value: JSON text, as PostgreSQL's arrays read back
      const kept = mkdtempSync(join(tmpdir(), 'pqduck-json-'));
      await run(unitId, kept, { parquet: { arrays: 'json' } });
      const [file] = parquetFiles(kept);
      await duck(async (rows) => {
        const [d] = await rows(`SELECT column_type FROM (DESCRIBE SELECT ia FROM read_parquet('${file}'))`);
        expect(d!.column_type).toBe('JSON');
        const got = await rows(`SELECT id, CAST(ia AS VARCHAR) AS ia FROM read_parquet('${file}') ORDER BY id`);
        expect(got.map((r) => r.ia)).toEqual(['[1,2]', name === 'ragged' ? '[[1],[2]]' : '"[0:1]={1,2}"', '[3]']);
      });
    }
  });

  it('refuses an unknown parquet.arrays with config_invalid naming the option', () => {
    const make = () =>
      new ObjectStoreSink({
        store: new FileSystemObjectStore({ root: mkdtempSync(join(tmpdir(), 'pqduck-cfg-')) }),
        format: 'parquet',
        parquet: { arrays: 'lists' as 'list' },
      });
    expect(make).toThrow(
      expect.objectContaining({ code: 'config_invalid', message: expect.stringContaining('parquet.arrays') }),
    );
  });

  it('appending to a dataset whose files hold arrays as JSON keeps JSON for those columns; new columns get LIST', async () => {
    const unitId = await table('arr_append', { ia: ['integer[]', '', ['{1,NULL}', '{}']] });
    const root = mkdtempSync(join(tmpdir(), 'pqduck-append-'));
    const unitDir = join(root, 'lake', encodeURIComponent(unitId));
    // run 1 as a version before LISTs wrote it: arrays as JSON, and a _SUCCESS that records no array encoding
    await run(unitId, root, { parquet: { arrays: 'json' }, runId: 'run-1' });
    const success1 = join(unitDir, 'run-1', '_SUCCESS');
    const recorded = JSON.parse(readFileSync(success1, 'utf8'));
    expect(recorded.parquet).toEqual({ arrays: { ia: 'json' } });
    delete recorded.parquet;
    writeFileSync(success1, JSON.stringify(recorded));

    await pg.query(`ALTER TABLE "${pg.schema}".arr_append ADD COLUMN xa integer[]`);
    await pg.query(`INSERT INTO "${pg.schema}".arr_append VALUES (3, '{5}', '{7,NULL}')`);
    await run(unitId, root, { runId: 'run-2' });
    expect(JSON.parse(readFileSync(join(unitDir, 'run-2', '_SUCCESS'), 'utf8')).parquet).toEqual({
      arrays: { ia: 'json', xa: 'list' },
    });
    // run 3 follows what run 2 recorded
    await run(unitId, root, { runId: 'run-3' });
    const files = parquetFiles(root);
    expect(files).toHaveLength(3);
    await duck(async (rows) => {
      const types = async (f: string) =>
        Object.fromEntries(
          (await rows(`DESCRIBE SELECT * FROM read_parquet('${f}')`)).map((d) => [d.column_name, d.column_type]),
        );
      expect(await types(files[0]!)).toEqual({ id: 'INTEGER', ia: 'JSON' });
      expect(await types(files[1]!)).toEqual({ id: 'INTEGER', ia: 'JSON', xa: 'INTEGER[]' });
      expect(await types(files[2]!)).toEqual({ id: 'INTEGER', ia: 'JSON', xa: 'INTEGER[]' });
      // the dataset reads as one: no file has ia as a LIST
      const list = files.map((f) => `'${f}'`).join(', ');
      const all = await rows(
        `SELECT id, CAST(ia AS VARCHAR) AS ia, CAST(xa AS VARCHAR) AS xa FROM read_parquet([${list}], union_by_name = true) ORDER BY id`,
      );
      expect(all.filter((r) => r.id === 3)).toEqual([
        { id: 3, ia: '[5]', xa: '[7, NULL]' },
        { id: 3, ia: '[5]', xa: '[7, NULL]' },
      ]);
      expect(all.filter((r) => r.id === 1).map((r) => r.ia)).toEqual(['[1,null]', '[1,null]', '[1,null]']);
    });

    // asked for, replace moves the dataset to LISTs
    await run(unitId, root, { parquet: { arrays: 'list' }, disposition: 'replace', runId: 'run-4' });
    const [only, ...rest] = parquetFiles(root);
    expect(rest).toEqual([]);
    await duck(async (rows) => {
      const described = await rows(`DESCRIBE SELECT * FROM read_parquet('${only}')`);
      expect(Object.fromEntries(described.map((d) => [d.column_name, d.column_type]))).toEqual({
        id: 'INTEGER',
        ia: 'INTEGER[]',
        xa: 'INTEGER[]',
      });
    });
  });
});
