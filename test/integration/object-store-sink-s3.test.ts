import { parquetReadObjects } from 'hyparquet';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type ImportRequest,
  type IngestionContext,
  noopLogger,
  type ObjectStorePointer,
  ObjectStoreSink,
  type RecordReader,
  type Row,
} from '../../src/index.js';
import { S3ObjectStore } from '../../src/s3/index.js';
import { createTestS3Client, testBucket, uniquePrefix } from '../helpers/s3.js';

const client = createTestS3Client();
afterAll(() => client.destroy());

const ctx = (runId: string): IngestionContext => ({
  workspaceId: 'default',
  endpointId: 'api',
  unitId: 'events',
  runId,
  vendor: 'test',
  signal: new AbortController().signal,
  logger: noopLogger,
  emit() {},
});

const reader = (rows: Row[]): RecordReader => ({
  async *iterBatches(n: number) {
    for (let i = 0; i < rows.length; i += n) yield rows.slice(i, i + n);
  },
});

const request = (slices: Row[][], disposition: ImportRequest['disposition']): ImportRequest => ({
  unitId: 'events',
  reader: reader(slices.flat()),
  slices: slices.map((rows, index) => ({ index, rows: rows.length, reader: reader(rows) })),
  handles: [],
  disposition,
});

describe('ObjectStoreSink on S3', () => {
  it('writes multi-row-group Parquet files and switches the pointer on replace', async () => {
    const store = new S3ObjectStore({ client, bucket: testBucket() });
    const prefix = uniquePrefix('os-sink').slice(0, -1);
    const sink = new ObjectStoreSink({ store, format: 'parquet', prefix, parquet: { rowGroupSize: 5000 } });
    const events = (from: number, n: number): Row[] =>
      Array.from({ length: n }, (_, i) => ({
        id: BigInt(from + i),
        kind: i % 3 === 0 ? 'click' : 'view',
        at: new Date(1_700_000_000_000 + i),
      }));

    await sink.import(request([events(0, 12_000), events(12_000, 3)], 'append'), ctx('run-1'));
    await sink.import(request([events(50_000, 4)], 'replace'), ctx('run-2'));

    const text = async (key: string) => {
      const chunks: Uint8Array[] = [];
      for await (const c of await store.get(key)) chunks.push(c);
      return Buffer.concat(chunks);
    };
    const pointer: ObjectStorePointer = JSON.parse((await text(sink.pointerKey('events'))).toString());
    expect(pointer.runs.map((r) => r.runId)).toEqual(['run-2']);
    const keys: string[] = [];
    for await (const o of store.list(`${prefix}/`)) keys.push(o.key);
    expect(keys).toEqual([
      `${prefix}/events/_CURRENT`,
      `${prefix}/events/run-2/_SUCCESS`,
      `${prefix}/events/run-2/part-00000.parquet`,
    ]);
    const b = await text(`${prefix}/events/run-2/part-00000.parquet`);
    expect(
      await parquetReadObjects({ file: b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer }),
    ).toEqual(events(50_000, 4));
  });

  it('reads back a large multi-row-group file written to S3', async () => {
    const store = new S3ObjectStore({ client, bucket: testBucket() });
    const prefix = uniquePrefix('os-sink-big').slice(0, -1);
    const sink = new ObjectStoreSink({ store, format: 'parquet', prefix, parquet: { rowGroupSize: 2000 } });
    const rows: Row[] = Array.from({ length: 20_000 }, (_, i) => ({ id: i, text: `row ${i} `.repeat(5) }));
    const res = await sink.import(request([rows], 'append'), ctx('run-1'));
    expect(res.rowsImported).toBe(20_000);
    const chunks: Uint8Array[] = [];
    for await (const c of await store.get(`${prefix}/events/run-1/part-00000.parquet`)) chunks.push(c);
    const b = Buffer.concat(chunks);
    expect(
      await parquetReadObjects({ file: b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer }),
    ).toEqual(rows);
  });
});
