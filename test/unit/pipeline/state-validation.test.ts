import { describe, expect, it } from 'vitest';
import { checkpointKey, IngestError, MemoryKvStore, MemoryStagingProvider, runUnit } from '../../../src/index.js';
import { leaseKey, receiptKey, runStateKey } from '../../../src/pipeline/keys.js';
import { MemorySink, MemorySource } from '../../../src/testing/index.js';

const rows = Array.from({ length: 10 }, (_, i) => ({ id: i + 1 }));

function setup() {
  const kv = new MemoryKvStore();
  const staging = new MemoryStagingProvider();
  const sink = new MemorySink();
  const source = new MemorySource({ units: { u: { rows, cursorField: 'id' } } });
  const base = { source, sink, staging, kv, unit: { endpointId: 'e', unitId: 'u' } };
  const cp = checkpointKey({ vendor: 'default', endpointId: 'e', unitId: 'u' });
  return { kv, staging, sink, source, base, cp };
}

describe('stored state is validated (ADR 0017)', () => {
  it('run states and receipts are written with format 1', async () => {
    const { kv, base, cp } = setup();
    const res = await runUnit(base);
    expect((await kv.get(runStateKey(cp)))?.value).toMatchObject({ format: 1, phase: 'committed' });
    expect((await kv.get(receiptKey(runStateKey(cp), res.runId)))?.value).toMatchObject({ format: 1 });
  });

  it('a run state of an unknown format is state_invalid naming the key, not a crash deep in a resume', async () => {
    const { kv, base, cp } = setup();
    await runUnit(base);
    const entry = await kv.get(runStateKey(cp));
    await kv.put(runStateKey(cp), { ...(entry!.value as object), format: 2 });
    const err = await runUnit(base).catch((e) => e);
    expect(IngestError.is(err, 'state_invalid')).toBe(true);
    expect(err.retryable).toBe(false);
    expect(err.message).toContain(JSON.stringify(runStateKey(cp).key));
    expect(err.message).toMatch(/format 2.*newer version/);
  });

  it('a damaged run state, receipt or lease is state_invalid naming the key and the field', async () => {
    const { kv, base, cp } = setup();
    await kv.put(runStateKey(cp), { runId: 'r1', phase: 'bogus', mode: 'full' });
    const err = await runUnit(base).catch((e) => e);
    expect(IngestError.is(err, 'state_invalid')).toBe(true);
    expect(err.message).toContain(runStateKey(cp).key);
    expect(err.message).toMatch(/phase/);

    await kv.put(runStateKey(cp), null);
    await kv.put(receiptKey(runStateKey(cp), 'r2'), { runId: 'r2', outcome: 'maybe' });
    const bad = await runUnit({ ...base, runId: 'r2' }).catch((e) => e);
    expect(IngestError.is(bad, 'state_invalid'), String(bad)).toBe(true);
    expect(bad.message).toContain(receiptKey(runStateKey(cp), 'r2').key);

    await kv.put(leaseKey(cp), { state: 'held', owner: 42 });
    const lease = await runUnit(base).catch((e) => e);
    expect(IngestError.is(lease, 'state_invalid')).toBe(true);
    expect(lease.message).toContain(leaseKey(cp).key);
  });

  it('a run state written before formats (no `format`) still resumes', async () => {
    const { kv, base, cp, sink } = setup();
    const broken = {
      descriptor: sink.descriptor,
      async import(): Promise<never> {
        throw new Error('down');
      },
    };
    await runUnit({ ...base, sink: broken }).catch(() => undefined);
    const entry = await kv.get(runStateKey(cp));
    const { format: _f, ...legacy } = entry!.value as Record<string, unknown>;
    await kv.put(runStateKey(cp), legacy as never);
    const res = await runUnit(base);
    expect(res.resumed).toBe(true);
    expect(sink.rows('u')).toHaveLength(10);
  });
});
