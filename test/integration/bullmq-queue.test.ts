/**
 * `@nucleus/ingestion/bullmq` against a real Redis, in one process (memory endpoints, staging and KvStore): job ids
 * BullMQ accepts, job data validation, one job per unit, job schedulers (every / cron), endpoint fan-out, and the
 * processor's mapping of outcomes to BullMQ (retry, UnrecoverableError, cancel, lease held, progress).
 */
import { type Job, Queue, QueueEvents } from 'bullmq';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createIngestionWorker,
  type IngestionJobData,
  type IngestionJobProgress,
  type IngestionJobResult,
  IngestionProducer,
  type IngestionWorker,
  ingestionJobDataSchema,
  ingestionJobId,
} from '../../src/bullmq/index.js';
import {
  checkpointKey,
  EndpointRegistry,
  IngestError,
  type KvStore,
  MemoryKvStore,
  MemoryStagingProvider,
  type Row,
  type SourceEndpoint,
} from '../../src/index.js';
import { leaseKey, runStateKey } from '../../src/pipeline/keys.js';
import {
  failAtBatch,
  MemorySink,
  MemorySource,
  memorySinkDescriptor,
  memorySourceDescriptor,
  slow,
} from '../../src/testing/index.js';
import { REDIS_URL, randomQueue, waitUntil } from './workers/bullmq-kit.js';

const redis = new URL(REDIS_URL);
const connection = { host: redis.hostname, port: Number(redis.port || 6379), maxRetriesPerRequest: null };
const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

const rows = (n: number): Row[] => Array.from({ length: n }, (_, i) => ({ id: i + 1, name: `row ${i + 1}` }));

interface Setup {
  queue: Queue;
  producer: IngestionProducer;
  kv: KvStore;
  sink: MemorySink;
  events: QueueEvents;
  start(opts?: { lockDurationMs?: number; leaseTtlMs?: number }): IngestionWorker;
  progress: Map<string, IngestionJobProgress[]>;
}

/** A queue of its own, a producer, and a worker factory over the given sources (by endpoint id). */
async function setup(sources: Record<string, SourceEndpoint<any>>): Promise<Setup> {
  const q = randomQueue('unit');
  const queue = new Queue(q.queue, { connection, prefix: q.prefix });
  const events = new QueueEvents(q.queue, { connection, prefix: q.prefix });
  await events.waitUntilReady();
  cleanups.push(async () => {
    await queue.obliterate({ force: true });
    await queue.close();
    await events.close();
  });
  const kv = new MemoryKvStore();
  const sink = new MemorySink();
  const staging = new MemoryStagingProvider();
  const registry = new EndpointRegistry()
    .register(memorySourceDescriptor, (config) => sources[config.id!]!)
    .register(memorySinkDescriptor, () => sink);
  const endpoints = Object.fromEntries(
    Object.keys(sources).map((id) => [id, { endpointId: 'memory', config: { id, units: {} } }]),
  );
  const progress = new Map<string, IngestionJobProgress[]>();
  const producer = new IngestionProducer({
    queue,
    jobOptions: { attempts: 3, backoff: { type: 'fixed', delay: 100 } },
  });
  return {
    queue,
    producer,
    kv,
    sink,
    events,
    progress,
    start(opts = {}) {
      const w = createIngestionWorker({
        queueName: q.queue,
        prefix: q.prefix,
        connection,
        registry,
        endpoints: { ...endpoints, lake: { endpointId: 'memory', config: {} } },
        staging,
        kv,
        defaultSinkId: 'lake',
        lockDurationMs: opts.lockDurationMs ?? 2000,
        policy: { chunkSize: 100, sliceMaxRows: 200, ...(opts.leaseTtlMs ? { leaseTtlMs: opts.leaseTtlMs } : {}) },
        progressIntervalMs: 50,
      });
      w.worker.on('progress', (job, p) =>
        progress.set(String(job.id), [...(progress.get(String(job.id)) ?? []), p as IngestionJobProgress]),
      );
      cleanups.push(() => w.close());
      return w;
    },
  };
}

/** Wait for a job's end through QueueEvents: its return value, or its failure. */
function finished(s: Setup, jobId: string, timeoutMs = 30_000) {
  return new Promise<{ ok: true; result: IngestionJobResult } | { ok: false; reason: string }>((res, rej) => {
    const t = setTimeout(() => rej(new Error(`job ${jobId} did not finish in ${timeoutMs} ms`)), timeoutMs);
    const onDone = ({ jobId: id, returnvalue }: { jobId: string; returnvalue: unknown }) => {
      if (id !== jobId) return;
      off();
      res({
        ok: true,
        result: (typeof returnvalue === 'string' ? JSON.parse(returnvalue) : returnvalue) as IngestionJobResult,
      });
    };
    const onFail = ({ jobId: id, failedReason }: { jobId: string; failedReason: string }) => {
      if (id !== jobId) return;
      off();
      res({ ok: false, reason: failedReason });
    };
    const off = () => {
      clearTimeout(t);
      s.events.off('completed', onDone);
      s.events.off('failed', onFail);
    };
    s.events.on('completed', onDone);
    s.events.on('failed', onFail);
  });
}

const unitData = (unitId: string, extra: Partial<IngestionJobData> = {}): IngestionJobData => ({
  endpointId: 'crm',
  unitId,
  sinkId: 'lake',
  ...extra,
});

describe('job ids and job data', () => {
  it('job ids never contain ":" nor look like integers, stay distinct when names fold alike, and BullMQ takes them', async () => {
    const cases = [
      { endpointId: 'crm', unitId: 'public.orders', sinkId: 'lake' },
      { endpointId: 'crm', unitId: 'public:orders', sinkId: 'lake' },
      { endpointId: 'crm', unitId: 'public_orders', sinkId: 'lake' },
      { endpointId: 'crm', unitId: 'public orders', sinkId: 'lake' },
      { endpointId: 'crm', unitId: 'public.orders' },
      { endpointId: 'crm', unitId: 'public.orders', sinkId: 'lake', workspaceId: 'acme' },
      { endpointId: '1', unitId: '2' },
      { endpointId: 'crm', unitId: 'ünï/cødé::x' },
      { endpointId: 'crm', unitId: 'x'.repeat(500) },
    ];
    const ids = cases.map(ingestionJobId);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) {
      expect(id).not.toContain(':');
      expect(`${Number.parseInt(id, 10)}`).not.toBe(id);
      expect(id).toMatch(/^[A-Za-z0-9._-]+$/);
      expect(id.length).toBeLessThanOrEqual(160);
    }
    expect(ingestionJobId(cases[0])).toBe(ingestionJobId({ ...cases[0] }));
    const s = await setup({});
    for (const [i, c] of cases.entries()) {
      const r = await s.producer.enqueueUnit(c);
      expect(r).toEqual({ jobId: ids[i], unitId: c.unitId, added: true });
    }
    expect(await s.queue.getWaitingCount()).toBe(cases.length);
  });

  it('job data is ids only: unknown fields, credentials and bad policies are refused before Redis sees them', async () => {
    const s = await setup({});
    const bad: Array<[unknown, RegExp]> = [
      [{ ...unitData('u'), config: { password: 'hunter2' } }, /Unrecognized key/],
      [unitData('u', { endpointId: 'postgres://app:hunter2@db/shop' }), /not a credential/],
      [unitData('u', { unitId: 'token=abc123' }), /not a credential/],
      [unitData(''), /unitId/],
      [unitData('u', { policy: { leaseTtlMs: -1 } }), /leaseTtlMs/],
      [unitData('u', { policy: { secret: 'x' } as never }), /Unrecognized key/],
      [unitData('u', { mode: 'sometimes' as never }), /mode/],
      [unitData('a\u0000b'), /control characters/],
    ];
    for (const [data, re] of bad) {
      const err = await s.producer.enqueueUnit(data as IngestionJobData).catch((e) => e);
      expect(IngestError.is(err, 'config_invalid'), String(err)).toBe(true);
      expect(err.message).toMatch(re);
      expect(err.message).not.toContain('hunter2');
    }
    expect(await s.queue.count()).toBe(0);
    expect(
      ingestionJobDataSchema.safeParse(unitData('public.orders', { disposition: 'merge', primaryKey: ['id'] })).success,
    ).toBe(true);
  });
});

describe('producer', () => {
  it('one job per unit: enqueuing a queued unit adds nothing; a finished unit can be queued again', async () => {
    const s = await setup({
      crm: new MemorySource({ id: 'crm', units: { users: { rows: rows(10), cursorField: 'id' } } }),
    });
    const a = await s.producer.enqueueUnit(unitData('users'));
    const b = await s.producer.enqueueUnit(unitData('users'));
    const c = await s.producer.enqueueUnit(unitData('users', { mode: 'full' }));
    expect(a.added).toBe(true);
    expect(b).toEqual({ jobId: a.jobId, unitId: 'users', added: false, state: 'waiting' });
    expect(c.added).toBe(false);
    expect(await s.queue.getWaitingCount()).toBe(1);

    const done = finished(s, a.jobId);
    s.start();
    expect(await done).toMatchObject({ ok: true, result: { status: 'committed', stats: { rowsImported: 10 } } });
    expect(s.sink.rows('users')).toHaveLength(10);
    // removeOnComplete freed the id: the unit is queued again and runs incrementally (no new rows).
    const again = await s.producer.enqueueUnit(unitData('users'));
    expect(again.added).toBe(true);
    expect(await finished(s, again.jobId)).toMatchObject({ ok: true, result: { stats: { rowsImported: 0 } } });
    expect(s.sink.rows('users')).toHaveLength(10);
  });

  it('a finished job kept by BullMQ (removeOnComplete: false) does not block the next enqueue', async () => {
    const source = new MemorySource({ id: 'crm', units: { users: { rows: rows(5), cursorField: 'id' } } });
    const s = await setup({ crm: source });
    const producer = new IngestionProducer({ queue: s.queue, jobOptions: { removeOnComplete: false } });
    const a = await producer.enqueueUnit(unitData('users'));
    const done = finished(s, a.jobId);
    s.start();
    await done;
    expect(await (await s.queue.getJob(a.jobId))!.getState()).toBe('completed');
    source.setRows('users', rows(8));
    const b = await producer.enqueueUnit(unitData('users'));
    expect(b).toMatchObject({ jobId: a.jobId, added: true });
    expect(await finished(s, b.jobId)).toMatchObject({ ok: true, result: { stats: { rowsImported: 3 } } });
    expect(s.sink.rows('users')).toHaveLength(8);
  });

  it('schedules per unit: every N ms and cron, upsert updates in place, unschedule removes; ticks run the unit', async () => {
    const source = new MemorySource({ id: 'crm', units: { users: { rows: rows(3), cursorField: 'id' } } });
    const s = await setup({ crm: source });
    const every = await s.producer.scheduleUnit(unitData('users'), { every: 300 });
    expect(every.schedulerId).toBe(ingestionJobId(unitData('users')));
    const cron = await s.producer.scheduleUnit(unitData('orders'), { pattern: '0 3 * * *', tz: 'Europe/Paris' });
    await s.producer.scheduleUnit(unitData('orders'), { pattern: '30 4 * * 1' });
    expect(await s.queue.getJobSchedulersCount()).toBe(2);
    expect(await s.queue.getJobScheduler(every.schedulerId)).toMatchObject({ every: 300 });
    expect(await s.queue.getJobScheduler(cron.schedulerId)).toMatchObject({ pattern: '30 4 * * 1' });
    for (const bad of [{}, { every: 1000, pattern: '* * * * *' }, { every: 0 }]) {
      const err = await s.producer.scheduleUnit(unitData('users'), bad).catch((e) => e);
      expect(IngestError.is(err, 'config_invalid'), String(err)).toBe(true);
    }

    const results: IngestionJobResult[] = [];
    const w = s.start();
    w.worker.on('completed', (_job, r) => results.push(r));
    await waitUntil(() => results.length >= 3, 20_000, 'three scheduler ticks');
    expect(results[0]).toMatchObject({ status: 'committed', stats: { rowsImported: 3 } });
    expect(s.sink.rows('users')).toHaveLength(3); // later ticks are incremental: nothing new
    source.setRows('users', rows(5));
    await waitUntil(() => s.sink.rows('users').length === 5, 20_000, 'a tick to pick up the new rows');
    expect(await s.producer.unscheduleUnit(unitData('users'))).toBe(true);
    expect(await s.producer.unscheduleUnit(unitData('users'))).toBe(false);
    expect(await s.producer.unscheduleUnit(unitData('orders'))).toBe(true);
  });

  it('fans out every unit of an endpoint from collectMetadata, with per-unit fields and skips', async () => {
    const source = new MemorySource({
      id: 'crm',
      units: {
        users: { rows: rows(4), cursorField: 'id' },
        orders: { rows: rows(6), cursorField: 'id' },
        audit: { rows: rows(2) },
      },
    });
    const s = await setup({ crm: source });
    const registry = new EndpointRegistry().register(memorySourceDescriptor, () => source);
    const producer = new IngestionProducer({
      queue: s.queue,
      registry,
      endpoints: { crm: { endpointId: 'memory', config: { id: 'crm', units: {} } } },
    });
    const out = await producer.enqueueEndpoint({
      endpointId: 'crm',
      sinkId: 'lake',
      forUnit: (u) =>
        u.unitId === 'audit' ? false : u.unitId === 'orders' ? { disposition: 'merge', primaryKey: ['id'] } : undefined,
    });
    expect(out.map((r) => [r.unitId, r.added])).toEqual([
      ['users', true],
      ['orders', true],
    ]);
    const jobs = await s.queue.getWaiting();
    expect(jobs.map((j) => j.data).sort((a, b) => a.unitId.localeCompare(b.unitId))).toEqual([
      { endpointId: 'crm', sinkId: 'lake', unitId: 'orders', disposition: 'merge', primaryKey: ['id'] },
      { endpointId: 'crm', sinkId: 'lake', unitId: 'users' },
    ]);
    const again = await producer.enqueueEndpoint({ endpointId: 'crm', sinkId: 'lake' });
    expect(again.map((r) => [r.unitId, r.added])).toEqual([
      ['users', false],
      ['orders', false],
      ['audit', true],
    ]);
    const scheduled = await producer.enqueueEndpoint({
      endpointId: 'crm',
      sinkId: 'lake',
      schedule: { every: 60_000 },
    });
    expect(scheduled).toHaveLength(3);
    expect(await s.queue.getJobSchedulersCount()).toBe(3);
    const noRegistry = await s.producer.enqueueEndpoint({ endpointId: 'crm' }).catch((e) => e);
    expect(IngestError.is(noRegistry, 'config_invalid')).toBe(true);
  });
});

describe('processor', () => {
  it('reports throttled progress and returns the run result', async () => {
    const s = await setup({
      crm: new MemorySource({ id: 'crm', units: { users: { rows: rows(1000), cursorField: 'id', batchSize: 50 } } }),
    });
    const events: string[] = [];
    const { jobId } = await s.producer.enqueueUnit(unitData('users'));
    const done = finished(s, jobId);
    const w = s.start();
    w.worker.on('active', () => events.push('active'));
    const r = await done;
    expect(r).toMatchObject({
      ok: true,
      result: { status: 'committed', resumed: false, stats: { rowsExported: 1000, rowsImported: 1000, slices: 5 } },
    });
    const p = s.progress.get(jobId) ?? [];
    expect(p.length).toBeGreaterThanOrEqual(3);
    expect(p.length).toBeLessThan(60); // far fewer than the pipeline's events (20 batches, 5 slices, 10 import chunks)
    expect(p.at(-1)).toMatchObject({ phase: 'committed', rowsImported: 1000 });
    expect([...new Set(p.map((x) => x.phase))]).toEqual(
      expect.arrayContaining(['starting', 'exporting', 'importing', 'committed']),
    );
  });

  it('a retryable failure is retried by BullMQ and resumes the same run; a non-retryable one fails at once', async () => {
    const flaky = failAtBatch(
      new MemorySource({ id: 'crm', units: { users: { rows: rows(600), cursorField: 'id', batchSize: 100 } } }),
      4,
      {
        error: new IngestError('source_failed', 'connection reset', { retryable: true }),
        times: 1,
      },
    );
    const broken = failAtBatch(new MemorySource({ id: 'bad', units: { users: { rows: rows(10) } } }), 1, {
      error: new IngestError('row_rejected', 'row 1 does not fit', { retryable: false }),
      times: 10,
    });
    const s = await setup({ crm: flaky, bad: broken });
    const a = await s.producer.enqueueUnit(unitData('users'));
    const b = await s.producer.enqueueUnit(unitData('users', { endpointId: 'bad' }));
    const [ra, rb] = [finished(s, a.jobId), finished(s, b.jobId)];
    s.start();
    expect(await ra).toMatchObject({ ok: true, result: { status: 'committed', stats: { rowsImported: 600 } } });
    expect(flaky.faultsInjected).toBe(1);
    expect(s.sink.rows('users')).toHaveLength(600);
    const failed = await rb;
    expect(failed).toMatchObject({ ok: false });
    expect((failed as { reason: string }).reason).toMatch(/^\[row_rejected\]/);
    const job = (await s.queue.getJob(b.jobId)) as Job;
    expect(job.attemptsMade).toBe(1); // UnrecoverableError: no retry although attempts is 3
    expect(broken.faultsInjected).toBe(1);
  });

  it('cancel stops the run (no retry), leaves nothing behind before a slice is staged, and the next job runs it', async () => {
    const base = new MemorySource({
      id: 'crm',
      units: { users: { rows: rows(400), cursorField: 'id', batchSize: 50 } },
    });
    let slowNow = true;
    const gated: SourceEndpoint<any> = {
      descriptor: base.descriptor,
      read: (req, ctx) => (slowNow ? slow(base, 300).read(req, ctx) : base.read(req, ctx)),
    };
    const s = await setup({ crm: gated });
    const { jobId } = await s.producer.enqueueUnit(unitData('users'));
    const done = finished(s, jobId);
    const w = s.start();
    await waitUntil(() => (s.progress.get(jobId) ?? []).some((p) => p.phase === 'exporting'), 20_000, 'export');
    expect(w.cancel(jobId, 'user asked')).toBe(true);
    const r = await done;
    expect(r).toMatchObject({ ok: false });
    expect((r as { reason: string }).reason).toMatch(/^\[aborted\] .*cancelled: user asked/);
    expect(((await s.queue.getJob(jobId)) as Job).attemptsMade).toBe(1);
    const key = checkpointKey({ vendor: 'memory', endpointId: 'crm', unitId: 'users', sinkId: 'lake' });
    expect(await s.kv.get(key)).toBeUndefined(); // checkpoint untouched
    expect((await s.kv.get<{ state: string }>(leaseKey(key)))?.value.state).toBe('released');
    // Cancelled before its first slice was staged: the run leaves no run state behind (issue 11, item 5).
    expect((await s.kv.get(runStateKey(key)))?.value ?? undefined).toBeUndefined(); // rolled back: `null`
    expect(w.cancel(jobId)).toBe(false);

    slowNow = false;
    const again = await s.producer.enqueueUnit(unitData('users'));
    expect(await finished(s, again.jobId)).toMatchObject({
      ok: true,
      result: { resumed: false, stats: { rowsImported: 400 } },
    });
    expect(s.sink.rows('users')).toHaveLength(400);
  });

  it('a held lease delays a unit job until it expires (no attempt spent); a scheduler tick is skipped', async () => {
    const s = await setup({
      crm: new MemorySource({ id: 'crm', units: { users: { rows: rows(20), cursorField: 'id' } } }),
    });
    const key = leaseKey(checkpointKey({ vendor: 'memory', endpointId: 'crm', unitId: 'users', sinkId: 'lake' }));
    const hold = async (ms: number) => {
      const now = Date.now();
      const cur = await s.kv.get(key);
      await s.kv.put(
        key,
        {
          state: 'held',
          owner: 'someone-else',
          runId: 'other-run',
          acquiredAt: new Date(now).toISOString(),
          expiresAt: new Date(now + ms).toISOString(),
        },
        { expectedVersion: cur ? cur.version : null, ttlMs: ms },
      );
      return now + ms;
    };
    const expiresAt = await hold(1500);
    const { jobId } = await s.producer.enqueueUnit(unitData('users'));
    const done = finished(s, jobId);
    const failures: string[] = [];
    const w = s.start();
    w.worker.on('failed', (_j, e) => failures.push(e.message));
    const r = await done;
    expect(r).toMatchObject({ ok: true, result: { status: 'committed', stats: { rowsImported: 20 } } });
    expect(Date.now()).toBeGreaterThanOrEqual(expiresAt);
    expect(failures).toEqual([]);

    await hold(60_000);
    const ticks: IngestionJobResult[] = [];
    w.worker.on('completed', (j, res) => {
      if (j.repeatJobKey) ticks.push(res);
    });
    await s.producer.scheduleUnit(unitData('users'), { every: 200, limit: 1, immediately: true });
    await waitUntil(() => ticks.length >= 1, 20_000, 'a scheduler tick');
    expect(ticks[0], JSON.stringify({ ticks, lease: await s.kv.get(key) })).toMatchObject({ status: 'skipped' });
    expect(ticks[0].reason).toMatch(/someone-else/);
  });

  it('the lease may not outlive the lock: refused at start and per job', async () => {
    const s = await setup({ crm: new MemorySource({ id: 'crm', units: { users: { rows: rows(2) } } }) });
    const err = (() => {
      try {
        s.start({ lockDurationMs: 2000, leaseTtlMs: 5000 });
      } catch (e) {
        return e;
      }
    })();
    expect(IngestError.is(err, 'config_invalid')).toBe(true);
    expect((err as Error).message).toMatch(/leaseTtlMs \(5000\) exceeds the worker's lockDuration \(2000\)/);
    const { jobId } = await s.producer.enqueueUnit(unitData('users', { policy: { leaseTtlMs: 10_000 } }));
    const done = finished(s, jobId);
    s.start({ lockDurationMs: 2000 });
    const r = await done;
    expect((r as { reason: string }).reason).toMatch(/^\[config_invalid\].*exceeds the worker's lockDuration/);
    // Job data written to Redis by someone else is validated on the worker too.
    const raw = await s.queue.add('ingest-unit', { ...unitData('users'), config: { password: 'hunter2' } } as never, {
      jobId: 'raw-job',
    });
    const rawDone = await finished(s, raw.id!);
    expect((rawDone as { reason: string }).reason).toMatch(/^\[config_invalid\] Invalid data of job raw-job/);
    expect((rawDone as { reason: string }).reason).not.toContain('hunter2');
  });
});
