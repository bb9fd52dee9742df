import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { arrowCodec } from '../../src/arrow/index.js';
import { FileSystemObjectStore } from '../../src/fs/index.js';
import {
  JsonText,
  MemoryKvStore,
  MemoryStagingProvider,
  ObjectStoreStagingProvider,
  type RecordSchema,
  runUnit,
  type StagingProvider,
  Timestamp,
} from '../../src/index.js';
import { PostgresSink, PostgresSource } from '../../src/postgres/index.js';
import { MemorySource } from '../../src/testing/index.js';
import { usePostgres } from '../helpers/pg.js';
import { createMatrix, diffTables } from './fixtures/pg-type-matrix.js';

/*
 * The type matrix (issue 10): every PostgreSQL built-in type a user meets, with its edge values and NULLs, goes
 * PostgreSQL → runUnit through each staging codec → PostgreSQL, and the copy is compared AS TEXT, both ways, with
 * EXCEPT ALL: once into a pre-created target, once into a target the sink creates (whose column types must be the
 * source's, by format_type). Both sessions run with a non-UTC TimeZone as well, to catch zone bugs.
 */

const env = usePostgres('matrix');
const tmp = mkdtempSync(join(tmpdir(), 'pg-matrix-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

type Staging = [name: string, make: () => StagingProvider];
let dirs = 0;
const fs = (codec: 'ndjson' | 'ndjson.gz' | ReturnType<typeof arrowCodec>) => () =>
  new ObjectStoreStagingProvider({
    store: new FileSystemObjectStore({ root: join(tmp, `s${++dirs}`) }),
    codec,
  });
const STAGINGS: Staging[] = [
  ['memory', () => new MemoryStagingProvider()],
  ['fs NDJSON', fs('ndjson')],
  ['fs NDJSON.gz', fs('ndjson.gz')],
  ['fs Arrow', fs(arrowCodec({ batchRows: 2 }))],
];
const ZONES = ['UTC', 'America/St_Johns'];

beforeAll(() => createMatrix(env));

const diff = (a: string, b: string) => diffTables(env, a, b);

/** `column: format_type` of a table, in column order. */
async function types(table: string): Promise<string[]> {
  const r = await env.query(
    `SELECT a.attname || ': ' || format_type(a.atttypid, a.atttypmod) AS t FROM pg_attribute a
      WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
    [`"${env.schema}".${table}`],
  );
  return r.rows.map((x) => x.t);
}

let n = 0;
async function copy(staging: StagingProvider, zone: string, target: string) {
  const pool = env.newPool({ options: `-c search_path="${env.schema}",public -c TimeZone=${zone}` });
  const unitId = `${env.schema}.src`;
  const source = new PostgresSource({ pool, units: { [unitId]: {} } });
  const sink = new PostgresSink({ pool, tables: { [unitId]: `${env.schema}.${target}` } });
  const warnings: string[] = [];
  const res = await runUnit({
    source,
    sink,
    staging,
    kv: new MemoryKvStore(),
    unit: { vendor: 'postgres', endpointId: 'pg', unitId },
    mode: 'full',
    runId: `matrix-${++n}`,
    policy: { chunkSize: 2, sliceMaxRows: 3 },
    logger: { debug() {}, info() {}, warn: (m: string) => warnings.push(m), error() {} },
  });
  return { res, warnings };
}

describe('PostgreSQL type matrix: PG → staging codec → PG is exact, compared as text both ways', () => {
  it('the source table holds what the matrix claims (sanity)', async () => {
    const r = await env.query(
      `SELECT count(*)::int AS n, count(DISTINCT w::text)::int AS d FROM "${env.schema}".src w`,
    );
    expect(r.rows[0]).toEqual({ n: 4, d: 4 });
    const j = await env.query(
      `SELECT j::text AS j, jb::text AS jb, ts::text AS ts FROM "${env.schema}".src WHERE id = 1`,
    );
    expect(j.rows[0].j).toContain('1.00000000000000000001');
    expect(j.rows[0].jb).toContain('12345678901234567890123');
    expect(j.rows[0].ts).toBe('infinity');
  });

  for (const zone of ZONES) {
    for (const [name, make] of STAGINGS) {
      it(`${name}, TimeZone ${zone}: into a pre-created target`, async () => {
        const target = `pre_${n + 1}`;
        await env.query(`CREATE TABLE "${env.schema}".${target} (LIKE "${env.schema}".src INCLUDING ALL)`);
        const { res } = await copy(make(), zone, target);
        expect(res.stats.rowsImported).toBe(4);
        expect(await diff('src', target)).toEqual([]);
      });

      it(`${name}, TimeZone ${zone}: into a target the sink creates, with the source's column types`, async () => {
        const target = `created_${n + 1}`;
        const { res, warnings } = await copy(make(), zone, target);
        expect(res.stats.rowsImported).toBe(4);
        // built-in types exactly; the source schema's enum and domains are not referenced (ADR 0013): enum → text,
        // a domain → its base type
        const mapped: Record<string, string> = {
          a_mood: 'text[]',
          mo: 'text',
          pos: 'integer',
          short: 'character varying(8)',
        };
        const want = (await types('src')).map((t) => {
          const name = t.slice(0, t.indexOf(':'));
          return mapped[name] ? `${name}: ${mapped[name]}` : t;
        });
        expect(await types(target)).toEqual(want);
        expect(warnings).toEqual([]);
        expect(await diff('src', target)).toEqual([]);
      });
    }
  }

  it('maps type + logical when there is no PostgreSQL native type, and falls back (with a warning) for an unknown one', async () => {
    const schema: RecordSchema = {
      fields: [
        { name: 'id', type: 'int64', nullable: false },
        { name: 'price', type: 'decimal', nullable: true, logical: { precision: 12, scale: 2 } },
        { name: 'at', type: 'timestamp', nullable: true, logical: { withTimeZone: false, precision: 6 } },
        { name: 'atz', type: 'timestamp', nullable: true },
        { name: 'tm', type: 'time', nullable: true, logical: { withTimeZone: true } },
        { name: 'u', type: 'uuid', nullable: true },
        { name: 'iv', type: 'interval', nullable: true },
        { name: 'code', type: 'string', nullable: true, logical: { length: 8, fixedLength: true } },
        { name: 'name', type: 'string', nullable: true, logical: { length: 20 } },
        { name: 'tags', type: 'json', nullable: true, logical: { element: 'string' } },
        {
          name: 'amounts',
          type: 'json',
          nullable: true,
          logical: { element: 'decimal', elementLogical: { precision: 5, scale: 1 } },
        },
        { name: 'doc', type: 'json', nullable: true },
        { name: 'mood', type: 'string', nullable: true, native: { dialect: 'postgres', type: 'no_such_schema.mood' } },
        {
          name: 'odd',
          type: 'int32',
          nullable: true,
          native: { dialect: 'postgres', type: 'integer); DROP TABLE x; --' },
        },
        {
          name: 'my',
          type: 'decimal',
          nullable: true,
          native: { dialect: 'mysql', type: 'decimal(10,3)' },
          logical: { precision: 10, scale: 3 },
        },
      ],
      primaryKey: ['id'],
    };
    const row = {
      id: 1n,
      price: '1234567890.12',
      at: Timestamp.parse('2024-03-10 02:30:00.000001'),
      atz: Timestamp.parse('infinity', { zoned: true }),
      tm: '12:00:00.5+05:30',
      u: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
      iv: '1 mon -2 days 00:00:00.000001',
      code: 'ab',
      name: 'x',
      tags: ['a"b', null, '\\', ''],
      amounts: ['NaN', '1.5', null],
      doc: new JsonText('{"p": 1.50, "big": 12345678901234567890123}'),
      mood: 'happy',
      odd: 7,
      my: '-1234567.125',
    };
    const pool = env.newPool({ options: `-c search_path="${env.schema}",public -c TimeZone=America/St_Johns` });
    const sink = new PostgresSink({ pool, tables: { things: `${env.schema}.generic` } });
    const warnings: string[] = [];
    await runUnit({
      source: new MemorySource({ units: { things: { rows: [row], schema } } }),
      sink,
      staging: fs('ndjson')(),
      kv: new MemoryKvStore(),
      unit: { endpointId: 'mem', unitId: 'things' },
      mode: 'full',
      logger: { debug() {}, info() {}, warn: (m: string) => warnings.push(m), error() {} },
    });
    expect(await types('generic')).toEqual([
      'id: bigint',
      'price: numeric(12,2)',
      'at: timestamp(6) without time zone',
      'atz: timestamp with time zone',
      'tm: time with time zone',
      'u: uuid',
      'iv: interval',
      'code: character(8)',
      'name: character varying(20)',
      'tags: text[]',
      'amounts: numeric(5,1)[]',
      'doc: jsonb',
      'mood: text',
      'odd: integer',
      'my: numeric(10,3)',
    ]);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toContain('"mood"');
    expect(warnings[1]).toContain('"odd"');
    const back = await env.query(
      `SELECT price::text, at::text, atz::text, tm::text, iv::text, code::text, tags::text, amounts::text, doc::text, my::text FROM "${env.schema}".generic`,
    );
    expect(back.rows[0]).toEqual({
      price: '1234567890.12',
      at: '2024-03-10 02:30:00.000001',
      atz: 'infinity',
      tm: '12:00:00.5+05:30',
      iv: '1 mon -2 days +00:00:00.000001',
      code: 'ab', // char(n)::text drops the padding
      tags: '{"a\\"b",NULL,"\\\\",""}',
      amounts: '{NaN,1.5,NULL}',
      doc: '{"p": 1.50, "big": 12345678901234567890123}',
      my: '-1234567.125',
    });
  });

  it('a diff of one changed value is found (the comparison can fail)', async () => {
    const s = `"${env.schema}"`;
    await env.query(`CREATE TABLE ${s}.tampered AS SELECT * FROM ${s}.src`);
    await env.query(`UPDATE ${s}.tampered SET tstz = tstz + interval '1 microsecond' WHERE id = 3`);
    const d = await diff('src', 'tampered');
    expect(d).toHaveLength(2);
  });
});
