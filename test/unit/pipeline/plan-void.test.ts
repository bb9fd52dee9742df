import { describe, expect, it } from 'vitest';
import { IngestError, type IngestionContext, type ReadRequest, runUnit, type SliceSpec } from '../../../src/index.js';
import { ids, memoryRun, range } from './helpers.js';

/**
 * A planned MemorySource (3 slices) whose slice 2 fails once for good, and whose `planValid` answers `valid`: the
 * first run stages slices 0 and 1 and fails; the next call resumes it.
 */
function voidable(valid: boolean) {
  const run = memoryRun({ planSlices: 3 });
  const src = run.source;
  const calls = { plans: 0, reads: [] as number[], asked: [] as number[] };
  const plan = src.plan!.bind(src);
  const read = src.read.bind(src);
  let failed = false;
  Object.assign(src, {
    plan: async (req: ReadRequest<any>, ctx: IngestionContext) => {
      calls.plans++;
      return plan(req, ctx);
    },
    read: (req: ReadRequest<any> & { slice?: SliceSpec }, ctx: IngestionContext) => {
      if (req.slice) calls.reads.push(req.slice.index);
      if (req.slice?.index === 2 && !failed) {
        failed = true;
        throw new IngestError('source_failed', 'injected failure', { retryable: false });
      }
      return read(req, ctx);
    },
    planValid: async (req: { slices: SliceSpec[] }) => {
      calls.asked.push(req.slices.length);
      return valid;
    },
  });
  const base = { ...run.base, policy: { ...run.base.policy, exportConcurrency: 1 } };
  return { ...run, base, calls };
}

describe('SourceEndpoint.planValid', () => {
  it('a resumed run whose recorded plan is void empties the session and plans again: every row once', async () => {
    const { base, calls, sink, events } = voidable(false);
    await expect(runUnit(base)).rejects.toMatchObject({ code: 'source_failed' });
    expect(calls).toMatchObject({ plans: 1, reads: [0, 1, 2], asked: [] });
    expect(events.filter((e) => e.type === 'slice.staged')).toHaveLength(2);

    const res = await runUnit(base);
    expect(res.resumed).toBe(true);
    expect(calls.asked).toEqual([3]); // asked once, with the recorded plan
    expect(calls.plans).toBe(2);
    expect(calls.reads).toEqual([0, 1, 2, 0, 1, 2]); // the staged slices of the void plan were dropped
    expect(res.stats).toMatchObject({ rowsExported: 250, rowsImported: 250, slices: 3 });
    expect(ids(sink.rows('users'))).toEqual(range(1, 250));
  });

  it('a plan the source still holds is continued: only the missing slice is read', async () => {
    const { base, calls, sink } = voidable(true);
    await expect(runUnit(base)).rejects.toMatchObject({ code: 'source_failed' });
    const res = await runUnit(base);
    expect(res.resumed).toBe(true);
    expect(calls).toMatchObject({ plans: 1, reads: [0, 1, 2, 2], asked: [3] });
    expect(ids(sink.rows('users'))).toEqual(range(1, 250));
  });
});
