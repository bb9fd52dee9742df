/**
 * Issue 10 item 9: staging writes are fenced with the unit lease's token. A holder paused past its lease cannot
 * change the manifest (finish a slice, seal, destroy) after the new holder claimed the session, and a session
 * whose manifest is not the plan is never sealed (nothing is deleted).
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileSystemObjectStore } from '../../../src/fs/index.js';
import {
  checkpointKey,
  IngestError,
  type Json,
  type KvKey,
  type KvPutOptions,
  type KvStore,
  MemoryKvStore,
  MemoryObjectStore,
  MemoryStagingProvider,
  ObjectStoreStagingProvider,
  type Row,
  runUnit,
  type StagingProvider,
  type StagingSession,
} from '../../../src/index.js';
import { MemorySink, MemorySource, testContext } from '../../../src/testing/index.js';

const rowsOf = (from: number, to: number): Row[] =>
  Array.from({ length: to - from + 1 }, (_, i) => ({ id: BigInt(from + i), name: `user ${from + i}` }));
const ids = (rows: Row[]) => rows.map((r) => Number(r.id)).sort((a, b) => a - b);
const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

const providers: Array<[string, () => Promise<StagingProvider>]> = [
  ['MemoryStagingProvider', async () => new MemoryStagingProvider()],
  ['ObjectStore × memory', async () => new ObjectStoreStagingProvider({ store: new MemoryObjectStore() })],
  [
    'ObjectStore × filesystem',
    async () =>
      new ObjectStoreStagingProvider({
        store: new FileSystemObjectStore({ root: await mkdtemp(join(tmpdir(), 'fence-')) }),
      }),
  ],
];

async function writeSlice(session: StagingSession, slice: number, rows: Row[]): Promise<void> {
  const w = session.writer({ slice });
  await w.writeBatch(rows);
  await w.close();
}

const isLeaseLost = (e: unknown) => IngestError.is(e, 'lease_lost');

describe.each(providers)('fencing of %s', (_name, make) => {
  it('a stale holder cannot finish a slice, seal, destroy or re-claim after a newer holder claimed the session', async () => {
    const staging = await make();
    const ctx = testContext({ runId: 'run-fenced', unitId: 'users' });
    const stale = await staging.allocateSession(ctx);
    await stale.fence!(5);
    await writeSlice(stale, 0, rowsOf(1, 10));
    const staleWriter = stale.writer({ slice: 1 });
    await staleWriter.writeBatch(rowsOf(11, 20));

    // The new holder (higher lease version) reopens the session and claims it.
    const fresh = await staging.openSession(stale.ref);
    await fresh.fence!(9);

    await expect(staleWriter.close()).rejects.toSatisfy(isLeaseLost);
    await expect(stale.seal()).rejects.toSatisfy(isLeaseLost);
    await expect(stale.destroy()).rejects.toSatisfy(isLeaseLost);
    await expect(stale.fence!(7)).rejects.toSatisfy(isLeaseLost);

    // The new holder's view is intact: slice 0 only; it finishes the plan and seals.
    expect((await fresh.describe()).slices.map((s) => s.index)).toEqual([0]);
    await writeSlice(fresh, 1, rowsOf(11, 20));
    await fresh.seal({ expectedSlices: [0, 1] });
    const rows: Row[] = [];
    for await (const b of fresh.reader().iterBatches(100)) rows.push(...b);
    expect(ids(rows)).toEqual(range(1, 20));
    // Re-claiming with the same token is fine (a retry of the same holder).
    await fresh.fence!(9);
  });

  it('refuses to seal when the manifest is not the plan, and deletes nothing', async () => {
    const staging = await make();
    const session = await staging.allocateSession(testContext({ runId: 'run-plan', unitId: 'users' }));
    await session.fence!(3);
    await writeSlice(session, 0, rowsOf(1, 5));
    await writeSlice(session, 2, rowsOf(6, 9));
    for (const expected of [[0, 1, 2], [0], [0, 1]]) {
      const err = await session.seal({ expectedSlices: expected }).catch((e) => e);
      expect(IngestError.is(err, 'staging_conflict'), String(err)).toBe(true);
      expect(err.retryable).toBe(true);
      expect(err.details).toMatchObject({ have: [0, 2], want: expected });
    }
    const desc = await session.describe();
    expect(desc.sealed).toBe(false);
    expect(desc.slices.map((s) => s.index)).toEqual([0, 2]);
    await session.seal({ expectedSlices: [2, 0] });
    expect((await session.describe()).sealed).toBe(true);
  });

  it('sessions used without a token (outside a leased run) are not fenced', async () => {
    const staging = await make();
    const a = await staging.allocateSession(testContext({ runId: 'run-free', unitId: 'users' }));
    await writeSlice(a, 0, rowsOf(1, 3));
    const b = await staging.openSession(a.ref);
    await writeSlice(b, 1, rowsOf(4, 6));
    await a.seal();
    expect((await b.describe()).slices).toHaveLength(2);
  });
});

describe('a stale manifest write racing the new holder (object store)', () => {
  it('the new holder refuses to seal a manifest that lost its slices, and the run fails retryably, not silently', async () => {
    const store = new MemoryObjectStore();
    const staging = new ObjectStoreStagingProvider({ store });
    const ctx = testContext({ runId: 'run-race', unitId: 'users' });
    const fresh = await staging.allocateSession(ctx);
    await fresh.fence!(9);
    // The stale holder read the manifest before the claim (no slices, fence 5) and writes it back afterwards.
    const manifestKey = `${String(fresh.ref.runDir)}/manifest.json`;
    const before = await readText(store, manifestKey);
    await writeSlice(fresh, 0, rowsOf(1, 5));
    await store.put(manifestKey, Buffer.from(before.replace('"fence": 9', '"fence": 5')));
    const err = await fresh.seal({ expectedSlices: [0] }).catch((e) => e);
    expect(IngestError.is(err, 'staging_conflict')).toBe(true);
    expect(err.message).toContain('expected [0]');
    // The slice object the stale write orphaned was not deleted: a retry of the export can record it again.
    const keys: string[] = [];
    for await (const o of store.list('')) keys.push(o.key);
    expect(keys.some((k) => k.endsWith('/000000.ndjson'))).toBe(true);
  });
});

describe('runUnit: a holder paused past its lease during the export', () => {
  it('its late slice write is fenced off (lease_lost); the manifest stays the new holder’s; no row lost or doubled', async () => {
    const store = new MemoryObjectStore();
    const staging = new ObjectStoreStagingProvider({ store });
    const kv = new MemoryKvStore();
    const sink = new MemorySink();
    const source = new MemorySource({ units: { users: { rows: rowsOf(1, 300), cursorField: 'id', batchSize: 50 } } });
    const unit = { endpointId: 'mem', unitId: 'users', vendor: 'memory' };
    const policy = { leaseTtlMs: 150, sliceMaxRows: 100, retry: { maxAttempts: 1 } };

    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const pausedKv = new PausableKv(kv);
    let batches = 0;
    // The stale holder stops (like SIGSTOP) after its first slice was staged, in the middle of the second.
    const pausing = {
      descriptor: source.descriptor,
      checkUnit: (u: string) => source.checkUnit(u),
      read: (req: Parameters<MemorySource['read']>[0], ctx: Parameters<MemorySource['read']>[1]) =>
        (async function* () {
          for await (const b of source.read(req, ctx)) {
            if (++batches === 4) {
              pausedKv.paused = true;
              await gate;
              pausedKv.paused = false;
            }
            yield b;
          }
        })(),
    };
    const stale = runUnit({ source: pausing, sink, staging, kv: pausedKv, unit, policy }).catch((e) => e);
    await new Promise((r) => setTimeout(r, 400));

    const fresh = await runUnit({ source, sink, staging, kv, unit, policy });
    expect(fresh.resumed).toBe(true);
    const cp = await kv.get(checkpointKey(unit));
    const runDir = fresh.stagingHandles[0].key.split('/').slice(0, -1).join('/');
    const manifest = await readText(store, `${runDir}/manifest.json`);

    release();
    const err = await stale;
    expect(IngestError.is(err, 'lease_lost'), String(err)).toBe(true);
    expect(await readText(store, `${runDir}/manifest.json`)).toBe(manifest);
    expect(await kv.get(checkpointKey(unit))).toEqual(cp);
    expect(ids(sink.rows('users'))).toEqual(range(1, 300));
  });
});

describe('runUnit: a seal refused because the manifest is not the plan', () => {
  it('fails with staging_conflict without an immediate retry; the next call stages the lost slice and loads every row once', async () => {
    const store = new MemoryObjectStore();
    const inner = new ObjectStoreStagingProvider({ store });
    let tamper = true;
    // Just before the first seal, a stale write drops the last slice from the manifest (its object stays).
    const wrap = (session: StagingSession): StagingSession =>
      new Proxy(session, {
        get(target, prop) {
          if (prop === 'seal' && tamper) {
            return async (opts?: { expectedSlices?: readonly number[] }) => {
              tamper = false;
              const key = `${String(target.ref.runDir)}/manifest.json`;
              const manifest = JSON.parse(await readText(store, key));
              manifest.slices.pop();
              await store.put(key, Buffer.from(JSON.stringify(manifest)));
              return target.seal(opts);
            };
          }
          const v = Reflect.get(target, prop, target);
          return typeof v === 'function' ? v.bind(target) : v;
        },
      });
    const staging: StagingProvider = {
      id: inner.id,
      allocateSession: async (ctx) => wrap(await inner.allocateSession(ctx)),
      openSession: async (ref) => wrap(await inner.openSession(ref)),
      sweep: (opts) => inner.sweep(opts),
    };
    const sink = new MemorySink();
    const events: string[] = [];
    const opts = {
      source: new MemorySource({ units: { users: { rows: rowsOf(1, 250), cursorField: 'id', batchSize: 50 } } }),
      sink,
      staging,
      kv: new MemoryKvStore(),
      unit: { endpointId: 'mem', unitId: 'users', vendor: 'memory' },
      policy: { sliceMaxRows: 100, retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5 } },
      onEvent: (e: { type: string }) => events.push(e.type),
    };
    const err = await runUnit(opts).catch((e) => e);
    expect(IngestError.is(err, 'staging_conflict'), String(err)).toBe(true);
    expect(err).toMatchObject({ retryable: true, details: { have: [0, 1], want: [0, 1, 2] } });
    expect(events).not.toContain('retry.scheduled');
    expect(sink.rows('users')).toEqual([]);
    const result = await runUnit(opts);
    expect(result.stats.rowsImported).toBe(250);
    expect(ids(sink.rows('users'))).toEqual(range(1, 250));
  });
});

async function readText(store: MemoryObjectStore, key: string): Promise<string> {
  const chunks: Uint8Array[] = [];
  for await (const c of await store.get(key)) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

/** A KvStore whose calls hang while `paused` (this worker is stopped). */
class PausableKv implements KvStore {
  paused = false;
  constructor(private readonly inner: KvStore) {}
  private async gate() {
    while (this.paused) await new Promise((r) => setTimeout(r, 10));
  }
  async get<T extends Json>(k: KvKey) {
    await this.gate();
    return this.inner.get<T>(k);
  }
  async put<T extends Json>(k: KvKey, v: T, o?: KvPutOptions) {
    await this.gate();
    return this.inner.put<T>(k, v, o);
  }
  async delete(k: KvKey, o?: { expectedVersion?: number }) {
    await this.gate();
    return this.inner.delete(k, o);
  }
  list(p: { namespace: string; scopeId: string; keyPrefix?: string }) {
    return this.inner.list(p);
  }
}
