import { describe, expect, it } from 'vitest';
import { IngestError, type Json, runUnit } from '../../../src/index.js';
import { failOnce } from '../../../src/testing/index.js';
import { memoryRun } from './helpers.js';

/** A MemorySource whose `confirm` records what it was told, and what the KvStore held at that moment. */
function confirming(fail = false) {
  const run = memoryRun();
  const calls: { checkpoint: Json | null; stored: Json | undefined }[] = [];
  Object.assign(run.source, {
    confirm: async (req: { unitId: string; checkpoint: Json | null }) => {
      calls.push({ checkpoint: req.checkpoint, stored: (await run.kv.get(run.key))?.value });
      if (fail) throw new Error('upstream unreachable');
    },
  });
  return { ...run, calls };
}

describe('SourceEndpoint.confirm', () => {
  it('is called once per committed run, after the checkpoint moved, with that checkpoint', async () => {
    const { base, calls } = confirming();
    const res = await runUnit(base);
    expect(calls).toEqual([{ checkpoint: res.newCheckpoint, stored: res.newCheckpoint }]);
  });

  it('is called with the unchanged checkpoint when an incremental run found nothing new', async () => {
    const { base, calls } = confirming();
    const first = await runUnit(base);
    await runUnit(base);
    expect(calls.map((c) => c.checkpoint)).toEqual([first.newCheckpoint, first.newCheckpoint]);
  });

  it('is not called when the sink fails, so the upstream keeps the position', async () => {
    const { base, calls, sink } = confirming();
    const failing = failOnce(sink, { error: new IngestError('sink_failed', 'boom', { retryable: false }) });
    await expect(runUnit({ ...base, sink: failing })).rejects.toMatchObject({ code: 'sink_failed' });
    expect(calls).toEqual([]);
    const res = await runUnit(base);
    expect(calls).toEqual([{ checkpoint: res.newCheckpoint, stored: res.newCheckpoint }]);
  });

  it('does not fail a committed run when it throws: the run is committed and the next run confirms again', async () => {
    const { base, calls } = confirming(true);
    const res = await runUnit(base);
    expect(res.newCheckpoint).toEqual({ cursor: { $bigint: '250' } });
    expect(calls).toHaveLength(1);
  });
});
