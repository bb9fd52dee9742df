import { describe, expect, it } from 'vitest';
import {
  checkpointKey,
  IngestError,
  type IngestionEvent,
  isTransientError,
  type KvKey,
  type KvStore,
  MemoryKvStore,
  MemoryStagingProvider,
  type Row,
  runUnit,
} from '../../../src/index.js';
import { MemorySink, MemorySource } from '../../../src/testing/index.js';
import { isRetryable, withRetry } from '../../../src/util/retry.js';

const sys = (code: string) => Object.assign(new Error(`boom ${code}`), { code });

describe('retries: only known-transient failures are retryable (ADR 0017)', () => {
  it('IngestError.wrap of an unknown error is not retryable; of a transient one it is', () => {
    expect(IngestError.wrap(new TypeError('x is undefined'), 'sink_failed', 'Sink failed').retryable).toBe(false);
    expect(IngestError.wrap(new Error('disk full on target'), 'source_failed', 'Source failed').retryable).toBe(false);
    expect(IngestError.wrap('a string', 'staging_failed', 'Staging failed').retryable).toBe(false);
    expect(new IngestError('kv_failed', 'no cause').retryable).toBe(false);
    for (const transient of [
      sys('ECONNRESET'),
      sys('ETIMEDOUT'),
      sys('40001'), // serialization failure
      sys('40P01'), // deadlock
      sys('55P03'), // lock not available
      sys('08006'), // connection failure
      Object.assign(new Error('Deadlock found'), { errno: 1213, code: 'ER_LOCK_DEADLOCK' }),
      Object.assign(new Error('Lock wait timeout'), { errno: 1205 }),
      Object.assign(new Error('Service Unavailable'), { status: 503 }),
      Object.assign(new Error('slow down'), { name: 'SlowDown', $metadata: { httpStatusCode: 503 } }),
      Object.assign(new Error('too many'), { statusCode: 429 }),
      new Error('outer', { cause: sys('ECONNREFUSED') }),
    ]) {
      expect(isTransientError(transient), transient.message).toBe(true);
      expect(IngestError.wrap(transient, 'sink_failed', 'Sink failed').retryable, transient.message).toBe(true);
    }
    for (const permanent of [
      sys('23505'), // unique violation
      sys('42P01'), // undefined table
      Object.assign(new Error('Duplicate entry'), { errno: 1062 }),
      Object.assign(new Error('Not found'), { status: 404 }),
      Object.assign(new Error('Not implemented'), { status: 501 }),
      sys('EACCES'),
      new RangeError('Invalid array length'),
    ]) {
      expect(isTransientError(permanent), permanent.message).toBe(false);
      expect(IngestError.wrap(permanent, 'sink_failed', 'Sink failed').retryable, permanent.message).toBe(false);
    }
    // an explicit choice still wins, and an IngestError cause keeps its own verdict
    expect(new IngestError('sink_failed', 'x', { cause: new TypeError('t'), retryable: true }).retryable).toBe(true);
    const inner = new IngestError('lease_held', 'held');
    expect(new IngestError('sink_failed', 'x', { cause: inner }).retryable).toBe(true);
  });

  it('a TypeError in a sink is imported once, not three times, and fails non-retryable', async () => {
    const rows: Row[] = Array.from({ length: 30 }, (_, i) => ({ id: BigInt(i + 1) }));
    const source = new MemorySource({ units: { u: { rows, cursorField: 'id' } } });
    const inner = new MemorySink();
    let imports = 0;
    const sink = {
      descriptor: inner.descriptor,
      async import() {
        imports++;
        const broken: { rows?: number[] } = {};
        return { rowsImported: broken.rows!.length }; // TypeError: a bug in the sink
      },
    };
    const events: IngestionEvent[] = [];
    const err = await runUnit({
      source,
      sink,
      staging: new MemoryStagingProvider(),
      kv: new MemoryKvStore(),
      unit: { endpointId: 'mem', unitId: 'u' },
      policy: { retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 2 } },
      onEvent: (e) => events.push(e),
    }).catch((e) => e);
    expect(IngestError.is(err, 'sink_failed')).toBe(true);
    expect(err.retryable).toBe(false);
    expect(imports).toBe(1);
    expect(events.filter((e) => e.type === 'retry.scheduled')).toEqual([]);
    expect(checkpointKey({ endpointId: 'mem', unitId: 'u', vendor: 'default' }).key).toContain('mem');
  });

  it('a KvStore that throws an unknown error fails the run kv_failed, not retryable; a reset is retryable', async () => {
    for (const [thrown, retryable] of [
      [new TypeError('store bug'), false],
      [sys('ECONNRESET'), true],
    ] as const) {
      const inner = new MemoryKvStore();
      const kv: KvStore = {
        get: ((k: KvKey) => (k.key.endsWith('::sink::') ? Promise.reject(thrown) : inner.get(k))) as KvStore['get'],
        put: inner.put.bind(inner),
        delete: inner.delete.bind(inner),
        list: inner.list.bind(inner),
      };
      const err = await runUnit({
        source: new MemorySource({ units: { u: { rows: [{ id: 1n }], cursorField: 'id' } } }),
        sink: new MemorySink(),
        staging: new MemoryStagingProvider(),
        kv,
        unit: { endpointId: 'mem', unitId: 'u' },
      }).catch((e) => e);
      expect(err).toMatchObject({ code: 'kv_failed', retryable });
    }
  });

  it('nested layers do not multiply: an error an inner layer gave up on is not retried by the outer one', async () => {
    let calls = 0;
    const policy = { maxAttempts: 3, baseDelayMs: 0, maxDelayMs: 0 };
    const err = await withRetry(
      () =>
        withRetry(
          async () => {
            calls++;
            throw new IngestError('staging_failed', 'reset', { cause: sys('ECONNRESET') });
          },
          policy,
          { layer: 'store' },
        ),
      policy,
      { layer: 'phase' },
    ).catch((e) => e);
    expect(calls).toBe(3); // not 9
    expect(err).toMatchObject({
      code: 'staging_failed',
      retryable: true,
      details: { retriedBy: 'store', attempts: 3 },
    });
    // the orchestrator still sees a retryable error (it retries the run later, resuming from staging)
    expect(err.retryable).toBe(true);
    expect(isRetryable(err)).toBe(false);
  });
});
