/**
 * Issue 11 items 4, 5, 7: an unknown unit is refused before any state is written; a run that fails before it
 * staged a row leaves nothing behind (or, when it staged something, resumes visibly); an incremental run with
 * nothing new stages nothing and leaves the checkpoint entry untouched.
 */
import { describe, expect, it } from 'vitest';
import {
  IngestError,
  type KvStore,
  MemoryObjectStore,
  ObjectStoreStagingProvider,
  type Row,
  runUnit,
  type SourceEndpoint,
} from '../../../src/index.js';
import { leaseKey, runStateKey } from '../../../src/pipeline/keys.js';
import { failAtBatch, failOnce, type MemorySource } from '../../../src/testing/index.js';
import { ids, memoryRun, range, rowsOf } from './helpers.js';

function setup(opts: { rows?: Row[]; planSlices?: number } = {}) {
  const store = new MemoryObjectStore();
  return { ...memoryRun({ ...opts, staging: new ObjectStoreStagingProvider({ store }) }), store };
}

async function kvKeys(kv: KvStore): Promise<string[]> {
  const out: string[] = [];
  for await (const e of kv.list({ namespace: 'ingestion', scopeId: 'default' })) out.push(e.key);
  return out;
}
async function objectKeys(store: MemoryObjectStore): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list('')) out.push(o.key);
  return out;
}
async function runDirs(store: MemoryObjectStore): Promise<string[]> {
  return [...new Set((await objectKeys(store)).map((k) => k.split('/').slice(0, 4).join('/')))];
}

describe('an unknown unit is refused before any state is written', () => {
  const sources: Array<[string, (s: MemorySource) => SourceEndpoint<any>]> = [
    ['checkUnit', (s) => s],
    [
      'collectMetadata only',
      (s) => ({ descriptor: s.descriptor, collectMetadata: () => s.collectMetadata(), read: (r, c) => s.read(r, c) }),
    ],
  ];
  for (const [how, wrap] of sources) {
    it(`via ${how}: config_invalid naming the unit; no lease, no run state, no staging, source never read`, async () => {
      const { source, kv, store, base, events } = setup();
      const err = await runUnit({
        ...base,
        source: wrap(source),
        unit: { ...base.unit, unitId: 'nope' },
      }).catch((e) => e);
      expect(IngestError.is(err, 'config_invalid'), String(err)).toBe(true);
      expect(err.message).toContain('"nope"');
      expect(err.retryable).toBe(false);
      expect(await kvKeys(kv)).toEqual([]);
      expect(await objectKeys(store)).toEqual([]);
      expect(source.reads).toBe(0);
      expect(events.map((e) => e.type)).toEqual(['run.failed']);
      // The known unit still runs.
      await expect(runUnit(base)).resolves.toMatchObject({ stats: { rowsImported: 250 } });
    });
  }

  it('a source that cannot be reached while checking fails retryably, also before any state', async () => {
    const { source, kv, store, base } = setup();
    const down: SourceEndpoint<any> = {
      descriptor: source.descriptor,
      checkUnit: async () => {
        throw new Error('connect ECONNREFUSED 127.0.0.1:1');
      },
      read: (r, c) => source.read(r, c),
    };
    const err = await runUnit({ ...base, source: down }).catch((e) => e);
    expect(IngestError.is(err, 'source_failed')).toBe(true);
    expect(await kvKeys(kv)).toEqual([]);
    expect(await objectKeys(store)).toEqual([]);
  });
});

describe('a run that fails before it staged a row leaves nothing behind', () => {
  for (const planSlices of [undefined, 3]) {
    const kind = planSlices ? 'planned' : 'streamed';
    it(`first run (${kind}): no run state, no session folder; the next run starts afresh, not "resumed"`, async () => {
      const { source, kv, store, base, key, events } = setup({ planSlices });
      const err = await runUnit({ ...base, source: failAtBatch(source, 1, { times: 100 }) }).catch((e) => e);
      expect(IngestError.is(err, 'source_failed')).toBe(true);
      expect((await kv.get(runStateKey(key)))?.value ?? undefined).toBeUndefined(); // rolled back: `null`, no TTL
      expect(await kv.get(key)).toBeUndefined();
      expect((await kv.get<{ state: string }>(leaseKey(key)))?.value.state).toBe('released');
      expect(await objectKeys(store)).toEqual([]);
      events.length = 0;
      const ok = await runUnit(base);
      expect(ok.resumed).toBe(false);
      expect(events.some((e) => e.type === 'run.resumed')).toBe(false);
      expect(ok.stats.rowsImported).toBe(250);
    });

    it(`after a committed run (${kind}): the committed run state is put back, checkpoint untouched`, async () => {
      const { source, kv, store, base, key } = setup({ planSlices });
      const first = await runUnit({ ...base, runId: 'first' });
      const before = await kv.get(key);
      const dirs = await runDirs(store);
      source.setRows('users', rowsOf(1, 300));
      const err = await runUnit({ ...base, source: failOnce(source, { times: 100 }) }).catch((e) => e);
      expect(IngestError.is(err, 'source_failed')).toBe(true);
      expect((await kv.get(runStateKey(key)))?.value).toMatchObject({ runId: 'first', phase: 'committed' });
      expect(await kv.get(key)).toMatchObject({ version: before?.version, value: first.newCheckpoint });
      expect(await runDirs(store)).toEqual(dirs);
      // The repeat of the committed run still answers.
      await expect(runUnit({ ...base, runId: 'first' })).resolves.toMatchObject({ repeated: true });
    });
  }

  it('the rollback writes no expiring entry and needs no sleep: the run state reads as none at once (ADR 0017)', async () => {
    const { source, kv, base, key } = setup();
    const puts: Array<{ key: string; ttlMs?: number }> = [];
    const spy: KvStore = {
      get: (k) => kv.get(k),
      put: (k, v, o) => {
        puts.push({ key: k.key, ...(o?.ttlMs !== undefined ? { ttlMs: o.ttlMs } : {}) });
        return kv.put(k, v, o);
      },
      delete: (k, o) => kv.delete(k, o),
      list: (p) => kv.list(p),
    };
    const err = await runUnit({ ...base, kv: spy, source: failAtBatch(source, 1, { times: 100 }) }).catch((e) => e);
    expect(IngestError.is(err, 'source_failed')).toBe(true);
    const runPuts = puts.filter((p) => p.key === runStateKey(key).key);
    expect(runPuts.length).toBeGreaterThanOrEqual(2);
    expect(runPuts.filter((p) => p.ttlMs !== undefined)).toEqual([]);
    expect((await kv.get(runStateKey(key)))?.value).toBeNull();
  });

  it('a run that staged a slice before failing stays pending and resumes visibly (run.resumed)', async () => {
    const { source, kv, base, key, events, sink } = setup();
    // Batches of 40, slices of 100: batch 4 fails after slice 0 was staged.
    const err = await runUnit({ ...base, source: failAtBatch(source, 4) }).catch((e) => e);
    expect(IngestError.is(err, 'source_failed')).toBe(true);
    expect((await kv.get(runStateKey(key)))?.value).toMatchObject({ phase: 'exporting' });
    events.length = 0;
    const ok = await runUnit(base);
    expect(ok.resumed).toBe(true);
    expect(events.find((e) => e.type === 'run.resumed')).toMatchObject({ phase: 'exporting' });
    expect(ids(sink.rows('users'))).toEqual(range(1, 250));
  });

  it('a row_rejected run with nothing staged leaves nothing; the next run fails the same way, not "resuming"', async () => {
    const { kv, store, base, key, events } = setup({ rows: [{ id: 1n, blob: 'x'.repeat(5000) }] });
    const policy = { ...base.policy, maxRowBytes: 1000 };
    for (let i = 0; i < 2; i++) {
      events.length = 0;
      const err = await runUnit({ ...base, policy }).catch((e) => e);
      expect(IngestError.is(err, 'row_rejected')).toBe(true);
      expect(events.some((e) => e.type === 'run.resumed')).toBe(false);
      expect((await kv.get(runStateKey(key)))?.value ?? undefined).toBeUndefined(); // rolled back: `null`, no TTL
      expect(await objectKeys(store)).toEqual([]);
    }
  });
});

describe('an incremental run with nothing new', () => {
  for (const planSlices of [undefined, 3]) {
    const kind = planSlices ? 'planned' : 'streamed';
    it(`stages nothing and leaves the checkpoint entry untouched (${kind})`, async () => {
      const { kv, store, base, key, events, sink } = setup({ planSlices });
      const first = await runUnit(base);
      const before = await kv.get(key);
      const dirs = await runDirs(store);
      events.length = 0;
      const empty = await runUnit(base);
      expect(empty.stats).toMatchObject({ rowsExported: 0, rowsImported: 0, slices: 0, bytesStaged: 0 });
      expect(empty.newCheckpoint).toEqual(first.newCheckpoint);
      expect(empty.stagingHandles).toEqual([]);
      const after = await kv.get(key);
      expect(after?.version).toBe(before?.version);
      expect(after?.updatedAt).toEqual(before?.updatedAt);
      expect(await runDirs(store)).toEqual(dirs);
      expect(events.some((e) => e.type === 'checkpoint.committed')).toBe(false);
      expect(events.at(-1)?.type).toBe('run.completed');
      expect((await kv.get(runStateKey(key)))?.value).toMatchObject({ phase: 'committed', empty: true });
      expect(sink.imports).toHaveLength(1);
      // Its run id keeps its (empty) result; new rows are read by the next run.
      await expect(runUnit({ ...base, runId: empty.runId })).resolves.toMatchObject({ repeated: true });
    });
  }

  it('on a first run over an empty unit: no checkpoint entry, no session', async () => {
    const { kv, store, base, key } = setup({ rows: [] });
    const res = await runUnit(base);
    expect(res.stats.rowsImported).toBe(0);
    expect(await kv.get(key)).toBeUndefined();
    expect(await objectKeys(store)).toEqual([]);
  });

  it('a full run (and an incremental replace) with no rows still imports: the target must become empty', async () => {
    const { source, sink, base } = setup();
    await runUnit(base);
    source.setRows('users', []);
    const full = await runUnit({ ...base, mode: 'full', disposition: 'replace' });
    expect(full.stats.slices).toBe(0);
    expect(sink.imports.at(-1)?.disposition).toBe('replace');
    expect(sink.rows('users')).toEqual([]);
  });
});
