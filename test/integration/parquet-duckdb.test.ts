/**
 * Parquet logical types checked by another reader (ADR 0014): PostgreSQL → staging → the object-store sink's Parquet
 * → DuckDB. `DESCRIBE` gives DECIMAL(p,s) for bounded numerics (unbounded `numeric` stays exact text), UUID, JSON
 * for json/jsonb, REQUIRED for NOT NULL; the values as text and the sums equal PostgreSQL's.
 */

import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { describe, expect, it } from 'vitest';
import { FileSystemObjectStore } from '../../src/fs/index.js';
import {
  MemoryKvStore,
  MemoryStagingProvider,
  ObjectStoreSink,
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

describe('Parquet written by the object-store sink, read by DuckDB', () => {
  it.each(['memory', 'ndjson'] as const)(
    'has the logical types, REQUIRED for NOT NULL, and PostgreSQL’s values and sums (%s staging)',
    async (via) => {
      const src = `src_${via}`;
      await pg.query(
        `CREATE TABLE "${pg.schema}".${src} (id integer PRIMARY KEY, ${NAMES.map((c) => `${c} ${COLS[c][0]}`).join(', ')})`,
      );
      for (let i = 0; i < 4; i++)
        await pg.query(
          `INSERT INTO "${pg.schema}".${src} VALUES (${i + 1}, ${NAMES.map((_, j) => `$${j + 1}`).join(', ')})`,
          NAMES.map((c) => COLS[c][2][i]),
        );
      const root = mkdtempSync(join(tmpdir(), 'pqduck-'));
      const unitId = `${pg.schema}.${src}`;
      await runUnit({
        source: new PostgresSource({ pool: pg.newPool() }),
        sink: new ObjectStoreSink({ store: new FileSystemObjectStore({ root }), format: 'parquet', prefix: 'lake' }),
        staging:
          via === 'memory'
            ? new MemoryStagingProvider()
            : new ObjectStoreStagingProvider({
                store: new FileSystemObjectStore({ root: mkdtempSync(join(tmpdir(), 'pqduck-staging-')) }),
                codec: 'ndjson',
              }),
        kv: new MemoryKvStore(),
        unit: { vendor: 'postgres', endpointId: 'pq', unitId },
        mode: 'full',
      });
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
