import { describe, expect, it } from 'vitest';
import {
  IngestError,
  MemoryObjectStore,
  type ObjectInfo,
  type ObjectStore,
  ObjectStoreStagingProvider,
  type PutOptions,
  type Row,
} from '../../../src/index.js';
import type { StagingManifest } from '../../../src/staging/manifest.js';
import { testContext } from '../../../src/testing/index.js';

async function keysOf(store: ObjectStore, prefix = ''): Promise<string[]> {
  const keys: string[] = [];
  for await (const info of store.list(prefix)) keys.push(info.key);
  return keys;
}

async function readJson(store: ObjectStore, key: string): Promise<any> {
  const chunks: Uint8Array[] = [];
  for await (const c of await store.get(key)) chunks.push(c);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

async function collect(reader: { iterBatches(n: number): AsyncIterable<Row[]> }, n = 100): Promise<Row[]> {
  const out: Row[] = [];
  for await (const b of reader.iterBatches(n)) out.push(...b);
  return out;
}

async function errorOf(p: Promise<unknown> | (() => unknown)): Promise<IngestError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    if (IngestError.is(err)) return err;
    throw err;
  }
  throw new Error('expected an IngestError');
}

describe('ObjectStoreStagingProvider layout', () => {
  it('places slices, manifest and markers under <prefix>/<workspace>/<endpoint>/<run>', async () => {
    const store = new MemoryObjectStore({ bucket: 'b1' });
    const staging = new ObjectStoreStagingProvider({ store, prefix: 'stage/area/' });
    expect(staging.id).toBe('object-store');
    const session = await staging.allocateSession(testContext({ workspaceId: 'ws', endpointId: 'pg', runId: 'r1' }));
    const w = session.writer();
    await w.writeBatch([{ a: 1 }]);
    await w.close();
    const w2 = session.writer();
    await w2.writeBatch([{ a: 2 }]);
    await w2.close();
    await session.seal();
    await session.markLanded();
    expect(await keysOf(store)).toEqual([
      'stage/area/ws/pg/r1/000000.ndjson',
      'stage/area/ws/pg/r1/000001.ndjson',
      'stage/area/ws/pg/r1/_LANDED',
      'stage/area/ws/pg/r1/_SUCCESS',
      'stage/area/ws/pg/r1/manifest.json',
    ]);
    const manifest: StagingManifest = await readJson(store, 'stage/area/ws/pg/r1/manifest.json');
    expect(manifest.ref).toMatchObject({
      provider: 'object-store',
      runId: 'r1',
      bucket: 'b1',
      runDir: 'stage/area/ws/pg/r1',
      codec: 'ndjson',
    });
    expect(manifest.sealedAt).toBeDefined();
    expect(manifest.slices.map((s) => [s.index, s.rows, s.codec])).toEqual([
      [0, 1, 'ndjson'],
      [1, 1, 'ndjson'],
    ]);
    expect(manifest.slices[0].sha256).toMatch(/^[0-9a-f]{64}$/);
    const handles = await session.handles();
    expect(handles[1]).toEqual({
      bucket: 'b1',
      key: 'stage/area/ws/pg/r1/000001.ndjson',
      contentType: 'application/x-ndjson',
      metadata: expect.objectContaining({ rows: '1', codec: 'ndjson', sha256: manifest.slices[1].sha256 }),
    });
  });

  it('keeps hostile ids inside one key segment each', async () => {
    const store = new MemoryObjectStore();
    const staging = new ObjectStoreStagingProvider({ store });
    for (const [workspaceId, endpointId, runId] of [
      ['..', '.', '../../etc'],
      ['a/b', 'c\\d', 'e%2Ff'],
      ['ws', 'ü😀 x', '\u0000\n'],
    ]) {
      const session = await staging.allocateSession(testContext({ workspaceId, endpointId, runId }));
      const segments = String(session.ref.runDir).split('/');
      expect(segments).toHaveLength(4);
      expect(segments[0]).toBe('ingestion');
      for (const s of segments) expect(['.', '..', '']).not.toContain(s);
      const again = await staging.openSession(JSON.parse(JSON.stringify(session.ref)));
      expect(again.id).toBe(session.id);
    }
    // Distinct ids never share a directory.
    const a = await staging.allocateSession(testContext({ runId: 'a/b' }));
    const b = await staging.allocateSession(testContext({ runId: 'a%2Fb' }));
    expect(a.ref.runDir).not.toBe(b.ref.runDir);
  });

  it('validates options and refuses refs of other places', async () => {
    const store = new MemoryObjectStore();
    expect(await errorOf(() => new ObjectStoreStagingProvider({ store, prefix: '../x' }))).toMatchObject({
      code: 'config_invalid',
    });
    expect(
      await errorOf(() => new ObjectStoreStagingProvider({ store: {} as never, codec: 'csv' as never })),
    ).toMatchObject({
      code: 'config_invalid',
      message: expect.stringMatching(/store[\s\S]*codec/),
    });
    const staging = new ObjectStoreStagingProvider({ store });
    const session = await staging.allocateSession(testContext());
    const other = new ObjectStoreStagingProvider({ store, prefix: 'elsewhere' });
    expect(await errorOf(other.openSession(session.ref))).toMatchObject({ code: 'config_invalid' });
    expect(await errorOf(staging.openSession({ ...session.ref, provider: 'memory' }))).toMatchObject({
      code: 'config_invalid',
    });
    expect(
      await errorOf(staging.openSession({ ...session.ref, runDir: 'ingestion/x/y/z', runId: 'zz' })),
    ).toMatchObject({
      code: 'config_invalid',
    });
    expect(await errorOf(staging.allocateSession(testContext({ runId: '' })))).toMatchObject({
      code: 'config_invalid',
    });
  });
});

describe('ObjectStoreStagingProvider sessions', () => {
  it('writes an initial manifest on allocation, and reopens the same run from it', async () => {
    const store = new MemoryObjectStore();
    const staging = new ObjectStoreStagingProvider({ store });
    const ctx = testContext({ sinkId: 'sink-1', vendor: 'postgres' });
    const session = await staging.allocateSession(ctx);
    const manifest: StagingManifest = await readJson(store, `${session.ref.runDir}/manifest.json`);
    expect(manifest.slices).toEqual([]);
    expect(manifest.ref).toMatchObject({ sinkId: 'sink-1', vendor: 'postgres', unitId: ctx.unitId });
    expect(
      await errorOf(staging.openSession({ ...session.ref, runId: 'other', runDir: undefined as never })),
    ).toMatchObject({
      code: 'config_invalid',
    });
  });

  it('keeps every slice when writers of several sessions of one run close concurrently', async () => {
    const store = new MemoryObjectStore();
    const staging = new ObjectStoreStagingProvider({ store });
    const ctx = testContext();
    const s1 = await staging.allocateSession(ctx);
    const s2 = await staging.openSession(s1.ref);
    const writers = Array.from({ length: 12 }, (_, i) => (i % 2 ? s1 : s2).writer({ slice: i }));
    await Promise.all(writers.map(async (w, i) => w.writeBatch([{ i }])));
    await Promise.all(writers.map((w) => w.close()));
    expect((await s1.describe()).slices.map((s) => s.index)).toEqual(Array.from({ length: 12 }, (_, i) => i));
    expect(await collect(s2.reader())).toEqual(Array.from({ length: 12 }, (_, i) => ({ i })));
  });

  it('says which session is sealed, and which writer is closed or aborted', async () => {
    const staging = new ObjectStoreStagingProvider({ store: new MemoryObjectStore() });
    const session = await staging.allocateSession(testContext());
    const w = session.writer({ slice: 0 });
    await w.writeBatch([{ a: 1 }]);
    await w.close();
    await w.close(); // idempotent
    expect((await errorOf(w.writeBatch([{ a: 2 }]))).message).toMatch(/slice 0 .*already closed/);
    const aborted = session.writer({ slice: 1 });
    await aborted.writeBatch([{ a: 1 }]);
    await aborted.abort?.();
    await aborted.abort?.();
    expect((await errorOf(aborted.close())).message).toMatch(/aborted/);
    const open = session.writer({ slice: 2 });
    await open.writeBatch([{ a: 1 }]);
    expect(await errorOf(session.seal())).toMatchObject({
      code: 'staging_failed',
      message: expect.stringContaining('2'),
    });
    await open.close();
    await session.seal();
    const late = await errorOf(() => session.writer());
    expect(late.code).toBe('staging_failed');
    expect(late.message).toContain(session.id);
    expect(late.message).toContain('sealed');
    await session.close();
    await session.close();
    expect((await errorOf(() => session.reader())).message).toMatch(/closed/);
  });

  it('aborts a writer through its signal and records nothing', async () => {
    const store = new MemoryObjectStore();
    const staging = new ObjectStoreStagingProvider({ store });
    const session = await staging.allocateSession(testContext());
    const ac = new AbortController();
    const w = session.writer({ slice: 0, signal: ac.signal });
    await w.writeBatch([{ a: 1 }]);
    ac.abort();
    expect(await errorOf(w.writeBatch([{ a: 2 }]))).toMatchObject({ code: 'aborted' });
    expect((await session.describe()).slices).toEqual([]);
    expect((await keysOf(store)).filter((k) => k.endsWith('.ndjson'))).toEqual([]);
  });

  it('records nothing for a writer aborted while it closes', async () => {
    const staging = new ObjectStoreStagingProvider({ store: new MemoryObjectStore() });
    const session = await staging.allocateSession(testContext());
    const w = session.writer({ slice: 0 });
    await w.writeBatch([{ a: 1 }]);
    const closing = w.close();
    await w.abort?.();
    expect(await errorOf(closing)).toMatchObject({ code: 'aborted' });
    await session.seal();
    expect((await session.describe()).slices).toEqual([]);
  });

  it('stops reading within a batch when the reader signal aborts', async () => {
    const staging = new ObjectStoreStagingProvider({ store: new MemoryObjectStore() });
    const session = await staging.allocateSession(testContext());
    const w = session.writer({ slice: 0 });
    await w.writeBatch(Array.from({ length: 5000 }, (_, i) => ({ i, pad: 'x'.repeat(100) })));
    await w.close();
    const ac = new AbortController();
    let seen = 0;
    const err = await errorOf(
      (async () => {
        for await (const b of session.reader({ signal: ac.signal }).iterBatches(100)) {
          seen += b.length;
          ac.abort();
        }
      })(),
    );
    expect(err.code).toBe('aborted');
    expect(seen).toBeLessThan(5000);
  });

  it('streams with backpressure: writeBatch waits for the store, and memory holds about one batch', async () => {
    let pulled = 0;
    let release: (() => void) | undefined;
    // A store whose put consumes the body slowly (one chunk per release).
    const inner = new MemoryObjectStore();
    const slow: ObjectStore = {
      bucket: inner.bucket,
      get: (k, o) => inner.get(k, o),
      head: (k) => inner.head(k),
      list: (p) => inner.list(p),
      delete: (k) => inner.delete(k),
      async put(key: string, body: Uint8Array | AsyncIterable<Uint8Array>, opts?: PutOptions): Promise<ObjectInfo> {
        if (body instanceof Uint8Array || !key.endsWith('.ndjson')) return inner.put(key, body, opts);
        const chunks: Uint8Array[] = [];
        for await (const c of body) {
          pulled++;
          chunks.push(c);
          await new Promise<void>((r) => {
            release = r;
          });
        }
        return inner.put(key, Buffer.concat(chunks), opts);
      },
    };
    const staging = new ObjectStoreStagingProvider({ store: slow });
    const session = await staging.allocateSession(testContext());
    const w = session.writer({ slice: 0 });
    let done = false;
    const first = w.writeBatch([{ a: 1 }]).then(() => {
      done = true;
    });
    await new Promise((r) => setTimeout(r, 30));
    expect(pulled).toBe(1);
    expect(done).toBe(false); // the store has not asked for more yet
    release?.();
    await first;
    expect(done).toBe(true);
    const closing = w.close();
    await new Promise((r) => setTimeout(r, 10));
    release?.();
    await closing;
    expect(await collect(session.reader())).toEqual([{ a: 1 }]);
  });

  it('deletes objects of crashed writers when sealing, and everything on destroy', async () => {
    const store = new MemoryObjectStore();
    const staging = new ObjectStoreStagingProvider({ store });
    const session = await staging.allocateSession(testContext());
    const w = session.writer({ slice: 0 });
    await w.writeBatch([{ a: 1 }]);
    await w.close();
    // A writer in another process put its object and died before the manifest update.
    await store.put(`${session.ref.runDir}/000001.ndjson`, Buffer.from('{"a":2}\n'));
    await session.seal();
    expect(await collect(session.reader())).toEqual([{ a: 1 }]);
    expect(await keysOf(store, `${session.ref.runDir}/`)).not.toContain(`${session.ref.runDir}/000001.ndjson`);
    await session.destroy();
    expect(await keysOf(store)).toEqual([]);
    expect(await errorOf(staging.openSession(session.ref))).toMatchObject({ code: 'not_found' });
  });

  it('reads a slice written with another built-in codec, and names the codec it cannot read', async () => {
    const store = new MemoryObjectStore();
    const gz = new ObjectStoreStagingProvider({ store, codec: 'ndjson.gz' });
    const session = await gz.allocateSession(testContext());
    const w = session.writer();
    await w.writeBatch([{ z: 1n }]);
    await w.close();
    await session.seal();
    const plain = new ObjectStoreStagingProvider({ store });
    expect(await collect((await plain.openSession(session.ref)).reader())).toEqual([{ z: 1n }]);
    const custom = new ObjectStoreStagingProvider({
      store,
      codec: {
        id: 'custom',
        contentType: 'text/plain',
        extension: '.txt',
        encode: async function* (batches) {
          for await (const b of batches) yield Buffer.from(`${b.length}\n`);
        },
        decode: async function* () {},
      },
    });
    const s2 = await custom.allocateSession(testContext());
    const cw = s2.writer();
    await cw.writeBatch([{ a: 1 }]);
    await cw.close();
    expect(await errorOf(collect((await plain.openSession(s2.ref)).reader()))).toMatchObject({
      message: expect.stringContaining('custom'),
    });
  });
});

describe('ObjectStoreStagingProvider with a misbehaving codec', () => {
  it('fails the writer instead of hanging when the codec stops taking rows', async () => {
    const staging = new ObjectStoreStagingProvider({
      store: new MemoryObjectStore(),
      codec: {
        id: 'lazy',
        contentType: 'text/plain',
        extension: '.txt',
        encode: async function* () {},
        decode: async function* () {},
      },
    });
    const session = await staging.allocateSession(testContext());
    const w = session.writer();
    expect(await errorOf(w.writeBatch([{ a: 1 }]))).toMatchObject({
      code: 'staging_failed',
      message: expect.stringContaining('lazy'),
    });
    expect((await session.describe()).slices).toEqual([]);
  });
});

describe('ObjectStoreStagingProvider.sweep', () => {
  it('deletes landed runs past the TTL and abandoned ones past the longer TTL, unless kept', async () => {
    const store = new MemoryObjectStore();
    const staging = new ObjectStoreStagingProvider({ store });
    const landed = await staging.allocateSession(testContext({ runId: 'landed' }));
    await landed.seal();
    await landed.markLanded();
    const abandoned = await staging.allocateSession(testContext({ runId: 'abandoned' }));
    const w = abandoned.writer();
    await w.writeBatch([{ a: 1 }]);
    await w.close();
    const kept = await staging.allocateSession(testContext({ runId: 'kept' }));
    await kept.seal();
    await kept.markLanded();
    await new Promise((r) => setTimeout(r, 30));

    const young = await staging.sweep({ olderThanMs: 60_000 });
    expect(young).toMatchObject({ sessionsScanned: 3, sessionsDeleted: 0, sessionsKept: 3 });

    const seen: string[] = [];
    const first = await staging.sweep({
      olderThanMs: 10,
      abandonedAfterMs: 60_000,
      keep: (ref) => {
        seen.push(ref.runId);
        return ref.runId === 'kept';
      },
    });
    expect(first.deleted.map((r) => r.runId)).toEqual(['landed']);
    expect(seen.sort()).toEqual(['kept', 'landed']);
    expect(first.objectsDeleted).toBe(3);

    const second = await staging.sweep({ olderThanMs: 10, abandonedAfterMs: 20, keep: (ref) => ref.runId === 'kept' });
    expect(second.deleted.map((r) => r.runId)).toEqual(['abandoned']);
    expect(second.deleted[0]).toMatchObject({ unitId: abandoned.ref.unitId, workspaceId: 'test' });
    expect(await keysOf(store)).toEqual(expect.arrayContaining([`${kept.ref.runDir}/_LANDED`]));
    expect((await keysOf(store)).some((k) => k.includes('/abandoned/'))).toBe(false);
  });

  it('stops on its signal', async () => {
    const staging = new ObjectStoreStagingProvider({ store: new MemoryObjectStore() });
    await staging.allocateSession(testContext());
    const ac = new AbortController();
    ac.abort();
    expect(await errorOf(staging.sweep({ olderThanMs: 0, signal: ac.signal }))).toMatchObject({ code: 'aborted' });
  });
});
