import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parquetReadObjects } from 'hyparquet';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileSystemObjectStore } from '../../src/fs/index.js';
import {
  type ImportRequest,
  type IngestionContext,
  MemoryObjectStore,
  noopLogger,
  type ObjectStore,
  type ObjectStorePointer,
  ObjectStoreSink,
  type RecordReader,
  type Row,
} from '../../src/index.js';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'os-sink-'));
});
afterEach(() => rm(root, { recursive: true, force: true }));

const ctx = (runId: string, signal = new AbortController().signal): IngestionContext => ({
  workspaceId: 'default',
  endpointId: 'api',
  unitId: 'public.orders',
  runId,
  vendor: 'test',
  signal,
  logger: noopLogger,
  emit() {},
});

function reader(rows: Row[]): RecordReader {
  return {
    async *iterBatches(chunkSize: number) {
      for (let i = 0; i < rows.length; i += chunkSize) yield rows.slice(i, i + chunkSize);
    },
  };
}

function request(slices: Row[][], disposition: ImportRequest['disposition'] = 'append'): ImportRequest {
  return {
    unitId: 'public.orders',
    reader: reader(slices.flat()),
    slices: slices.map((rows, index) => ({ index, rows: rows.length, reader: reader(rows) })),
    handles: [],
    disposition,
  };
}

async function readBytes(store: ObjectStore, key: string): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const c of await store.get(key)) chunks.push(c);
  return Buffer.concat(chunks);
}

async function readParquet(store: ObjectStore, key: string): Promise<Record<string, unknown>[]> {
  const buf = await readBytes(store, key);
  return parquetReadObjects({ file: buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer });
}

/** A store that delegates to `inner` except for `put`. */
function withPut(inner: ObjectStore, put: ObjectStore['put']): ObjectStore {
  return {
    bucket: inner.bucket,
    put,
    get: (k, o) => inner.get(k, o),
    head: (k) => inner.head(k),
    list: (p) => inner.list(p),
    delete: (k) => inner.delete(k),
  };
}

async function keys(store: ObjectStore, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(prefix)) out.push(o.key);
  return out;
}

async function pointer(store: ObjectStore, sink: ObjectStoreSink): Promise<ObjectStorePointer> {
  return JSON.parse((await readBytes(store, sink.pointerKey('public.orders'))).toString('utf8'));
}

/** What a reader following `_CURRENT` sees. */
async function currentRows(store: ObjectStore, sink: ObjectStoreSink): Promise<Record<string, unknown>[]> {
  const p = await pointer(store, sink);
  const rows: Record<string, unknown>[] = [];
  for (const run of p.runs) {
    for (const key of (await keys(store, `${run.dir}/`)).filter((k) => k.endsWith('.parquet')))
      rows.push(...(await readParquet(store, key)));
  }
  return rows;
}

const orders = (from: number, n: number): Row[] =>
  Array.from({ length: n }, (_, i) => ({
    id: BigInt(from + i),
    customer: `c-${from + i}`,
    amount: (from + i) * 1.5,
    placed_at: new Date(Date.UTC(2024, 0, 1, 0, 0, from + i)),
    paid: (from + i) % 2 === 0,
    note: (from + i) % 7 === 0 ? null : 'ok',
  }));

describe('ObjectStoreSink (parquet on the filesystem)', () => {
  it('writes one Parquet file per slice under deterministic keys, then _SUCCESS and _CURRENT', async () => {
    const store = new FileSystemObjectStore({ root });
    const sink = new ObjectStoreSink({ store, format: 'parquet', prefix: 'lake', parquet: { rowGroupSize: 7 } });
    const slices = [orders(0, 20), orders(20, 5)];
    const res = await sink.import(request(slices), ctx('run-1'));
    expect(res.rowsImported).toBe(25);
    expect(await keys(store)).toEqual([
      'lake/public.orders/_CURRENT',
      'lake/public.orders/run-1/_SUCCESS',
      'lake/public.orders/run-1/part-00000.parquet',
      'lake/public.orders/run-1/part-00001.parquet',
    ]);
    const back = await readParquet(store, 'lake/public.orders/run-1/part-00000.parquet');
    expect(back).toEqual(slices[0]);
    expect(await readParquet(store, 'lake/public.orders/run-1/part-00001.parquet')).toEqual(slices[1]);
    const success = JSON.parse((await readBytes(store, 'lake/public.orders/run-1/_SUCCESS')).toString());
    expect(success).toMatchObject({ runId: 'run-1', rows: 25, format: 'parquet' });
    expect((await pointer(store, sink)).runs.map((r) => r.runId)).toEqual(['run-1']);
  });

  it('overwrites instead of duplicating when the same run is imported again', async () => {
    const store = new FileSystemObjectStore({ root });
    const sink = new ObjectStoreSink({ store, format: 'parquet', prefix: 'lake' });
    const slices = [orders(0, 3), orders(3, 3)];
    await sink.import(request(slices), ctx('run-1'));
    const before = await keys(store);
    await sink.import(request(slices), ctx('run-1'));
    expect(await keys(store)).toEqual(before);
    expect(await currentRows(store, sink)).toEqual(slices.flat());
    expect((await pointer(store, sink)).runs).toHaveLength(1);
  });

  it('append keeps every run in the pointer; replace switches it to the new run and removes the old ones', async () => {
    const store = new MemoryObjectStore();
    const sink = new ObjectStoreSink({ store, format: 'parquet' });
    await sink.import(request([orders(0, 2)]), ctx('run-1'));
    await sink.import(request([orders(2, 2)]), ctx('run-2'));
    expect((await pointer(store, sink)).runs.map((r) => r.runId)).toEqual(['run-1', 'run-2']);
    expect(await currentRows(store, sink)).toEqual(orders(0, 4));

    await sink.import(request([orders(100, 3)], 'replace'), ctx('run-3'));
    expect((await pointer(store, sink)).runs.map((r) => r.runId)).toEqual(['run-3']);
    expect(await currentRows(store, sink)).toEqual(orders(100, 3));
    expect((await keys(store)).filter((k) => k.includes('run-1') || k.includes('run-2'))).toEqual([]);
  });

  it('a replace that fails midway leaves the pointer and the old run untouched', async () => {
    const inner = new MemoryObjectStore();
    let failOn: string | undefined;
    const store = withPut(inner, async (key, body, opts) => {
      if (failOn && key.endsWith(failOn)) throw Object.assign(new Error('disk full'), { code: 'ENOSPC' });
      return inner.put(key, body, opts);
    });
    const sink = new ObjectStoreSink({ store, format: 'parquet' });
    await sink.import(request([orders(0, 4)]), ctx('run-1'));
    failOn = 'part-00001.parquet';
    const err = await sink.import(request([orders(10, 2), orders(12, 2)], 'replace'), ctx('run-2')).catch((e) => e);
    expect(err).toMatchObject({ code: 'sink_failed' });
    expect((await pointer(inner, sink)).runs.map((r) => r.runId)).toEqual(['run-1']);
    expect(await currentRows(inner, sink)).toEqual(orders(0, 4));
  });

  it('streams a slice into the store row group by row group', async () => {
    const inner = new MemoryObjectStore();
    const chunkSizes: number[] = [];
    const store = withPut(inner, async (key, body, opts) => {
      if (!key.endsWith('.parquet') || body instanceof Uint8Array) return inner.put(key, body, opts);
      async function* spy(source: AsyncIterable<Uint8Array>) {
        for await (const c of source) {
          chunkSizes.push(c.byteLength);
          yield c;
        }
      }
      return inner.put(key, spy(body), opts);
    });
    const sink = new ObjectStoreSink({ store, format: 'parquet', parquet: { rowGroupSize: 1000 } });
    await sink.import(request([orders(0, 10_000)]), ctx('run-1'));
    expect(chunkSizes.length).toBeGreaterThanOrEqual(10);
    expect(await currentRows(inner, sink)).toHaveLength(10_000);
  });

  it('stops when the signal aborts mid-import, leaving the pointer as it was', async () => {
    const store = new MemoryObjectStore();
    const sink = new ObjectStoreSink({ store, format: 'ndjson', chunkSize: 10 });
    await sink.import(request([orders(0, 5)]), ctx('run-1'));
    const ac = new AbortController();
    const slow: RecordReader = {
      async *iterBatches() {
        for (let i = 0; i < 100; i++) {
          if (i === 3) ac.abort();
          yield orders(i * 10, 10);
        }
      },
    };
    const req: ImportRequest = {
      ...request([]),
      disposition: 'replace',
      slices: [{ index: 0, rows: 1000, reader: slow }],
    };
    await expect(sink.import(req, ctx('run-2', ac.signal))).rejects.toMatchObject({ code: 'aborted' });
    expect((await pointer(store, sink)).runs.map((r) => r.runId)).toEqual(['run-1']);
    expect((await keys(store)).filter((k) => k.includes('run-2'))).toEqual([]);
  });

  it('refuses merge with unsupported', async () => {
    const sink = new ObjectStoreSink({ store: new MemoryObjectStore(), format: 'ndjson' });
    await expect(sink.import(request([orders(0, 1)], 'merge'), ctx('run-1'))).rejects.toMatchObject({
      code: 'unsupported',
    });
  });

  it('validates its options, listing every issue', () => {
    expect(() => new ObjectStoreSink({ store: {} as ObjectStore, format: 'xml' as 'csv', prefix: '../x' })).toThrow(
      expect.objectContaining({ code: 'config_invalid', message: expect.stringMatching(/store.*format.*prefix/s) }),
    );
  });
});

describe('ObjectStoreSink (text formats)', () => {
  const rows: Row[] = [
    { id: 1n, name: 'plain', at: new Date('2024-01-02T03:04:05.000Z'), tags: ['a', 'b'], n: null },
    { id: 9007199254740993n, name: 'needs, "quotes"\nand a newline', at: null, tags: [], n: '' },
  ];

  it('writes NDJSON as plain JSON', async () => {
    const store = new MemoryObjectStore();
    const sink = new ObjectStoreSink({ store, format: 'ndjson', prefix: 'out' });
    await sink.import(request([rows]), ctx('r1'));
    const text = (await readBytes(store, 'out/public.orders/r1/part-00000.ndjson')).toString();
    expect(
      text
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ).toEqual([
      { id: 1, name: 'plain', at: '2024-01-02T03:04:05.000Z', tags: ['a', 'b'], n: null },
      { id: '9007199254740993', name: 'needs, "quotes"\nand a newline', at: null, tags: [], n: '' },
    ]);
  });

  it('writes CSV with a header, quoting, and null distinct from the empty string', async () => {
    const store = new MemoryObjectStore();
    const sink = new ObjectStoreSink({ store, format: 'csv', prefix: 'out' });
    await sink.import(request([rows]), ctx('r1'));
    const text = (await readBytes(store, 'out/public.orders/r1/part-00000.csv')).toString();
    expect(text).toBe(
      'id,name,at,tags,n\n1,plain,2024-01-02T03:04:05.000Z,"[""a"",""b""]",\n9007199254740993,"needs, ""quotes""\nand a newline",,[],""\n',
    );
  });

  it('refuses a CSV row with a column the header lacks instead of dropping it', async () => {
    const sink = new ObjectStoreSink({ store: new MemoryObjectStore(), format: 'csv', chunkSize: 1 });
    await expect(sink.import(request([[{ a: 1 }, { a: 2, b: 3 }]]), ctx('r1'))).rejects.toMatchObject({
      code: 'row_rejected',
    });
  });
});
