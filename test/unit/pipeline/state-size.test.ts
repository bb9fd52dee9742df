import { describe, expect, it } from 'vitest';
import {
  checkpointKey,
  type Json,
  MemoryKvStore,
  MemoryStagingProvider,
  runUnit,
  type SourceEndpoint,
} from '../../../src/index.js';
import { receiptKey, runStateKey } from '../../../src/pipeline/keys.js';
import { MemorySink, MemorySource } from '../../../src/testing/index.js';

describe('committed run state and receipt keep one copy of the checkpoint (ADR 0017)', () => {
  it('a 20 kB checkpoint: the run state and the receipt each hold it once, not twice', async () => {
    const inner = new MemorySource({ units: { u: { rows: [{ id: 1 }] } } });
    const big = { boundary: 'f'.repeat(20_000) } as Json;
    const source: SourceEndpoint<Json> = {
      descriptor: { ...inner.descriptor, capabilities: ['ingest.full', 'ingest.incremental'] },
      async *read() {
        yield { rows: [{ id: 1 }], checkpoint: big };
      },
    };
    const kv = new MemoryKvStore();
    const res = await runUnit({
      source,
      sink: new MemorySink(),
      staging: new MemoryStagingProvider(),
      kv,
      unit: { endpointId: 'e', unitId: 'u' },
    });
    expect(res.newCheckpoint).toEqual(big);
    const cp = checkpointKey({ vendor: 'default', endpointId: 'e', unitId: 'u' });
    const size = (v: unknown) => JSON.stringify(v).length;
    const state = (await kv.get(runStateKey(cp)))!.value;
    const receipt = (await kv.get(receiptKey(runStateKey(cp), res.runId)))!.value;
    expect(size(state)).toBeLessThan(22_000);
    expect(size(receipt)).toBeLessThan(22_000);
    // a repeat of the run still answers with its checkpoint
    const again = await runUnit({
      source,
      sink: new MemorySink(),
      staging: new MemoryStagingProvider(),
      kv,
      unit: { endpointId: 'e', unitId: 'u' },
      runId: res.runId,
    });
    expect(again).toMatchObject({ repeated: true, newCheckpoint: big });
  });
});
