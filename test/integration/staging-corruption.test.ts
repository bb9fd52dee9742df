import { existsSync, mkdtempSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { arrowCodec } from '../../src/arrow/index.js';
import { FileSystemObjectStore } from '../../src/fs/index.js';
import {
  checkpointKey,
  exportUnit,
  IngestError,
  importUnit,
  MemoryKvStore,
  type ObjectStore,
  ObjectStoreStagingProvider,
  type RecordCodec,
  type Row,
  type StagingSession,
} from '../../src/index.js';
import { S3ObjectStore } from '../../src/s3/index.js';
import { MemorySink, MemorySource, testContext } from '../../src/testing/index.js';
import { createTestS3Client, testBucket, uniquePrefix } from '../helpers/s3.js';

const tempRoot = mkdtempSync(join(tmpdir(), 'nucleus-corruption-'));
afterAll(() => rmSync(tempRoot, { recursive: true, force: true }));

const ROWS_PER_SLICE = 50;
const SLICES = 3;

async function bytesOf(store: ObjectStore, key: string): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const c of await store.get(key)) chunks.push(c);
  return Buffer.concat(chunks);
}

/** Three sealed slices of 50 rows: ids 0..149. */
async function stage(provider: ObjectStoreStagingProvider): Promise<{ session: StagingSession; keys: string[] }> {
  const session = await provider.allocateSession(testContext());
  for (let s = 0; s < SLICES; s++) {
    const w = session.writer({ slice: s });
    const rows = Array.from({ length: ROWS_PER_SLICE }, (_, i) => {
      const id = s * ROWS_PER_SLICE + i;
      return { id: BigInt(id), label: `row ${String(id).padStart(3, '0')}`, at: new Date(id * 1000) };
    });
    await w.writeBatch(rows);
    await w.close();
  }
  await session.seal();
  return { session, keys: (await session.handles()).map((h) => h.key) };
}

/** Read everything; report the rows handed out before the reader failed, and how it failed. */
async function consume(session: StagingSession, chunkSize: number, slice?: number) {
  const rows: Row[] = [];
  let error: unknown;
  try {
    for await (const batch of session.reader(slice === undefined ? {} : { slice }).iterBatches(chunkSize))
      rows.push(...batch);
  } catch (err) {
    error = err;
  }
  return { rows, error, ids: rows.map((r) => Number(r.id)) };
}

function expectCorrupt(error: unknown, session: StagingSession, slice?: number) {
  expect(IngestError.is(error, 'staging_corrupt'), `expected staging_corrupt, got ${String(error)}`).toBe(true);
  const message = (error as Error).message;
  expect(message).toContain(session.id);
  if (slice !== undefined) expect(message).toContain(`slice ${slice}`);
}

const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

type StoreFactory = () => ObjectStore;
const stores: Array<[string, StoreFactory]> = [
  ['FileSystemObjectStore', () => new FileSystemObjectStore({ root: mkdtempSync(join(tempRoot, 'fs-')) })],
  ['S3ObjectStore', () => new S3ObjectStore({ client: createTestS3Client(), bucket: testBucket() })],
];

for (const [storeName, makeStore] of stores) {
  describe(`staging corruption on ${storeName} (ndjson)`, () => {
    const provider = () =>
      new ObjectStoreStagingProvider({ store: makeStore(), prefix: uniquePrefix('corrupt').slice(0, -1) });

    it('reads an intact session completely', async () => {
      const { session } = await stage(provider());
      const { ids, error } = await consume(session, 100);
      expect(error).toBeUndefined();
      expect(ids).toEqual(range(0, 150));
    });

    it('truncation at a record boundary: the size check stops the slice before any of its rows', async () => {
      const p = provider();
      const { session, keys } = await stage(p);
      const bytes = await bytesOf(p.store, keys[1]);
      const cut = bytes.subarray(0, bytes.lastIndexOf(10, bytes.length - 2) + 1); // drop the last line
      await p.store.put(keys[1], cut);
      const { ids, error } = await consume(session, 100);
      expectCorrupt(error, session, 1);
      expect((error as Error).message).toMatch(/bytes/);
      expect(ids).toEqual(range(0, 50)); // slice 0 only, nothing of slice 1
    });

    it('truncation with a manifest forged to the new size: sha256 and row count stop it', async () => {
      const p = provider();
      const { session, keys } = await stage(p);
      const bytes = await bytesOf(p.store, keys[1]);
      const cut = bytes.subarray(0, bytes.lastIndexOf(10, bytes.length - 2) + 1);
      await p.store.put(keys[1], cut);
      const manifestKey = `${session.ref.runDir}/manifest.json`;
      const manifest = JSON.parse((await bytesOf(p.store, manifestKey)).toString());
      manifest.slices[1].bytes = cut.byteLength;
      await p.store.put(manifestKey, Buffer.from(JSON.stringify(manifest)));
      // Small chunks: the slice streams, but its last rows are held back until it is verified.
      const { ids, error } = await consume(session, 10);
      expectCorrupt(error, session, 1);
      expect(ids.filter((id) => id >= 50 && id < 100).length).toBeLessThan(49);
      expect(ids).not.toContain(98);
      expect(ids.some((id) => id >= 100)).toBe(false);
      // One slice alone, chunk larger than the slice: not a single row.
      const one = await consume(session, 1000, 1);
      expectCorrupt(one.error, session, 1);
      expect(one.rows).toEqual([]);
    });

    it('a flipped byte inside a value (same size, still valid JSON) fails on the checksum', async () => {
      const p = provider();
      const { session, keys } = await stage(p);
      const bytes = Buffer.from(await bytesOf(p.store, keys[2]));
      const at = bytes.indexOf('row 120');
      bytes[at + 6] = '9'.charCodeAt(0); // "row 120" → "row 129"
      await p.store.put(keys[2], bytes);
      const { ids, error } = await consume(session, 100);
      expectCorrupt(error, session, 2);
      expect((error as Error).message).toMatch(/sha256/);
      expect(ids).toEqual(range(0, 100));
    });

    it('a flipped byte that breaks the JSON fails as staging_corrupt too', async () => {
      const p = provider();
      const { session, keys } = await stage(p);
      const bytes = Buffer.from(await bytesOf(p.store, keys[0]));
      bytes[5] ^= 0xff;
      await p.store.put(keys[0], bytes);
      const { ids, error } = await consume(session, 100);
      expectCorrupt(error, session, 0);
      expect(ids).toEqual([]);
    });

    it('a dropped slice is staging_corrupt, naming it', async () => {
      const p = provider();
      const { session, keys } = await stage(p);
      await p.store.delete([keys[1]]);
      const { ids, error } = await consume(session, 100);
      expectCorrupt(error, session, 1);
      expect((error as Error).message).toMatch(/missing/);
      expect(ids).toEqual(range(0, 50));
    });

    it('an added slice is staging_corrupt before any row', async () => {
      const p = provider();
      const { session, keys } = await stage(p);
      await p.store.put(`${session.ref.runDir}/000003.ndjson`, await bytesOf(p.store, keys[0]));
      const { ids, error } = await consume(session, 100);
      expectCorrupt(error, session);
      expect((error as Error).message).toContain('000003.ndjson');
      expect(ids).toEqual([]);
    });

    it('a manifest that is not JSON, fails its schema, or disagrees is staging_corrupt', async () => {
      const p = provider();
      const { session } = await stage(p);
      const manifestKey = `${session.ref.runDir}/manifest.json`;
      const good = (await bytesOf(p.store, manifestKey)).toString();

      await p.store.put(manifestKey, Buffer.from(good.slice(0, good.length / 2)));
      expectCorrupt((await consume(session, 100)).error, session);
      expect(IngestError.is(await p.openSession(session.ref).catch((e) => e), 'staging_corrupt')).toBe(true);

      const negative = JSON.parse(good);
      negative.slices[0].rows = -1;
      await p.store.put(manifestKey, Buffer.from(JSON.stringify(negative)));
      expectCorrupt((await consume(session, 100)).error, session);

      const moreRows = JSON.parse(good);
      moreRows.slices[2].rows += 1;
      await p.store.put(manifestKey, Buffer.from(JSON.stringify(moreRows)));
      const short = await consume(session, 100);
      expectCorrupt(short.error, session, 2);
      expect(short.ids).toEqual(range(0, 100));

      const fewerRows = JSON.parse(good);
      fewerRows.slices[0].rows -= 1;
      await p.store.put(manifestKey, Buffer.from(JSON.stringify(fewerRows)));
      const long = await consume(session, 100);
      expectCorrupt(long.error, session, 0);
      expect(long.ids).toEqual([]);

      const otherRun = JSON.parse(good);
      otherRun.ref.runId = 'someone-else';
      await p.store.put(manifestKey, Buffer.from(JSON.stringify(otherRun)));
      expectCorrupt((await consume(session, 100)).error, session);

      await p.store.put(manifestKey, Buffer.from(good));
      expect((await consume(session, 100)).ids).toEqual(range(0, 150));
    });

    it('markers without a manifest are staging_corrupt, for a live and for a reopened session', async () => {
      const p = provider();
      const { session } = await stage(p);
      await p.store.delete([`${session.ref.runDir}/manifest.json`]);
      const { ids, error } = await consume(session, 100);
      expectCorrupt(error, session);
      expect(ids).toEqual([]);
      const reopened = await p.openSession(session.ref).catch((e) => e);
      expect(IngestError.is(reopened, 'staging_corrupt')).toBe(true);
    });
  });
}

describe('staging corruption: raw file damage and other codecs', () => {
  it('a slice file truncated on disk at a record boundary is caught', async () => {
    const root = mkdtempSync(join(tempRoot, 'raw-'));
    const p = new ObjectStoreStagingProvider({ store: new FileSystemObjectStore({ root }) });
    const { session, keys } = await stage(p);
    const path = join(root, ...keys[2].split('/'));
    expect(existsSync(path)).toBe(true);
    const bytes = await bytesOf(p.store, keys[2]);
    truncateSync(path, bytes.lastIndexOf(10, bytes.length - 2) + 1);
    const { ids, error } = await consume(session, 100);
    expectCorrupt(error, session, 2);
    expect(ids).toEqual(range(0, 100));
  });

  const codecs: Array<[string, () => RecordCodec | 'ndjson.gz']> = [
    ['ndjson.gz', () => 'ndjson.gz'],
    ['arrow', () => arrowCodec()],
  ];
  for (const [name, codec] of codecs) {
    it(`${name}: a flipped byte anywhere in a slice is caught`, async () => {
      for (const offset of [0.1, 0.5, 0.95]) {
        const p = new ObjectStoreStagingProvider({
          store: new FileSystemObjectStore({ root: mkdtempSync(join(tempRoot, 'c-')) }),
          codec: codec(),
        });
        const { session, keys } = await stage(p);
        const bytes = Buffer.from(await bytesOf(p.store, keys[1]));
        bytes[Math.floor(bytes.length * offset)] ^= 0x01;
        await p.store.put(keys[1], bytes);
        const { ids, error } = await consume(session, 100);
        expectCorrupt(error, session, 1);
        expect(ids).toEqual(range(0, 50));
      }
    });
  }
});

describe('staging corruption through the pipeline', () => {
  it('importUnit fails with staging_corrupt, the sink commits nothing and the checkpoint stays', async () => {
    const store = new FileSystemObjectStore({ root: mkdtempSync(join(tempRoot, 'pipe-')) });
    const staging = new ObjectStoreStagingProvider({ store });
    const kv = new MemoryKvStore();
    const rows = Array.from({ length: 300 }, (_, i) => ({ id: BigInt(i + 1), name: `n${i}` }));
    const source = new MemorySource({ units: { items: { rows, cursorField: 'id' } } });
    const unit = { endpointId: 'src', unitId: 'items', sinkId: 'mem' };
    const exported = await exportUnit({ source, staging, kv, unit, policy: { sliceMaxRows: 100 } });
    expect(exported.stagingHandles.length).toBeGreaterThanOrEqual(3);
    // Damage the last slice, keeping its size.
    const last = exported.stagingHandles.at(-1)!;
    const bytes = Buffer.from(await bytesOf(store, last.key));
    bytes[bytes.length - 10] = bytes[bytes.length - 10] === 0x31 ? 0x32 : 0x31;
    await store.put(last.key, bytes);

    const sink = new MemorySink();
    const before = await kv.get(checkpointKey({ vendor: 'default', ...unit }));
    const err = await importUnit({ sink, staging, kv, unit, sessionRef: exported.sessionRef }).catch((e) => e);
    expect(IngestError.is(err, 'staging_corrupt')).toBe(true);
    const after = await kv.get(checkpointKey({ vendor: 'default', ...unit }));
    expect(after?.value ?? null).toEqual(before?.value ?? null);
    // The memory sink commits per slice: intact slices may land, the damaged one never does.
    const landed = sink.rows('items').map((r) => Number(r.id));
    expect(landed.length).toBeLessThan(300);
    expect(landed).not.toContain(300);
  });
});
