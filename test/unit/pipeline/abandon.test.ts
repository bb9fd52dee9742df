/**
 * Issue 10 item 8: a poisoned run no longer blocks its unit. `abandonRun()` drops the pending run (checkpoint
 * unchanged, session marked for the sweep), and `policy.onRejectedRow: 'dead-letter'` lets a run complete without
 * the rows it cannot stage.
 */
import { describe, expect, it } from 'vitest';
import {
  abandonRun,
  IngestError,
  MemoryObjectStore,
  MemoryStagingProvider,
  ObjectStoreStagingProvider,
  type RejectedRow,
  type Row,
  runUnit,
  type StagingProvider,
  sweepStaging,
} from '../../../src/index.js';
import { runStateKey } from '../../../src/pipeline/keys.js';
import { failAtBatch, failOnce, slow } from '../../../src/testing/index.js';
import { ids, memoryRun, range, rowsOf } from './helpers.js';

function setup(staging: StagingProvider = new MemoryStagingProvider(), rows = rowsOf(1, 250)) {
  return memoryRun({ staging, rows });
}

describe('abandonRun', () => {
  for (const phase of ['exporting', 'exported', 'importing'] as const) {
    it(`drops a run pending in ${phase}: checkpoint unchanged, session marked, the next call runs fresh`, async () => {
      const store = new MemoryObjectStore();
      const { source, sink, kv, base, key, events, staging } = setup(new ObjectStoreStagingProvider({ store }));
      await runUnit(base);
      const before = await kv.get(key);
      source.setRows('users', rowsOf(1, 400));
      // Leave a run pending in the wanted phase.
      if (phase === 'exporting') {
        const err = await runUnit({ ...base, source: failAtBatch(source, 4) }).catch((e) => e);
        expect(IngestError.is(err)).toBe(true);
      } else {
        const { sink: _s, ...exportOpts } = base;
        const { exportUnit, importUnit } = await import('../../../src/index.js');
        await exportUnit(exportOpts);
        if (phase === 'importing') {
          const { source: _src, ...importOpts } = base;
          await importUnit({ ...importOpts, sink: failOnce(sink, { afterSlices: 1 }) }).catch(() => {});
        }
      }
      const pending = (await kv.get(runStateKey(key)))?.value as { runId: string; phase: string };
      expect(pending.phase).toBe(phase);

      const dropped = await abandonRun({ kv, staging, unit: base.unit, runId: pending.runId, reason: 'poisoned' });
      expect(dropped).toMatchObject({
        runId: pending.runId,
        phase,
        checkpoint: before?.value,
        checkpointVersion: before?.version,
        sessionMarked: true,
        partlyImported: phase === 'importing',
      });
      expect(await kv.get(key)).toMatchObject({ version: before?.version, value: before?.value });
      expect((await kv.get(runStateKey(key)))?.value).toMatchObject({
        phase: 'abandoned',
        abandoned: { reason: 'poisoned' },
      });
      const keys: string[] = [];
      for await (const o of store.list('')) keys.push(o.key);
      expect(keys.some((k) => k.includes(pending.runId) && k.endsWith('/_ABANDONED'))).toBe(true);

      // The sweep deletes the abandoned session like a landed one (olderThanMs), not after abandonedAfterMs.
      const report = await sweepStaging({ staging, kv, olderThanMs: 0, abandonedAfterMs: 3_600_000 });
      expect(report.deleted.map((r) => r.runId)).toContain(pending.runId);

      events.length = 0;
      const next = await runUnit(base);
      expect(next.resumed).toBe(false);
      expect(next.runId).not.toBe(pending.runId);
      expect(events.some((e) => e.type === 'run.resumed')).toBe(false);
      expect(ids(sink.rows('users')).filter((v, i, a) => a.indexOf(v) === i)).toEqual(range(1, 400));
    });
  }

  it('refuses when there is nothing pending, a different run id, or a run already imported', async () => {
    const { kv, base, key, staging } = setup();
    await expect(abandonRun({ kv, staging, unit: base.unit })).rejects.toSatisfy((e) =>
      IngestError.is(e, 'run_state_invalid'),
    );
    await runUnit(base);
    const err = await abandonRun({ kv, staging, unit: base.unit }).catch((e) => e);
    expect(IngestError.is(err, 'run_state_invalid')).toBe(true);
    expect(err.message).toContain('committed');

    // Pending in `imported`: only committing is left.
    const state = (await kv.get(runStateKey(key)))!;
    await kv.put(runStateKey(key), { ...(state.value as object), phase: 'imported', runId: 'imp-1' } as never, {
      expectedVersion: state.version,
    });
    await expect(abandonRun({ kv, staging, unit: base.unit })).rejects.toSatisfy(
      (e) => IngestError.is(e, 'run_state_invalid') && (e as Error).message.includes('imported'),
    );
    await expect(abandonRun({ kv, staging, unit: base.unit, runId: 'other' })).rejects.toSatisfy((e) =>
      IngestError.is(e, 'run_state_invalid'),
    );
  });

  it('is refused with lease_held while a run is live, and touches nothing', async () => {
    const { kv, base, key, source, staging } = setup();
    const live = runUnit({ ...base, source: slow(source, 30) });
    await new Promise((r) => setTimeout(r, 40));
    await expect(abandonRun({ kv, staging, unit: base.unit })).rejects.toSatisfy((e) =>
      IngestError.is(e, 'lease_held'),
    );
    await live;
    expect((await kv.get(runStateKey(key)))?.value).toMatchObject({ phase: 'committed' });
  });

  it('validates its options with config_invalid', async () => {
    await expect(abandonRun({ kv: {} as never, unit: { endpointId: '', unitId: 'x' } })).rejects.toSatisfy((e) =>
      IngestError.is(e, 'config_invalid'),
    );
  });
});

describe("policy.onRejectedRow: 'dead-letter'", () => {
  it('stages the run without rows over maxRowBytes, hands their index and reason to the dead-letter sink', async () => {
    const rows: Row[] = rowsOf(1, 120);
    rows[4] = { id: 5n, name: 'x'.repeat(5000) };
    rows[101] = { id: 102n, name: 'y'.repeat(5000) };
    const { kv, base, key, sink } = setup(new MemoryStagingProvider(), rows);
    const rejected: RejectedRow[] = [];
    const res = await runUnit({
      ...base,
      policy: { ...base.policy, maxRowBytes: 1000, onRejectedRow: 'dead-letter' },
      deadLetter: { write: async (r) => void rejected.push(...r) },
    });
    expect(res.stats).toMatchObject({ rowsExported: 118, rowsImported: 118, rowsRejected: 2 });
    expect(ids(sink.rows('users'))).toEqual(range(1, 120).filter((i) => i !== 5 && i !== 102));
    expect(rejected.map((r) => [r.slice, r.row, r.code])).toEqual([
      [0, 4, 'row_rejected'],
      // Streamed: `row` counts from the start of the read; the batch holding row 101 began in slice 0.
      [0, 101, 'row_rejected'],
    ]);
    expect(rejected[0].reason).toContain('maxRowBytes');
    expect(rejected[0].runId).toBe(res.runId);
    // The checkpoint moved past the rejected rows (they are not read again).
    expect((await kv.get(key))?.value).toEqual(res.newCheckpoint);
  });

  it('is off by default (row_rejected), and needs a deadLetter sink', async () => {
    const { base } = setup(new MemoryStagingProvider(), [{ id: 1n, name: 'x'.repeat(5000) }]);
    await expect(runUnit({ ...base, policy: { maxRowBytes: 1000 } })).rejects.toSatisfy((e) =>
      IngestError.is(e, 'row_rejected'),
    );
    const err = await runUnit({ ...base, policy: { maxRowBytes: 1000, onRejectedRow: 'dead-letter' } }).catch((e) => e);
    expect(IngestError.is(err, 'config_invalid')).toBe(true);
    expect(err.message).toContain('deadLetter');
  });

  it('a failing dead-letter sink fails the run (sink_failed) and stages nothing of it', async () => {
    const { base, kv, key } = setup(new MemoryStagingProvider(), [{ id: 1n, name: 'x'.repeat(5000) }]);
    const err = await runUnit({
      ...base,
      policy: { maxRowBytes: 1000, onRejectedRow: 'dead-letter' },
      deadLetter: {
        write: async () => {
          throw new Error('queue down');
        },
      },
    }).catch((e) => e);
    expect(IngestError.is(err, 'sink_failed')).toBe(true);
    expect((await kv.get(runStateKey(key)))?.value ?? undefined).toBeUndefined(); // rolled back: `null`
  });
});
