import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileSystemObjectStore } from '../../src/fs/index.js';
import {
  type ImportRequest,
  IngestError,
  type IngestionContext,
  MemoryKvStore,
  MemoryStagingProvider,
  noopLogger,
  type ObjectStore,
  type ObjectStorePointer,
  ObjectStoreSink,
  type Row,
  runUnit,
} from '../../src/index.js';
import { MemorySource } from '../../src/testing/index.js';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'os-pointer-'));
});
afterEach(() => rm(root, { recursive: true, force: true }));

const ctx = (runId: string, fencingToken?: number): IngestionContext => ({
  workspaceId: 'default',
  endpointId: 'api',
  unitId: 'orders',
  runId,
  vendor: 'test',
  signal: new AbortController().signal,
  logger: noopLogger,
  emit() {},
  ...(fencingToken !== undefined ? { fencingToken } : {}),
});

function request(rows: Row[], disposition: ImportRequest['disposition'] = 'append'): ImportRequest {
  const reader = {
    async *iterBatches() {
      yield rows;
    },
  };
  return {
    unitId: 'orders',
    reader,
    slices: [{ index: 0, rows: rows.length, reader }],
    handles: [],
    disposition,
  };
}

async function readPointer(store: ObjectStore, sink: ObjectStoreSink): Promise<ObjectStorePointer> {
  const chunks: Uint8Array[] = [];
  for await (const c of await store.get(sink.pointerKey('orders'))) chunks.push(c);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

describe('ObjectStoreSink _CURRENT pointer (ADR 0017)', () => {
  it('is fenced: the token is stored, and a paused older holder never drops a newer run from it', async () => {
    const store = new FileSystemObjectStore({ root });
    const sink = new ObjectStoreSink({ store, format: 'ndjson', prefix: 'lake' });
    await sink.import(request([{ id: 1 }]), ctx('run-a', 5));
    expect(await readPointer(store, sink)).toMatchObject({ version: 2, fencingToken: 5 });
    // the lease expired, a newer holder (token 6) ran the unit
    await sink.import(request([{ id: 2 }]), ctx('run-b', 6));
    // the old holder (token 5) wakes up and switches the pointer with its run
    const err = await sink.import(request([{ id: 3 }]), ctx('run-c', 5)).catch((e) => e);
    expect(IngestError.is(err, 'lease_lost')).toBe(true);
    expect(err.message).toMatch(/token 6 > 5/);
    const p = await readPointer(store, sink);
    expect(p.fencingToken).toBe(6);
    expect(p.runs.map((r) => r.runId)).toEqual(['run-a', 'run-b']);
    // the same holder again, or a newer one, may write
    await sink.import(request([{ id: 4 }]), ctx('run-d', 6));
    await sink.import(request([{ id: 5 }]), ctx('run-e', 9));
    expect((await readPointer(store, sink)).runs.map((r) => r.runId)).toEqual(['run-a', 'run-b', 'run-d', 'run-e']);
    // replace is fenced as well
    const stale = await sink.import(request([{ id: 6 }], 'replace'), ctx('run-f', 8)).catch((e) => e);
    expect(IngestError.is(stale, 'lease_lost')).toBe(true);
    expect((await readPointer(store, sink)).runs).toHaveLength(4);
  });

  it('a pointer written before (version 1, no token) is read and upgraded', async () => {
    const store = new FileSystemObjectStore({ root });
    const sink = new ObjectStoreSink({ store, format: 'ndjson', prefix: 'lake' });
    const v1 = {
      version: 1,
      unitId: 'orders',
      format: 'ndjson',
      runs: [{ runId: 'old', dir: 'lake/orders/old', rows: 1, files: 1, at: '2026-01-01T00:00:00.000Z' }],
      updatedAt: '2026-01-01T00:00:00.000Z',
    };
    await store.put(sink.pointerKey('orders'), new TextEncoder().encode(JSON.stringify(v1)));
    await sink.import(request([{ id: 1 }]), ctx('new', 3));
    const p = await readPointer(store, sink);
    expect(p).toMatchObject({ version: 2, fencingToken: 3, history: null });
    expect(p.runs.map((r) => r.runId)).toEqual(['old', 'new']);
  });

  it('stays bounded in append mode: 250 runs, at most pointerMaxRuns entries, every run still listed once', async () => {
    const store = new FileSystemObjectStore({ root });
    const sink = new ObjectStoreSink({ store, format: 'ndjson', prefix: 'lake', pointerMaxRuns: 20 });
    const sizes: number[] = [];
    for (let i = 1; i <= 250; i++) {
      await sink.import(request([{ id: i }]), ctx(`run-${String(i).padStart(4, '0')}`, i));
      sizes.push((await store.head(sink.pointerKey('orders')))!.size);
    }
    const p = await readPointer(store, sink);
    expect(p.runs.length).toBeLessThanOrEqual(20);
    expect(p.history).toMatchObject({ runs: 250 - p.runs.length, rows: 250 - p.runs.length });
    expect(Math.max(...sizes.slice(50))).toBeLessThan(2 * Math.max(...sizes.slice(0, 25)));
    const all = await sink.currentRuns('orders');
    expect(all.map((r) => r.runId)).toEqual(
      Array.from({ length: 250 }, (_, i) => `run-${String(i + 1).padStart(4, '0')}`),
    );
    // a re-import of the newest run (a retry after the switch) does not list it twice
    await sink.import(request([{ id: 250 }]), ctx('run-0250', 250));
    expect((await sink.currentRuns('orders')).length).toBe(250);
    // replace drops the history with the old runs
    await sink.import(request([{ id: 1 }], 'replace'), ctx('run-r', 251));
    expect((await sink.currentRuns('orders')).map((r) => r.runId)).toEqual(['run-r']);
    const left: string[] = [];
    for await (const o of store.list('lake/orders/_HISTORY/')) left.push(o.key);
    expect(left).toEqual([]);
  });

  it('runUnit hands the lease token to the sink: the pointer records it', async () => {
    const store = new FileSystemObjectStore({ root });
    const sink = new ObjectStoreSink({ store, format: 'ndjson', prefix: 'lake' });
    const kv = new MemoryKvStore();
    const source = new MemorySource({ units: { orders: { rows: [{ id: 1 }, { id: 2 }], cursorField: 'id' } } });
    const opts = {
      source,
      sink,
      staging: new MemoryStagingProvider(),
      kv,
      unit: { endpointId: 'e', unitId: 'orders' },
    };
    await runUnit(opts);
    const first = (await readPointer(store, sink)).fencingToken;
    expect(first).toEqual(expect.any(Number));
    source.setRows('orders', [{ id: 1 }, { id: 2 }, { id: 3 }]);
    await runUnit(opts);
    expect((await readPointer(store, sink)).fencingToken).toBeGreaterThan(first!);
  });
});
