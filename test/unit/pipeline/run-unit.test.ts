import { describe, expect, it } from 'vitest';
import {
  checkpointKey,
  exportUnit,
  IngestError,
  type IngestionEvent,
  importUnit,
  type KvStore,
  MemoryKvStore,
  MemoryStagingProvider,
  type Row,
  type RunUnitOptions,
  runUnit,
} from '../../../src/index.js';
import { runStateKey } from '../../../src/pipeline/keys.js';
import { failAtBatch, failOnce, MemorySink, MemorySource, slow } from '../../../src/testing/index.js';

const rowsOf = (from: number, to: number): Row[] =>
  Array.from({ length: to - from + 1 }, (_, i) => ({
    id: BigInt(from + i),
    name: `user ${from + i}`,
    at: new Date(1_700_000_000_000 + (from + i) * 1000),
  }));

function setup(rows: Row[] = rowsOf(1, 250), extra: { batchSize?: number; planSlices?: number } = {}) {
  const source = new MemorySource({
    units: { users: { rows, cursorField: 'id', batchSize: extra.batchSize ?? 40, planSlices: extra.planSlices } },
  });
  const sink = new MemorySink();
  const staging = new MemoryStagingProvider();
  const kv = new MemoryKvStore();
  const events: IngestionEvent[] = [];
  const base = {
    source,
    sink,
    staging,
    kv,
    unit: { endpointId: 'mem', unitId: 'users', vendor: 'memory' },
    policy: { sliceMaxRows: 100, retry: { maxAttempts: 1 } },
    onEvent: (e: IngestionEvent) => events.push(e),
  } satisfies RunUnitOptions;
  const key = checkpointKey({ vendor: 'memory', endpointId: 'mem', unitId: 'users' });
  return { source, sink, staging, kv, events, base, key };
}

const ids = (rows: Row[]) => rows.map((r) => Number(r.id));
const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

describe('runUnit', () => {
  it('moves every row, slices by sliceMaxRows, and commits the checkpoint after the sink', async () => {
    const { sink, base, kv, key, events } = setup();
    const res = await runUnit(base);
    expect(ids(sink.rows('users'))).toEqual(range(1, 250));
    expect(res.stats).toMatchObject({ rowsExported: 250, rowsImported: 250, slices: 3 });
    expect(res.newCheckpoint).toEqual({ cursor: { $bigint: '250' } });
    expect((await kv.get(key))?.value).toEqual(res.newCheckpoint);
    expect(res.stagingHandles).toHaveLength(3);
    const types = events.map((e) => e.type);
    expect(types[0]).toBe('run.started');
    expect(types).toContain('slice.staged');
    expect(types.indexOf('export.completed')).toBeLessThan(types.indexOf('checkpoint.committed'));
    expect(types.at(-1)).toBe('run.completed');
    expect(events.every((e) => e.runId === res.runId && e.unitId === 'users')).toBe(true);
    const committed = events.findIndex((e) => e.type === 'checkpoint.committed');
    const lastImport = events.map((e) => e.type).lastIndexOf('import.progress');
    expect(lastImport).toBeLessThan(committed);
  });

  it('a second incremental run exports only newer rows; a full run ignores the checkpoint', async () => {
    const { source, sink, base } = setup(rowsOf(1, 100));
    await runUnit(base);
    source.setRows('users', rowsOf(1, 130));
    const second = await runUnit(base);
    expect(second.stats.rowsExported).toBe(30);
    expect(ids(sink.rows('users'))).toEqual(range(1, 130));
    const none = await runUnit(base);
    expect(none.stats.rowsExported).toBe(0);
    expect(none.newCheckpoint).toEqual(second.newCheckpoint);
    const full = await runUnit({ ...base, mode: 'full', disposition: 'replace' });
    expect(full.stats.rowsExported).toBe(130);
    expect(ids(sink.rows('users'))).toEqual(range(1, 130));
  });

  it('cuts slices by estimated bytes', async () => {
    const { base } = setup(rowsOf(1, 50));
    const res = await runUnit({ ...base, policy: { sliceMaxRows: 1000, sliceMaxBytes: 400 } });
    expect(res.stats.slices).toBeGreaterThan(5);
    expect(res.stats.rowsImported).toBe(50);
  });

  it('a sink failure leaves the checkpoint; the re-run imports from staging without reading the source again', async () => {
    const { source, sink, base, kv, key, events } = setup();
    await runUnit({ ...base, policy: { ...base.policy } });
    source.setRows('users', rowsOf(1, 400));
    const before = await kv.get(key);
    const flaky = failOnce(sink, { afterSlices: 1, error: new Error('disk full on target') });
    const err = await runUnit({ ...base, sink: flaky }).catch((e) => e);
    expect(IngestError.is(err, 'sink_failed')).toBe(true);
    expect(err.message).toContain('disk full on target');
    expect(err.message).toContain('unit users');
    expect(await kv.get(key)).toEqual(before);
    expect(events.at(-1)?.type).toBe('run.failed');
    const readsBefore = source.reads;
    const again = await runUnit(base);
    expect(source.reads).toBe(readsBefore);
    expect(again.resumed).toBe(true);
    expect(again.runId).toBe(err.details?.runId ?? again.runId);
    expect(ids(sink.rows('users'))).toEqual(range(1, 400));
    expect((await kv.get(key))?.value).toEqual({ cursor: { $bigint: '400' } });
    expect(events.some((e) => e.type === 'run.resumed')).toBe(true);
    const lastImport = sink.imports.at(-1)!;
    expect(lastImport.skipped).toEqual([0]);
  });

  it('a source failure leaves the checkpoint untouched', async () => {
    const { source, base, kv, key } = setup();
    await runUnit(base);
    source.setRows('users', rowsOf(1, 300));
    const before = await kv.get(key);
    const err = await runUnit({
      ...base,
      source: failAtBatch(source, 1, { error: new Error('connection refused') }),
    }).catch((e) => e);
    expect(IngestError.is(err, 'source_failed')).toBe(true);
    expect(await kv.get(key)).toEqual(before);
    const ok = await runUnit(base);
    expect(ok.stats.rowsImported).toBe(50);
  });

  it('retries retryable failures with backoff and reports them', async () => {
    const { source, sink, base, events } = setup();
    const res = await runUnit({
      ...base,
      source: failAtBatch(source, 2),
      sink: failOnce(sink),
      policy: { sliceMaxRows: 100, retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5 } },
    });
    expect(res.stats.rowsImported).toBe(250);
    expect(ids(sink.rows('users'))).toEqual(range(1, 250));
    const retries = events.filter((e) => e.type === 'retry.scheduled');
    expect(retries.map((e) => (e as { phase: string }).phase).sort()).toEqual(['export', 'import']);
  });

  it('retries planned slices one by one and keeps finished ones', async () => {
    const { source, sink, base } = setup(rowsOf(1, 200), { planSlices: 4, batchSize: 10 });
    const res = await runUnit({
      ...base,
      source: failAtBatch(source, 3, { times: 2 }),
      policy: { exportConcurrency: 2, retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 2 } },
    });
    expect(res.stats.slices).toBe(4);
    expect(ids(sink.rows('users'))).toEqual(range(1, 200));
    expect(source.plans).toBe(1);
    expect(res.newCheckpoint).toEqual({ cursor: { $bigint: '200' } });
  });

  it('abort stops within a batch with code aborted; checkpoint untouched; the next run resumes', async () => {
    const { source, sink, base, kv, key } = setup(rowsOf(1, 200), { planSlices: 4, batchSize: 10 });
    const ac = new AbortController();
    let batches = 0;
    const err = await runUnit({
      ...base,
      source: slow(source, 5),
      signal: ac.signal,
      policy: { exportConcurrency: 1 },
      onEvent: (e) => {
        if (e.type === 'export.progress' && ++batches === 7) ac.abort();
      },
    }).catch((e) => e);
    expect(IngestError.is(err, 'aborted')).toBe(true);
    expect(batches).toBeLessThanOrEqual(8);
    expect(await kv.get(key)).toBeUndefined();
    expect(sink.rows('users')).toHaveLength(0);
    const state = await kv.get(runStateKey(key));
    expect((state?.value as { phase?: string } | undefined)?.phase).toBe('exporting');
    const res = await runUnit(base);
    expect(res.resumed).toBe(true);
    expect(source.plans).toBe(1);
    expect(ids(sink.rows('users'))).toEqual(range(1, 200));
  });

  it('an already aborted signal fails before any endpoint is called', async () => {
    const { source, base } = setup();
    const ac = new AbortController();
    ac.abort();
    const err = await runUnit({ ...base, signal: ac.signal }).catch((e) => e);
    expect(IngestError.is(err, 'aborted')).toBe(true);
    expect(source.reads).toBe(0);
  });

  it('invalid options give config_invalid listing every problem, before any I/O', async () => {
    const { source, base } = setup();
    const kv = new MemoryKvStore();
    const spy = { puts: 0 };
    const counting: KvStore = {
      ...kv,
      get: kv.get.bind(kv),
      list: kv.list.bind(kv),
      delete: kv.delete.bind(kv),
      put: (...a) => {
        spy.puts++;
        return kv.put(...a);
      },
    };
    const err = await runUnit({
      ...base,
      kv: counting,
      unit: { endpointId: '', unitId: 'users' },
      policy: { chunkSize: 0, sliceMaxRows: -1, exportConcurrency: 1.5 },
      mode: 'sometimes' as never,
      sink: {} as never,
    }).catch((e) => e);
    expect(IngestError.is(err, 'config_invalid')).toBe(true);
    const paths = (err.details.issues as { path: string }[]).map((i) => i.path).sort();
    expect(paths).toEqual(
      ['mode', 'policy.chunkSize', 'policy.exportConcurrency', 'policy.sliceMaxRows', 'sink', 'unit.endpointId'].sort(),
    );
    expect(err.message).toContain('Expected `policy.chunkSize` to be a positive integer');
    expect(source.reads).toBe(0);
    expect(spy.puts).toBe(0);
  });

  it('two concurrent runs of one unit: one runs, the other gets lease_held', async () => {
    const { source, base, sink } = setup();
    const slowSource = slow(source, 5);
    const results = await Promise.allSettled([
      runUnit({ ...base, source: slowSource }),
      runUnit({ ...base, source: slowSource }),
    ]);
    const ok = results.filter((r) => r.status === 'fulfilled');
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(ok).toHaveLength(1);
    expect(failed).toHaveLength(1);
    expect(IngestError.is(failed[0].reason, 'lease_held')).toBe(true);
    expect(failed[0].reason.retryable).toBe(true);
    expect(ids(sink.rows('users'))).toEqual(range(1, 250));
    // the lease is released after the run: the next run proceeds
    await expect(runUnit(base)).resolves.toBeDefined();
  });

  it('a stale lease holder cannot commit: its lease expired and another run took over', async () => {
    const { source, sink, base, kv, key } = setup(rowsOf(1, 100));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    // The paused holder: its sink blocks past the lease TTL; renewals are starved by pausing the clock of the store.
    const pausedKv = new PausableKv(kv);
    const blockingSink = {
      descriptor: sink.descriptor,
      import: async (req: Parameters<MemorySink['import']>[0], ctx: Parameters<MemorySink['import']>[1]) => {
        pausedKv.paused = true; // like SIGSTOP: this worker's KvStore calls hang
        await gate;
        pausedKv.paused = false;
        return sink.import(req, ctx);
      },
    };
    const stale = runUnit({
      ...base,
      kv: pausedKv,
      sink: blockingSink,
      policy: { leaseTtlMs: 150, sliceMaxRows: 100 },
    }).catch((e) => e);
    await new Promise((r) => setTimeout(r, 400));
    // Another worker sees the lease expired and resumes the run from staging.
    const fresh = await runUnit({ ...base, policy: { leaseTtlMs: 150, sliceMaxRows: 100 } });
    expect(fresh.resumed).toBe(true);
    const cp = await kv.get(key);
    release();
    const err = await stale;
    expect(IngestError.is(err, 'lease_lost')).toBe(true);
    expect(await kv.get(key)).toEqual(cp);
    expect(ids(sink.rows('users'))).toEqual(range(1, 100));
    expect(source.reads).toBe(1);
  });

  it('exportUnit then importUnit do what runUnit does, across two callers', async () => {
    const { source, sink, staging, kv, base, key } = setup();
    const { sink: _s, ...exportOpts } = base;
    const exp = await exportUnit(exportOpts);
    expect(exp.stats.rowsExported).toBe(250);
    expect(exp.plannedCheckpoint).toEqual({ cursor: { $bigint: '250' } });
    expect(await kv.get(key)).toBeUndefined();
    const { source: _src, ...importOpts } = base;
    const imp = await importUnit({
      ...importOpts,
      staging,
      kv,
      sessionRef: JSON.parse(JSON.stringify(exp.sessionRef)),
    });
    expect(imp.runId).toBe(exp.runId);
    expect(ids(sink.rows('users'))).toEqual(range(1, 250));
    expect((await kv.get(key))?.value).toEqual(exp.plannedCheckpoint);
    // Importing again (a retried activity) returns the committed result and imports nothing twice.
    const again = await importUnit({ ...importOpts, staging, kv, sessionRef: exp.sessionRef });
    expect(again.runId).toBe(exp.runId);
    expect(sink.rows('users')).toHaveLength(250);
    expect(source.reads).toBe(1);
  });

  it('importUnit without a finished export is run_state_invalid', async () => {
    const { base } = setup();
    const { source: _src, ...importOpts } = base;
    await expect(importUnit(importOpts)).rejects.toSatisfy((e) => IngestError.is(e, 'run_state_invalid'));
  });

  it('repeating a committed runId returns its result instead of running twice', async () => {
    const { source, sink, base } = setup();
    const first = await runUnit({ ...base, runId: 'orchestrator-run-1' });
    source.setRows('users', rowsOf(1, 300));
    const again = await runUnit({ ...base, runId: 'orchestrator-run-1' });
    expect(again.runId).toBe('orchestrator-run-1');
    expect(again.newCheckpoint).toEqual(first.newCheckpoint);
    expect(sink.rows('users')).toHaveLength(250);
  });

  it('refuses an oversized row with row_rejected naming the limit', async () => {
    const { base } = setup([{ id: 1n, blob: 'x'.repeat(10_000) }]);
    const err = await runUnit({ ...base, policy: { maxRowBytes: 1000 } }).catch((e) => e);
    expect(IngestError.is(err, 'row_rejected')).toBe(true);
    expect(err.message).toContain('maxRowBytes');
  });

  it('keepStaging false deletes staged data after landing', async () => {
    const { base, staging } = setup();
    const res = await runUnit({ ...base, policy: { keepStaging: false } });
    const report = await staging.sweep({ olderThanMs: 0, abandonedAfterMs: 0 });
    expect(report.deleted.map((r) => r.runId)).not.toContain(res.runId);
  });
});

/** A KvStore whose calls hang while `paused` — a worker stopped by SIGSTOP, seen from the store. */
class PausableKv implements KvStore {
  paused = false;
  constructor(private readonly inner: KvStore) {}
  private async gate() {
    while (this.paused) await new Promise((r) => setTimeout(r, 10));
  }
  async get<T extends import('../../../src/index.js').Json>(k: import('../../../src/index.js').KvKey) {
    await this.gate();
    return this.inner.get<T>(k);
  }
  async put<T extends import('../../../src/index.js').Json>(
    k: import('../../../src/index.js').KvKey,
    v: T,
    o?: import('../../../src/index.js').KvPutOptions,
  ) {
    await this.gate();
    return this.inner.put<T>(k, v, o);
  }
  async delete(k: import('../../../src/index.js').KvKey, o?: { expectedVersion?: number }) {
    await this.gate();
    return this.inner.delete(k, o);
  }
  list(p: { namespace: string; scopeId: string; keyPrefix?: string }) {
    return this.inner.list(p);
  }
}
