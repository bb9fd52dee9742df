/**
 * Schema evolution into files (issue 21): after the source's schema changed (a column added, one dropped, an integer
 * widened), the files a run writes carry the new schema, the old runs' files keep theirs, and DuckDB reads old and
 * new Parquet files together with `read_parquet([...], union_by_name = true)`: old rows NULL in the new column, new
 * rows NULL in the dropped one. CSV files carry the new header.
 */

import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { describe, expect, it } from 'vitest';
import { FileSystemObjectStore } from '../../src/fs/index.js';
import {
  type FieldSchema,
  type IngestionEvent,
  MemoryKvStore,
  MemoryStagingProvider,
  ObjectStoreSink,
  type Row,
  runUnit,
} from '../../src/index.js';
import { MemorySource } from '../../src/testing/index.js';

const f = (name: string, type: FieldSchema['type'], nullable = true): FieldSchema => ({ name, type, nullable });
const V1 = { fields: [f('id', 'int32', false), f('name', 'string'), f('legacy', 'string')] };
const V2 = { fields: [f('id', 'int64', false), f('name', 'string'), f('region', 'string')] };

function files(dir: string, ext: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[])
    .filter((p) => p.endsWith(ext))
    .map((p) => join(dir, p))
    .sort();
}

describe('object-store sink after a schema change', () => {
  it('Parquet: new files carry the new schema; DuckDB reads old and new together by name', async () => {
    const root = mkdtempSync(join(tmpdir(), 'evolve-files-'));
    const kv = new MemoryKvStore();
    const sink = new ObjectStoreSink({ store: new FileSystemObjectStore({ root }), format: 'parquet', prefix: 'lake' });
    const events: IngestionEvent[] = [];
    const run = (rows: Row[], schema: typeof V1, runId: string) =>
      runUnit({
        source: new MemorySource({ units: { people: { rows, schema } } }),
        sink,
        staging: new MemoryStagingProvider(),
        kv,
        unit: { endpointId: 'mem', unitId: 'people' },
        mode: 'full',
        runId,
        onEvent: (e) => events.push(e),
      });
    await run(
      [
        { id: 1, name: 'a', legacy: 'l1' },
        { id: 2, name: 'b', legacy: 'l2' },
      ],
      V1,
      'run-1',
    );
    await run(
      [
        { id: 3n, name: 'c', region: 'eu' },
        { id: 9007199254740993n, name: 'd', region: null },
      ],
      V2,
      'run-2',
    );
    const changed = events.find((e) => e.type === 'schema.changed') as Extract<
      IngestionEvent,
      { type: 'schema.changed' }
    >;
    expect(changed.diff.added.map((x) => x.name)).toEqual(['region']);
    expect(changed.diff.dropped).toEqual(['legacy']);
    expect(changed.diff.widened.map((x) => x.name)).toEqual(['id']);

    const parquet = files(root, '.parquet');
    expect(parquet).toHaveLength(2);
    const success = files(root, '_SUCCESS').map((p) => JSON.parse(readFileSync(p, 'utf8')));
    expect(success.map((s) => s.schema.fields.map((x: FieldSchema) => x.name))).toEqual([
      ['id', 'name', 'legacy'],
      ['id', 'name', 'region'],
    ]);

    const db = await DuckDBInstance.create(':memory:');
    const conn = await db.connect();
    try {
      const list = parquet.map((p) => `'${p.replaceAll("'", "''")}'`).join(', ');
      // each file alone has its own run's columns
      const cols = async (p: string) =>
        (await conn.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet('${p}')`))
          .getRowObjectsJson()
          .map((r) => `${r.column_name}:${r.column_type}`);
      expect(await cols(parquet[0]!)).toEqual(['id:INTEGER', 'name:VARCHAR', 'legacy:VARCHAR']);
      expect(await cols(parquet[1]!)).toEqual(['id:BIGINT', 'name:VARCHAR', 'region:VARCHAR']);
      const reader = await conn.runAndReadAll(
        `SELECT CAST(id AS VARCHAR) AS id, name, legacy, region FROM read_parquet([${list}], union_by_name = true) ORDER BY id::BIGINT`,
      );
      expect(reader.getRowObjectsJson()).toEqual([
        { id: '1', name: 'a', legacy: 'l1', region: null },
        { id: '2', name: 'b', legacy: 'l2', region: null },
        { id: '3', name: 'c', legacy: null, region: 'eu' },
        { id: '9007199254740993', name: 'd', legacy: null, region: null },
      ]);
    } finally {
      conn.closeSync();
      db.closeSync();
    }
  });

  it('CSV: files written after the change have the new header', async () => {
    const root = mkdtempSync(join(tmpdir(), 'evolve-csv-'));
    const kv = new MemoryKvStore();
    const sink = new ObjectStoreSink({ store: new FileSystemObjectStore({ root }), format: 'csv', prefix: 'lake' });
    const run = (rows: Row[], schema: typeof V1, runId: string) =>
      runUnit({
        source: new MemorySource({ units: { people: { rows, schema } } }),
        sink,
        staging: new MemoryStagingProvider(),
        kv,
        unit: { endpointId: 'mem', unitId: 'people' },
        mode: 'full',
        runId,
      });
    await run([{ id: 1, name: 'a', legacy: 'l1' }], V1, 'run-1');
    await run([{ id: 2n, name: 'b', region: 'eu' }], V2, 'run-2');
    const heads = files(root, '.csv').map((p) => readFileSync(p, 'utf8').split('\n')[0]);
    expect(heads).toEqual(['id,name,legacy', 'id,name,region']);
  });
});
