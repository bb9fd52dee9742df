import { describe, expect, it } from 'vitest';
import {
  IngestError,
  type KvKey,
  type KvStore,
  MemoryKvStore,
  MemoryStagingProvider,
  runUnit,
} from '../../../src/index.js';
import { MemorySink, MemorySource, slow } from '../../../src/testing/index.js';

/** A MemoryKvStore whose calls on keys matching `hangOn` never answer once `armed` is set. */
function hangingKv(hangOn: (key: KvKey, op: string) => boolean) {
  const inner = new MemoryKvStore();
  const state = { armed: false, hung: 0 };
  const never = <T>(): Promise<T> => {
    state.hung++;
    return new Promise<T>(() => {});
  };
  const kv: KvStore = {
    get: (key) => (state.armed && hangOn(key, 'get') ? never() : inner.get(key)),
    put: (key, value, opts) => (state.armed && hangOn(key, 'put') ? never() : inner.put(key, value, opts)),
    delete: (key, opts) => inner.delete(key, opts),
    list: (prefix) => inner.list(prefix),
  };
  return { kv, state };
}

const rows = Array.from({ length: 30 }, (_, i) => ({ id: i + 1 }));

describe('time limits on KvStore calls (ADR 0017)', () => {
  it('a checkpoint write that hangs fails the run with `timeout` instead of stalling the commit', async () => {
    const { kv, state } = hangingKv((key, op) => op === 'put' && key.key.endsWith('::sink::'));
    const source = new MemorySource({ units: { u: { rows, cursorField: 'id' } } });
    const sink = new MemorySink();
    let armed = false;
    const started = Date.now();
    const err = await runUnit({
      source,
      sink,
      staging: new MemoryStagingProvider(),
      kv,
      unit: { endpointId: 'e', unitId: 'u' },
      policy: { kvTimeoutMs: 300, retry: { maxAttempts: 1 } },
      onEvent: (e) => {
        if (e.type === 'export.completed' && !armed) {
          armed = true;
          state.armed = true;
        }
      },
    }).catch((e) => e);
    expect(state.hung).toBeGreaterThan(0);
    expect(IngestError.is(err, 'timeout')).toBe(true);
    expect(err.message).toMatch(/KvStore\.put of ".*::sink::" took longer than 300 ms/);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('a lease renewal that hangs aborts the run (fenced) within a few renewal periods', async () => {
    const { kv, state } = hangingKv((key, op) => op === 'put' && key.key.endsWith('::lease'));
    const source = slow(new MemorySource({ units: { u: { rows, cursorField: 'id', batchSize: 1 } } }), 100);
    let armed = false;
    const started = Date.now();
    const err = await runUnit({
      source,
      sink: new MemorySink(),
      staging: new MemoryStagingProvider(),
      kv,
      unit: { endpointId: 'e', unitId: 'u' },
      policy: { leaseTtlMs: 300, retry: { maxAttempts: 1 } },
      onEvent: (e) => {
        if (e.type === 'run.started' && !armed) {
          armed = true;
          state.armed = true;
        }
      },
    }).catch((e) => e);
    expect(state.hung).toBeGreaterThan(0);
    expect(IngestError.is(err, 'lease_lost', 'timeout', 'aborted')).toBe(true);
    expect(Date.now() - started).toBeLessThan(2_500);
  });
});
