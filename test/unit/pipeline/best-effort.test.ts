import { describe, expect, it } from 'vitest';
import {
  IngestError,
  type KvStore,
  MemoryKvStore,
  MemoryStagingProvider,
  runUnit,
  type StagingProvider,
} from '../../../src/index.js';
import { MemorySink, MemorySource } from '../../../src/testing/index.js';

describe('best-effort steps leave a trace (ADR 0017)', () => {
  it('a landing repair that cannot reopen the session logs a warning instead of failing silently', async () => {
    const inner = new MemoryKvStore();
    let crashAtCommit = true;
    const kv: KvStore = {
      get: (k) => inner.get(k),
      put: (k, v, o) => {
        // the process dies after the checkpoint and the receipt, before the run state says `committed`
        if (crashAtCommit && k.key.endsWith('::run') && (v as { phase?: string })?.phase === 'committed')
          return Promise.reject(new TypeError('simulated crash'));
        return inner.put(k, v, o);
      },
      delete: (k, o) => inner.delete(k, o),
      list: (p) => inner.list(p),
    };
    const memory = new MemoryStagingProvider();
    let reopenFails = false;
    const staging: StagingProvider = {
      id: memory.id,
      allocateSession: (ctx) => memory.allocateSession(ctx),
      openSession: (ref) =>
        reopenFails
          ? Promise.reject(Object.assign(new Error('staging store unreachable'), { code: 'ECONNRESET' }))
          : memory.openSession(ref),
      sweep: (o) => memory.sweep(o),
    };
    const warnings: Array<{ message: string; fields?: Record<string, unknown> }> = [];
    const logger = {
      debug() {},
      info() {},
      warn: (message: string, fields?: Record<string, unknown>) => warnings.push({ message, fields }),
      error() {},
    };
    const rows = Array.from({ length: 5 }, (_, i) => ({ id: i + 1 }));
    const source = new MemorySource({ units: { u: { rows, cursorField: 'id' } } });
    const base = { source, sink: new MemorySink(), staging, kv, unit: { endpointId: 'e', unitId: 'u' }, logger };
    const err = await runUnit({ ...base, policy: { retry: { maxAttempts: 1 } } }).catch((e) => e);
    expect(IngestError.is(err)).toBe(true);
    crashAtCommit = false;
    reopenFails = true;
    warnings.length = 0;
    const next = await runUnit(base);
    expect(next.repeated ?? false).toBe(false);
    const trace = warnings.find((w) => /reopening the landed run's session/.test(w.message));
    expect(trace, JSON.stringify(warnings)).toBeDefined();
    expect(trace!.message).toMatch(/failed \(best effort; continuing\)/);
    expect(String(trace!.fields?.error)).toMatch(/ECONNRESET/);
  });
});
