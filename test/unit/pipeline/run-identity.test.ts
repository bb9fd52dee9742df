/**
 * Run identity (issue 10 item 4): a run id names one run. A call repeating a committed run id gets that run's
 * recorded result and moves nothing; an abandoned or superseded run id is refused; a resume keeps the recorded
 * disposition and primary key.
 */
import { describe, expect, it } from 'vitest';
import {
  abandonRun,
  type checkpointKey,
  exportUnit,
  IngestError,
  importUnit,
  type KvStore,
  MemoryObjectStore,
  MemoryStagingProvider,
  ObjectStoreStagingProvider,
  runUnit,
  type StagingProvider,
} from '../../../src/index.js';
import { runStateKey } from '../../../src/pipeline/keys.js';
import { failOnce } from '../../../src/testing/index.js';
import { ids, memoryRun, range, rowsOf } from './helpers.js';

const stagings: Array<[string, () => StagingProvider]> = [
  ['memory staging', () => new MemoryStagingProvider()],
  ['object-store staging', () => new ObjectStoreStagingProvider({ store: new MemoryObjectStore() })],
];

function setup(staging: StagingProvider, planSlices?: number) {
  return memoryRun({ staging, ...(planSlices ? { planSlices } : {}) });
}

async function version(kv: KvStore, key: ReturnType<typeof checkpointKey>) {
  return (await kv.get(key))?.version ?? null;
}

describe.each(stagings)('run identity with %s', (_name, makeStaging) => {
  for (const planSlices of [undefined, 3]) {
    it(`runs A, B, then A again: the second A returns A's result, moves nothing, and no row is lost (${planSlices ? 'planned' : 'streamed'})`, async () => {
      const { source, sink, kv, base, key, events } = setup(makeStaging(), planSlices);
      const a = await runUnit({ ...base, runId: 'run-A' });
      source.setRows('users', rowsOf(1, 300));
      const b = await runUnit({ ...base, runId: 'run-B' });
      expect(b.stats.rowsImported).toBe(50);
      const afterB = await version(kv, key);

      source.setRows('users', rowsOf(1, 400));
      const reads = source.reads;
      events.length = 0;
      const again = await runUnit({ ...base, runId: 'run-A' });
      expect(again.repeated).toBe(true);
      expect(again.runId).toBe('run-A');
      expect(again.newCheckpoint).toEqual(a.newCheckpoint);
      expect(again.stats.rowsImported).toBe(a.stats.rowsImported);
      expect(source.reads).toBe(reads);
      expect(await version(kv, key)).toBe(afterB);
      expect(events.some((e) => e.type === 'checkpoint.committed')).toBe(false);
      expect(ids(sink.rows('users'))).toEqual(range(1, 300));

      // The rows that came after B are loaded by the next new run: none lost.
      const next = await runUnit({ ...base, runId: 'run-C' });
      expect(next.stats.rowsImported).toBe(100);
      expect(ids(sink.rows('users'))).toEqual(range(1, 400));
      expect((await kv.get(key))?.value).toEqual(next.newCheckpoint);
    });
  }

  it('repeating the last committed run id returns its result (A, A)', async () => {
    const { source, sink, base } = setup(makeStaging());
    const first = await runUnit({ ...base, runId: 'orchestrator-1' });
    source.setRows('users', rowsOf(1, 300));
    const again = await runUnit({ ...base, runId: 'orchestrator-1' });
    expect(again.repeated).toBe(true);
    expect(again.newCheckpoint).toEqual(first.newCheckpoint);
    expect(sink.rows('users')).toHaveLength(250);
  });

  it('an abandoned run id is refused with run_state_invalid; the checkpoint stays', async () => {
    const { sink, kv, base, key, source } = setup(makeStaging());
    await runUnit({ ...base, runId: 'ok-1' });
    const cp = await kv.get(key);
    source.setRows('users', rowsOf(1, 500));
    const flaky = failOnce(sink, { afterSlices: 1 });
    await expect(runUnit({ ...base, sink: flaky, runId: 'poison-1' })).rejects.toSatisfy((e) =>
      IngestError.is(e, 'sink_failed'),
    );
    await abandonRun({ kv, staging: base.staging, unit: base.unit });
    const err = await runUnit({ ...base, runId: 'poison-1' }).catch((e) => e);
    expect(IngestError.is(err, 'run_state_invalid')).toBe(true);
    expect(err.message).toContain('poison-1');
    expect((await kv.get(key))?.version).toBe(cp?.version);
    // A new id runs normally.
    await expect(runUnit({ ...base, runId: 'ok-2' })).resolves.toMatchObject({ runId: 'ok-2' });
  });

  it('a pending run superseded by a moved checkpoint retires its run id', async () => {
    const { sink, kv, base, key } = setup(makeStaging());
    const flaky = failOnce(sink, { afterSlices: 1 });
    await expect(runUnit({ ...base, sink: flaky, runId: 'stale-1' })).rejects.toBeDefined();
    // Someone else moves the checkpoint (e.g. a reset): the pending run no longer fits.
    const cp = await kv.get(key);
    await kv.put(key, { cursor: 0 }, { expectedVersion: cp?.version ?? null });
    await runUnit({ ...base, runId: 'fresh-1' });
    const err = await runUnit({ ...base, runId: 'stale-1' }).catch((e) => e);
    expect(IngestError.is(err, 'run_state_invalid')).toBe(true);
  });

  it('a run id whose session is still in staging is refused even without a receipt', async () => {
    const { kv, base, key } = setup(makeStaging());
    await runUnit({ ...base, runId: 'old-1' });
    await runUnit({ ...base, runId: 'old-2' });
    // Simulate a store that lost the receipt (e.g. written before receipts existed).
    await kv.delete({ ...runStateKey(key), key: `${runStateKey(key).key}::old-1` });
    const err = await runUnit({ ...base, runId: 'old-1' }).catch((e) => e);
    expect(IngestError.is(err, 'run_state_invalid')).toBe(true);
    expect(err.message).toContain('old-1');
  });

  it('importUnit naming an older committed session returns its result and imports nothing', async () => {
    const { sink, kv, base, key, source } = setup(makeStaging());
    const { sink: _s, ...exportOpts } = base;
    const { source: _src, ...importOpts } = base;
    const exp = await exportUnit({ ...exportOpts, runId: 'exp-1' });
    await importUnit({ ...importOpts, sessionRef: exp.sessionRef });
    source.setRows('users', rowsOf(1, 300));
    await runUnit({ ...base, runId: 'exp-2' });
    const v = await version(kv, key);
    const again = await importUnit({ ...importOpts, sessionRef: exp.sessionRef });
    expect(again.repeated).toBe(true);
    expect(await version(kv, key)).toBe(v);
    expect(ids(sink.rows('users'))).toEqual(range(1, 300));
  });
});

describe('a resume keeps the recorded disposition and primary key', () => {
  it('refuses another disposition with run_state_invalid, then resumes with the recorded one', async () => {
    const { sink, kv, base, key } = setup(new MemoryStagingProvider());
    const flaky = failOnce(sink, { afterSlices: 1 });
    await expect(
      runUnit({ ...base, sink: flaky, disposition: 'merge', primaryKey: ['id'], runId: 'm-1' }),
    ).rejects.toSatisfy((e) => IngestError.is(e, 'sink_failed'));
    const state = (await kv.get(runStateKey(key)))?.value as { disposition?: string; primaryKey?: string[] };
    expect(state).toMatchObject({ disposition: 'merge', primaryKey: ['id'] });

    for (const bad of [{ disposition: 'append' as const }, { disposition: 'replace' as const }]) {
      const err = await runUnit({ ...base, ...bad }).catch((e) => e);
      expect(IngestError.is(err, 'run_state_invalid'), String(err)).toBe(true);
      expect(err.message).toContain('m-1');
    }
    const pkErr = await runUnit({ ...base, disposition: 'merge', primaryKey: ['name'] }).catch((e) => e);
    expect(IngestError.is(pkErr, 'run_state_invalid')).toBe(true);
    expect((await kv.get(key))?.value ?? null).toBeNull();

    // Omitted options take the recorded ones.
    const done = await runUnit(base);
    expect(done.resumed).toBe(true);
    expect(sink.imports.at(-1)?.disposition).toBe('merge');
    expect(ids(sink.rows('users'))).toEqual(range(1, 250));
  });

  it('importUnit resuming an exported run records its disposition and holds to it', async () => {
    const { sink, kv, base, key } = setup(new MemoryStagingProvider());
    const { sink: _s, ...exportOpts } = base;
    const { source: _src, ...importOpts } = base;
    await exportUnit(exportOpts);
    const flaky = failOnce(sink, { afterSlices: 1 });
    await expect(importUnit({ ...importOpts, sink: flaky, disposition: 'append' })).rejects.toBeDefined();
    expect((await kv.get(runStateKey(key)))?.value).toMatchObject({ disposition: 'append' });
    await expect(importUnit({ ...importOpts, disposition: 'merge', primaryKey: ['id'] })).rejects.toSatisfy((e) =>
      IngestError.is(e, 'run_state_invalid'),
    );
    await importUnit(importOpts);
    expect(ids(sink.rows('users'))).toEqual(range(1, 250));
  });
});
