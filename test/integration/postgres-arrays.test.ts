/**
 * PostgreSQL arrays through every codec (ADR 0014): non-default lower bounds, several dimensions, json[]/jsonb[]
 * (NULL elements and JSON `null`s, nested JSON arrays), element types with their own delimiter (`box[]` uses `;`),
 * `oid`. PostgreSQL → staging (memory, NDJSON, NDJSON.gz, Arrow, pass-through) → a created and a pre-created
 * PostgreSQL target, compared as text in SQL both ways.
 */

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { arrowCodec } from '../../src/arrow/index.js';
import { FileSystemObjectStore } from '../../src/fs/index.js';
import {
  MemoryKvStore,
  MemoryStagingProvider,
  ObjectStoreStagingProvider,
  type RecordCodec,
  runUnit,
  type StagingProvider,
} from '../../src/index.js';
import { PostgresSink, PostgresSource, pgCopyCodec } from '../../src/postgres/index.js';
import { usePostgres } from '../helpers/pg.js';

const pg = usePostgres('arrays');

/** Column → [type, values (PostgreSQL text literals, NULL as null)]. */
const COLS: Record<string, [string, Array<string | null>]> = {
  i4: ['integer[]', ['[0:2]={1,2,3}', '{{1,2},{3,4}}', '[2:3][-1:0]={{1,NULL},{3,4}}', '{}', '{{{1}},{{2}}}']],
  t: ['text[]', ['{NULL,"NULL",""," a","a,b","{}","\\\\"}', '[-5:-5]={x}', '{{a,b},{c,d}}', null, '{""}']],
  jb: ['jsonb[]', ['{{"{\\"a\\": 1}","[1, 2]"},{"null",NULL}}', '{"1.50",NULL,"null"}', '[0:0]={"[]"}', '{}', null]],
  js: ['json[]', ['{"1.50","[1,2]","{\\"a\\":1,\\"a\\":2}"}', '{{"1"},{"[2]"}}', '{NULL,"null"}', null, '[3:3]={"3"}']],
  bx: ['box[]', ['{(1,1),(0,0);(2,2),(1,1)}', '{{(1,1),(0,0)};{(3,3),(2,2)}}', '[0:0]={(1,1),(0,0)}', '{NULL}', null]],
  f8: ['float8[]', ['{NaN,Infinity,-Infinity,-0,1e-320}', '[0:1]={1.5,NULL}', '{{1},{2}}', '{}', null]],
  nu: ['numeric[]', ['{1.50,NaN,-Infinity}', '[1:1][1:2]={{1,2}}', '{NULL}', null, '{0.000000000000000000001}']],
  ts: ['timestamptz[]', ['{infinity,"2024-01-01 00:00:00.000001+00"}', '[0:0]={-infinity}', null, '{}', '{NULL}']],
  ba: ['bytea[]', ['{"\\\\x00ff",NULL}', '[2:2]={"\\\\x"}', null, '{}', '{{"\\\\x01"},{"\\\\x02"}}']],
  o: ['oid', ['4294967295', '0', null, '1', '26']],
  oa: ['oid[]', ['{4294967295,0}', '[0:0]={1}', null, '{}', '{{1},{2}}']],
};
const NAMES = Object.keys(COLS);
const ROWS = COLS.i4[1].length;

const codecs: Array<[string, () => StagingProvider]> = [
  ['memory', () => new MemoryStagingProvider()],
  ...(['ndjson', 'ndjson.gz', 'arrow', 'pass-through'] as const).map(
    (c) =>
      [
        c,
        () =>
          new ObjectStoreStagingProvider({
            store: new FileSystemObjectStore({ root: mkdtempSync(join(tmpdir(), 'arrays-')) }),
            codec: (c === 'arrow' ? arrowCodec({ batchRows: 2 }) : c === 'pass-through' ? pgCopyCodec() : c) as
              | RecordCodec
              | 'ndjson',
          }),
      ] as [string, () => StagingProvider],
  ),
];

const text = async (table: string) =>
  (
    await pg.query(
      `SELECT id, ${NAMES.map((c) => `${c}::text AS ${c}`).join(', ')} FROM "${pg.schema}".${table} ORDER BY id`,
    )
  ).rows.map((r) => [r.id, ...NAMES.map((c) => `${c}=${r[c]}`)]);

describe.each(codecs)('PostgreSQL arrays through %s staging', (name, staging) => {
  it.each(['created', 'pre-created', 'text-columns'] as const)('into a %s target, equal as text', async (target) => {
    const tag = `${name.replace(/\W/g, '_')}_${target.replace('-', '_')}`;
    const src = `src_${tag}`;
    const dst = `dst_${tag}`;
    const ddl = NAMES.map((c) => `${c} ${COLS[c][0]}`).join(', ');
    await pg.query(`CREATE TABLE "${pg.schema}".${src} (id integer PRIMARY KEY, ${ddl})`);
    for (let i = 0; i < ROWS; i++)
      await pg.query(
        `INSERT INTO "${pg.schema}".${src} VALUES (${i + 1}, ${NAMES.map((_, j) => `$${j + 1}`).join(', ')})`,
        NAMES.map((c) => COLS[c][1][i]),
      );
    if (target === 'pre-created') await pg.query(`CREATE TABLE "${pg.schema}".${dst} (id integer PRIMARY KEY, ${ddl})`);
    if (target === 'text-columns')
      await pg.query(
        `CREATE TABLE "${pg.schema}".${dst} (id integer PRIMARY KEY, ${NAMES.map((c) => `${c} text`).join(', ')})`,
      );
    const unitId = `${pg.schema}.${src}`;
    const r = await runUnit({
      source: new PostgresSource({ pool: pg.newPool() }),
      sink: new PostgresSink({ pool: pg.newPool(), tables: { [unitId]: `${pg.schema}.${dst}` } }),
      staging: staging(),
      kv: new MemoryKvStore(),
      unit: { vendor: 'postgres', endpointId: `arr-${tag}`, unitId, sinkId: dst },
      mode: 'full',
      policy: { sliceMaxRows: 3 },
    });
    expect(r.stats.rowsImported).toBe(ROWS);
    expect(await text(dst)).toEqual(await text(src));
  });
});
