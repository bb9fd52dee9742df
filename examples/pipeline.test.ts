/**
 * How a user unit-tests a pipeline: in-memory staging and KV, the memory source/sink and fault wrappers.
 * Runs with the repository's `npm test`.
 */
import { checkpointKey, IngestError, MemoryKvStore, MemoryStagingProvider, runUnit } from '@nucleus/ingestion';
import { failOnce, MemorySink, MemorySource } from '@nucleus/ingestion/testing';
import { describe, expect, it } from 'vitest';

const rows = Array.from({ length: 30 }, (_, i) => ({ id: i + 1, email: `user${i + 1}@example.com` }));

describe('my users pipeline', () => {
  it('delivers every row once, even when the sink fails the first time', async () => {
    const source = new MemorySource({ units: { users: { rows, cursorColumns: ['id'], batchSize: 7 } } });
    const sink = new MemorySink();
    const kv = new MemoryKvStore();
    const staging = new MemoryStagingProvider();
    const unit = { vendor: 'memory', endpointId: 'crm', unitId: 'users' };

    const failed = await runUnit({
      source,
      sink: failOnce(sink, { afterSlices: 0 }),
      staging,
      kv,
      unit,
      policy: { retry: { maxAttempts: 1 } },
    }).catch((e) => e);
    expect(IngestError.is(failed, 'sink_failed')).toBe(true);
    expect(await kv.get(checkpointKey(unit))).toBeUndefined();

    const ok = await runUnit({ source, sink, staging, kv, unit });
    expect(ok.resumed).toBe(true);
    expect(sink.rows('users').map((r) => r.id)).toEqual(rows.map((r) => r.id));
    expect((await kv.get(checkpointKey(unit)))?.value).toEqual({ cursor: 30 });
  });
});
