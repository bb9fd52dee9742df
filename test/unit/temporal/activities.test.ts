import { ApplicationFailure, CancelledFailure } from '@temporalio/activity';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import {
  checkpointKey,
  EndpointRegistry,
  type IngestionEvent,
  type KvStore,
  MemoryKvStore,
  MemoryObjectStore,
  ObjectStoreStagingProvider,
  type Row,
  type RunPolicy,
} from '../../../src/index.js';
import {
  createIngestionActivities,
  type IngestionActivitiesOptions,
  type IngestionActivityInput,
  type IngestionHeartbeatDetails,
  temporalRunId,
} from '../../../src/temporal/index.js';
import {
  failOnce,
  MemorySink,
  MemorySource,
  memorySinkDescriptor,
  memorySourceDescriptor,
  slow,
} from '../../../src/testing/index.js';

/** Temporal's worker logs every failed activity at WARN; these tests fail activities on purpose. */
const quiet = new DefaultLogger('ERROR', () => {});
const ROWS: Row[] = Array.from({ length: 600 }, (_, i) => ({
  id: i + 1,
  name: `user-${i + 1}`,
  score: (i * 37) % 101,
}));
const POLICY: RunPolicy = { sliceMaxRows: 100, chunkSize: 50, retry: { maxAttempts: 1 } };
const INPUT: IngestionActivityInput = { endpointId: 'crm', unitId: 'users', sinkId: 'lake', policy: POLICY };
const UNIT_KEY = checkpointKey({ vendor: 'memory', endpointId: 'crm', unitId: 'users', sinkId: 'lake' });

interface World {
  kv: KvStore;
  sink: MemorySink;
  store: MemoryObjectStore;
  heartbeats: IngestionHeartbeatDetails[];
  events: IngestionEvent[];
  activities: ReturnType<typeof createIngestionActivities>;
}

/** A worker's world: one KvStore, one staging store and one sink table shared by every attempt. */
function world(
  opts: { batchDelayMs?: number; sinkFaults?: number; extra?: Partial<IngestionActivitiesOptions> } = {},
): World {
  const kv = new MemoryKvStore();
  const store = new MemoryObjectStore({ bucket: 'staging' });
  const sink = new MemorySink();
  // a sink fault after part of the slices were imported: the retry must not duplicate them
  const faultySink = opts.sinkFaults ? failOnce(sink, { times: opts.sinkFaults, afterSlices: 2 }) : sink;
  const registry = new EndpointRegistry()
    .register(memorySourceDescriptor, (config) => {
      const source = new MemorySource(config);
      return opts.batchDelayMs ? slow(source, opts.batchDelayMs) : source;
    })
    .register(memorySinkDescriptor, () => faultySink);
  const events: IngestionEvent[] = [];
  const activities = createIngestionActivities({
    registry,
    staging: new ObjectStoreStagingProvider({ store }),
    kv,
    endpoints: {
      crm: {
        endpointId: 'memory',
        config: {
          units: {
            users: { rows: ROWS, cursorField: 'id', batchSize: 25 },
            few: { rows: ROWS.slice(0, 3), cursorField: 'id', batchSize: 1 },
          },
        },
      },
      lake: { endpointId: 'memory', config: {} },
    },
    heartbeatIntervalMs: 50,
    onEvent: (e) => events.push(e),
    ...opts.extra,
  });
  return { kv, sink, store, heartbeats: [], events, activities };
}

function env(w: World, info: Record<string, unknown> = {}): MockActivityEnvironment {
  const e = new MockActivityEnvironment(
    {
      activityId: 'ingest-users',
      workflowExecution: { workflowId: 'wf-users', runId: 'b7a7c0de-0000-4000-8000-000000000001' },
      heartbeatTimeoutMs: 2000,
      ...info,
    } as never,
    { logger: quiet },
  );
  e.on('heartbeat', (d: IngestionHeartbeatDetails) => w.heartbeats.push(d));
  return e;
}

/** `MockActivityEnvironment.run` with the activity's types kept. */
function call<I, O>(e: MockActivityEnvironment, fn: (input: I) => Promise<O>, input: I): Promise<O> {
  return e.run(fn, input) as Promise<O>;
}

async function until(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function uninterrupted() {
  const w = world();
  const result = await call(env(w), w.activities.runIngestionUnit, INPUT);
  return { w, result };
}

describe('runIngestionUnit under MockActivityEnvironment', () => {
  it('runs a unit end to end and returns the seed result shape with a stable run id', async () => {
    const { w, result } = await uninterrupted();
    expect(result.runId).toBe(
      temporalRunId({ workflowRunId: 'b7a7c0de-0000-4000-8000-000000000001', activityId: 'ingest-users' }),
    );
    expect(result.newCheckpoint).toEqual({ cursor: 600 });
    expect(result.stats).toMatchObject({ rowsExported: 600, rowsImported: 600, slices: 6 });
    expect(Date.parse(result.stats.completedAt)).toBeGreaterThanOrEqual(Date.parse(result.stats.startedAt));
    expect(result.stagingHandles).toHaveLength(6);
    expect(w.sink.rows('users')).toEqual(ROWS);
    const cp = await w.kv.get(UNIT_KEY);
    expect(cp?.value).toEqual({ cursor: 600 });
    expect(cp?.version).toBe(1);
    // the last heartbeat reports the finished run
    expect(w.heartbeats.at(-1)).toMatchObject({
      runId: result.runId,
      phase: 'committed',
      rowsExported: 600,
      rowsImported: 600,
    });
  });

  for (const hint of ['last heartbeat', 'stale heartbeat', 'no heartbeat details'] as const) {
    it(`cancelled mid-export, then retried with ${hint}: same target as an uninterrupted run, checkpoint moved once`, async () => {
      const { w: reference, result: expected } = await uninterrupted();

      const w = world({ batchDelayMs: 15 });
      const first = env(w);
      const running = call(first, w.activities.runIngestionUnit, INPUT);
      await until(() => w.heartbeats.some((h) => h.phase === 'exporting' && h.slicesStaged >= 2));
      first.cancel();
      const err = await running.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(CancelledFailure);
      // nothing landed, nothing committed, the run is resumable
      expect(w.sink.rows('users')).toEqual([]);
      expect(await w.kv.get(UNIT_KEY)).toBeUndefined();
      const last = w.heartbeats.at(-1)!;
      expect(last.phase).toBe('exporting');
      expect(last.rowsExported).toBeGreaterThan(0);
      expect(last.rowsExported).toBeLessThan(ROWS.length);

      const details =
        hint === 'last heartbeat'
          ? last
          : hint === 'stale heartbeat'
            ? { ...w.heartbeats[0], runId: 'some-other-run', phase: 'committed', rowsExported: 99_999 }
            : undefined;
      const retry = env(w, { attempt: 2, heartbeatDetails: details });
      const result = await call(retry, w.activities.runIngestionUnit, INPUT);

      expect(result.runId).toBe(last.runId);
      expect(w.events.some((e) => e.type === 'run.resumed')).toBe(true);
      expect(w.sink.rows('users')).toEqual(reference.sink.rows('users'));
      expect(result.newCheckpoint).toEqual(expected.newCheckpoint);
      expect(result.stats.rowsImported).toBe(ROWS.length);
      const cp = await w.kv.get(UNIT_KEY);
      expect(cp?.value).toEqual(expected.newCheckpoint);
      expect(cp?.version).toBe(1);
    });
  }

  it('a retry after the run committed returns the committed result without importing again', async () => {
    const { w, result } = await uninterrupted();
    const again = await call(env(w, { attempt: 2 }), w.activities.runIngestionUnit, INPUT);
    expect(again.newCheckpoint).toEqual(result.newCheckpoint);
    expect(w.sink.rows('users')).toEqual(ROWS);
    expect((await w.kv.get(UNIT_KEY))?.version).toBe(1);
  });
});

describe('exportIngestionUnit + importIngestionUnit', () => {
  it('split across two activities (and attempts) gives the same target as runIngestionUnit', async () => {
    const { w: reference } = await uninterrupted();
    const w = world();
    const exported = await call(env(w, { activityId: 'export-users' }), w.activities.exportIngestionUnit, INPUT);
    expect(exported.stats.rowsExported).toBe(ROWS.length);
    expect(exported.plannedCheckpoint).toEqual({ cursor: 600 });
    expect(await w.kv.get(UNIT_KEY)).toBeUndefined();
    const input = { ...INPUT, sessionRef: exported.sessionRef, stagingHandles: exported.stagingHandles };
    const imported = await call(env(w, { activityId: 'import-users' }), w.activities.importIngestionUnit, input);
    expect(imported.runId).toBe(exported.runId);
    expect(w.sink.rows('users')).toEqual(reference.sink.rows('users'));
    expect((await w.kv.get(UNIT_KEY))?.version).toBe(1);
  });

  it('a damaged staged slice fails the import non-retryably with type staging_corrupt; the checkpoint stays', async () => {
    const w = world();
    const exported = await call(env(w, { activityId: 'export-users' }), w.activities.exportIngestionUnit, INPUT);
    const victim = exported.stagingHandles[2];
    const chunks: Uint8Array[] = [];
    for await (const c of await w.store.get(victim.key)) chunks.push(c);
    const bytes = Buffer.concat(chunks);
    bytes[bytes.length - 5] ^= 0x01; // flip one bit inside the last row
    await w.store.put(victim.key, new Uint8Array(bytes));
    const input = { ...INPUT, sessionRef: exported.sessionRef };
    const err = await call(env(w, { activityId: 'import-users' }), w.activities.importIngestionUnit, input).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).type).toBe('staging_corrupt');
    expect((err as ApplicationFailure).nonRetryable).toBe(true);
    expect(await w.kv.get(UNIT_KEY)).toBeUndefined();
  });
});

describe('error mapping', () => {
  it('an invalid endpoint config is a non-retryable failure typed config_invalid that lists the issue', async () => {
    const w = world({
      extra: {
        endpoints: {
          crm: { endpointId: 'memory', config: { units: 'nope' } },
          lake: { endpointId: 'memory', config: {} },
        },
      },
    });
    const err = await call(env(w), w.activities.runIngestionUnit, INPUT).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).type).toBe('config_invalid');
    expect((err as ApplicationFailure).nonRetryable).toBe(true);
    expect((err as ApplicationFailure).message).toMatch(/units/);
  });

  it('an unknown endpoint id or bad input is config_invalid, before any I/O', async () => {
    const w = world();
    for (const input of [
      { ...INPUT, endpointId: 'nowhere' },
      { ...INPUT, unitId: '' },
      { ...INPUT, sinkId: undefined },
    ]) {
      const err = await call(env(w), w.activities.runIngestionUnit, input).catch((e: unknown) => e);
      expect((err as ApplicationFailure).type).toBe('config_invalid');
      expect((err as ApplicationFailure).nonRetryable).toBe(true);
    }
    expect(w.events).toEqual([]);
  });

  it('a failing sink is a retryable failure typed sink_failed; the retry lands the rows once', async () => {
    const w = world({ sinkFaults: 1 });
    const err = await call(env(w), w.activities.runIngestionUnit, INPUT).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).type).toBe('sink_failed');
    expect((err as ApplicationFailure).nonRetryable).toBe(false);
    expect(await w.kv.get(UNIT_KEY)).toBeUndefined();

    const result = await call(env(w, { attempt: 2 }), w.activities.runIngestionUnit, INPUT);
    expect(result.stats.rowsImported).toBe(ROWS.length);
    expect(w.sink.rows('users')).toEqual(ROWS);
    expect((await w.kv.get(UNIT_KEY))?.version).toBe(1);
  });

  it('createIngestionActivities refuses malformed options with config_invalid listing every issue', () => {
    let caught: unknown;
    try {
      createIngestionActivities({
        registry: {} as never,
        staging: {} as never,
        kv: {} as never,
        heartbeatIntervalMs: 0,
      });
    } catch (err) {
      caught = err;
    }
    expect((caught as { code?: string }).code).toBe('config_invalid');
    const message = (caught as Error).message;
    for (const name of ['registry', 'kv', 'heartbeatIntervalMs']) expect(message).toContain(name);
  });
});

describe('heartbeats', () => {
  it('are throttled to the interval (plus phase changes) however many events the pipeline emits', async () => {
    const w = world({ extra: { heartbeatIntervalMs: 250 } });
    const start = Date.now();
    const e = new MockActivityEnvironment({ activityId: 'ingest-users', heartbeatTimeoutMs: 2000 } as never, {
      logger: quiet,
    });
    const beats: Array<{ at: number; phase: string }> = [];
    e.on('heartbeat', (d: IngestionHeartbeatDetails) => beats.push({ at: Date.now(), phase: d.phase }));
    // one row per batch: hundreds of progress events
    const input = { ...INPUT, policy: { ...POLICY, chunkSize: 1 } };
    const activities = createIngestionActivities({
      registry: new EndpointRegistry()
        .register(memorySourceDescriptor, (c) => slow(new MemorySource(c), 1))
        .register(memorySinkDescriptor, () => w.sink),
      staging: new ObjectStoreStagingProvider({ store: w.store }),
      kv: w.kv,
      endpoints: {
        crm: { endpointId: 'memory', config: { units: { users: { rows: ROWS, cursorField: 'id', batchSize: 1 } } } },
        lake: { endpointId: 'memory', config: {} },
      },
      heartbeatIntervalMs: 250,
      onEvent: (ev) => w.events.push(ev),
    });
    await call(e, activities.runIngestionUnit, input);
    const elapsed = Date.now() - start;
    const phaseChanges = beats.filter((b, i) => i > 0 && b.phase !== beats[i - 1].phase).length;
    expect(w.events.length).toBeGreaterThan(300);
    expect(beats.length).toBeLessThanOrEqual(Math.ceil(elapsed / 250) + phaseChanges + 2);
    // never two heartbeats of the same phase closer than the interval
    for (let i = 1; i < beats.length; i++) {
      if (beats[i].phase === beats[i - 1].phase) expect(beats[i].at - beats[i - 1].at).toBeGreaterThanOrEqual(240);
    }
  });

  it('keep beating while a batch takes longer than the heartbeat interval', async () => {
    const w = world({ batchDelayMs: 600, extra: { heartbeatIntervalMs: 100 } });
    const e = env(w);
    await call(e, w.activities.runIngestionUnit, { ...INPUT, unitId: 'few' });
    // 3 batches of 1 row, each delayed 600 ms: the gaps between events are filled by keep-alives
    const gaps = w.heartbeats.slice(1).map((h, i) => Date.parse(h.at) - Date.parse(w.heartbeats[i].at));
    expect(Math.max(...gaps)).toBeLessThan(400);
  }, 30_000);
});

describe('temporalRunId', () => {
  it('is stable, keeps plain ids readable and makes any id safe and unique', () => {
    expect(temporalRunId({ workflowRunId: 'abc-123', activityId: '7' })).toBe('abc-123:7');
    const a = temporalRunId({ workflowRunId: 'r', activityId: 'ingest/users' });
    const b = temporalRunId({ workflowRunId: 'r', activityId: 'ingest_users' });
    expect(a).toMatch(/^[A-Za-z0-9._:-]+$/);
    expect(a).not.toBe(b);
    expect(temporalRunId({ workflowRunId: 'r', activityId: 'ingest/users' })).toBe(a);
    const long = temporalRunId({ workflowRunId: 'x'.repeat(500), activityId: '1' });
    expect(long.length).toBeLessThanOrEqual(200);
  });
});
