/**
 * Scale-out on BullMQ with real worker processes, real Redis, PostgreSQL and the local S3 server:
 *
 * 1. three workers, twelve units (PostgreSQL tables → S3 staging → PostgreSQL, merge and append); the worker that
 *    runs one unit is SIGKILLed in the middle of its import. Every unit completes; the killed unit resumes on
 *    another worker from its staged data (its source is read exactly once); SQL finds no row lost or duplicated;
 *    the lease history shows no two workers holding one unit at once.
 * 2. SIGTERM to a worker busy importing: its run stops cleanly (lease released, job handed back, process exits 0)
 *    and another worker finishes it from staging. Before the signal, its slow import outlives the lock and lease
 *    twice over without the job being taken (both are renewed while the slice imports).
 */
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IngestionProducer } from '../../src/bullmq/index.js';
import { PostgresSource } from '../../src/postgres/index.js';
import { usePostgres } from '../helpers/pg.js';
import { recordFigures } from '../reliability/harness.js';
import {
  checkLeaseHistory,
  createUnits,
  expectSameRows,
  explainWorker,
  killWorkers,
  type LeaseRecord,
  newStagingPrefix,
  REDIS_URL,
  randomQueue,
  records,
  startWorker,
  type UnitSpec,
  unitSpecs,
  type WorkerProc,
  waitUntil,
  workerEnv,
} from './workers/bullmq-kit.js';

const pg = usePostgres('bmq');
const LOCK_MS = 3000;
const redis = new URL(REDIS_URL);
const connection = { host: redis.hostname, port: Number(redis.port || 6379), maxRetriesPerRequest: null };
const queues: Queue[] = [];

afterAll(async () => {
  killWorkers();
  for (const q of queues) {
    await q.obliterate({ force: true }).catch(() => {});
    await q.close();
  }
});

function producerFor(q: { queue: string; prefix: string }): IngestionProducer {
  const queue = new Queue(q.queue, { connection, prefix: q.prefix });
  queues.push(queue);
  return new IngestionProducer({ queue, jobOptions: { attempts: 3, backoff: { type: 'fixed', delay: 200 } } });
}

interface Completed {
  jobId: string;
  unitId: string;
  workerId: string;
  result: { status: string; resumed?: boolean; runId?: string; stats?: { rowsImported: number } };
}

/** Source reads per unit: every (unit, slice) read once, and by whom. */
function readsByUnit(workers: WorkerProc[]): Map<string, Array<{ slice: number | null; workerId: string }>> {
  const out = new Map<string, Array<{ slice: number | null; workerId: string }>>();
  for (const r of records<{ unitId: string; slice: number | null; workerId: string }>(workers, '@@read')) {
    out.set(r.unitId, [...(out.get(r.unitId) ?? []), { slice: r.slice, workerId: r.workerId }]);
  }
  return out;
}

function expectEachSliceReadOnce(workers: WorkerProc[], specs: UnitSpec[]) {
  const reads = readsByUnit(workers);
  for (const u of specs) {
    const list = reads.get(u.unitId) ?? [];
    expect(list.length, `${u.unitId} was never read`).toBeGreaterThan(0);
    const slices = list.map((r) => r.slice);
    expect(new Set(slices).size, `${u.unitId}: a slice was read twice: ${JSON.stringify(list)}`).toBe(slices.length);
  }
  return reads;
}

describe('BullMQ scale-out (worker processes)', () => {
  const specs = () => unitSpecs(pg.schema, 12, (k) => 2200 + k * 37);
  let all: UnitSpec[];
  beforeAll(async () => {
    all = specs();
    await createUnits(pg.pool, all);
  });

  it('3 workers, 12 units, one worker SIGKILLed mid-import: every unit lands once, the killed one resumes from staging', async () => {
    const q = randomQueue('scale');
    const paused = all.find((u) => u.disposition === 'merge' && u.unitId.endsWith('_04'))!;
    const env = workerEnv(pg, all, q, newStagingPrefix(), {
      LOCK_MS: String(LOCK_MS),
      STALLED_MS: '1000',
      PAUSE_UNIT: paused.unitId,
      SLOW_MS: '300',
    });
    const workers = ['w1', 'w2', 'w3'].map((n) => startWorker(n, env));
    await waitUntil(() => workers.every((w) => records(w, '@@ready').length > 0), 90_000, 'three workers ready').catch(
      (err) => {
        throw new Error(`${err.message}\n${workers.map(explainWorker).join('\n')}`);
      },
    );

    // Fan-out: every table of the schema the source lists, filtered to the sources, merge units with their key.
    const source = new PostgresSource({ connectionString: pg.url, schemas: [pg.schema] });
    const producer = producerFor(q);
    const enqueued = await producer.enqueueEndpoint({
      endpointId: 'pg-src',
      sinkId: 'pg-dst',
      mode: 'incremental',
      source,
      forUnit: (meta) => {
        const spec = all.find((u) => u.unitId === meta.unitId);
        if (!spec) return false;
        return spec.disposition === 'merge' ? { disposition: 'merge', primaryKey: ['id'] } : { disposition: 'append' };
      },
    });
    await source.close();
    expect(enqueued.map((e) => e.unitId).sort()).toEqual(all.map((u) => u.unitId).sort());
    expect(enqueued.every((e) => e.added)).toBe(true);

    // Kill the worker that reached the middle of the paused unit's import.
    let victim: WorkerProc | undefined;
    await waitUntil(
      () => {
        victim = workers.find((w) => records(w, '@@midway').length > 0);
        return victim !== undefined;
      },
      120_000,
      'the paused unit to reach the middle of its import',
    );
    const midway = records(victim!, '@@midway')[0];
    expect(midway.unitId).toBe(paused.unitId);
    victim!.child.kill('SIGKILL');
    const killedAt = Date.now();
    expect((await victim!.exited).signal).toBe('SIGKILL');

    const done = () => new Set(records<Completed>(workers, '@@completed').map((c) => c.unitId));
    await waitUntil(() => done().size === all.length, 180_000, 'all 12 units to complete').catch((err) => {
      throw new Error(`${err.message} (${done().size} done)\n${workers.map(explainWorker).join('\n')}`);
    });
    const completions = records<Completed>(workers, '@@completed');
    for (const w of workers.filter((x) => x !== victim)) w.child.kill('SIGTERM');
    await Promise.all(workers.map((w) => w.exited));

    // Each unit completed exactly once, committed.
    expect(completions.length, workers.map(explainWorker).join('\n')).toBe(all.length);
    expect(completions.every((c) => c.result.status === 'committed')).toBe(true);
    // The killed unit: finished by another worker, resumed from staging, after the dead lease lapsed.
    const resumedBy = completions.find((c) => c.unitId === paused.unitId)!;
    expect(resumedBy.workerId).not.toBe(victim!.name);
    expect(resumedBy.result.resumed).toBe(true);
    expect(records(workers, '@@failed'), 'no job failed').toEqual([]);

    // The source of every unit was read once per slice; the killed unit's only by the killed worker.
    const reads = expectEachSliceReadOnce(workers, all);
    expect(reads.get(paused.unitId)!.every((r) => r.workerId === victim!.name)).toBe(true);
    const resumerEvents = records<{ type: string; unitId: string; phase?: string; workerId: string }>(
      workers,
      '@@event',
    ).filter((e) => e.unitId === paused.unitId && e.type === 'run.resumed');
    expect(resumerEvents.map((e) => [e.workerId, e.phase])).toEqual([[resumedBy.workerId, 'importing']]);

    // 0 lost, 0 duplicated, checked in SQL both ways; merge targets lost their stale rows.
    for (const u of all) await expectSameRows(pg.pool, u);

    // Lease history of every unit: never two holders at once; the killed unit changed hands only after expiry.
    const leases = records<LeaseRecord>(workers, '@@lease');
    const owners = checkLeaseHistory(leases);
    const pausedKey = [...owners.keys()].find((k) => k.includes(`::unit::${paused.unitId}::`))!;
    expect(owners.get(pausedKey)).toEqual([victim!.name, resumedBy.workerId]);
    const lastOfVictim = leases
      .filter((l) => l.key === pausedKey && l.owner === victim!.name)
      .sort((a, b) => b.version - a.version)[0];
    expect(lastOfVictim.state).toBe('held');
    const taken = leases
      .filter((l) => l.key === pausedKey && l.owner === resumedBy.workerId)
      .sort((a, b) => a.version - b.version)[0];
    expect(Date.parse(taken.acquiredAt)).toBeGreaterThanOrEqual(Date.parse(lastOfVictim.expiresAt));
    expect(Date.parse(taken.acquiredAt) - killedAt).toBeLessThan(4 * LOCK_MS + 2000);
    expect(owners.size).toBe(all.length);
    recordFigures('bullmq-scale-out', {
      units: all.length,
      rows: all.reduce((n, u) => n + u.rows, 0),
      unitsPerWorker: Object.fromEntries(
        workers.map((w) => [w.name, completions.filter((c) => c.workerId === w.name).length]),
      ),
      killed: { worker: victim!.name, unit: paused.unitId, resumedBy: resumedBy.workerId },
      takeoverMs: Date.parse(taken.acquiredAt) - killedAt,
      sourceReads: [...reads.values()].reduce((n, l) => n + l.length, 0),
      leaseWrites: leases.length,
    });
  }, 300_000);

  it('SIGTERM to a busy worker: its run stops cleanly and another worker finishes it from staging', async () => {
    const q = randomQueue('term');
    const unit = all.find((u) => u.disposition === 'append' && u.unitId.endsWith('_07'))!;
    // A fresh target for this test: the first test loaded this unit already.
    await pg.query(`TRUNCATE ${unit.target.replace('.', '."')}"`);
    await pg.query(`DROP TABLE IF EXISTS "${pg.schema}".kv_entries`);
    const env = workerEnv(pg, [unit], q, newStagingPrefix(), {
      LOCK_MS: String(LOCK_MS),
      STALLED_MS: '1000',
      PAUSE_UNIT: unit.unitId,
      SLOW_MS: '3500',
      SLICE_ROWS: '1000',
      CHUNK_ROWS: '250',
    });
    const pair = [startWorker('t1', env), startWorker('t2', env)];
    await waitUntil(() => pair.every((w) => records(w, '@@ready').length > 0), 90_000, 'two workers ready');
    await producerFor(q).enqueueUnit({ endpointId: 'pg-src', unitId: unit.unitId, sinkId: 'pg-dst', mode: 'full' });
    await waitUntil(
      () => pair.some((w) => records(w, '@@midway').length > 0),
      120_000,
      'the import to reach its middle',
    ).catch((err) => {
      throw new Error(`${err.message}\n${pair.map(explainWorker).join('\n')}`);
    });
    const busy = pair.find((w) => records(w, '@@midway').length > 0)!;
    const other = pair.find((w) => w !== busy)!;
    // The busy worker imports slowly (100 rows every 3.5 s, longer than the 3 s lock): for more than twice the lock
    // duration the idle worker must not get the job, and the lease keeps being renewed.
    const from = Date.now();
    await new Promise((r) => setTimeout(r, 2 * LOCK_MS + 1000));
    expect(records(other, '@@active'), 'the job was taken while its worker was alive').toEqual([]);
    const renewals = records<LeaseRecord>(busy, '@@lease').filter((l) => Date.parse(l.writtenAt) >= from);
    expect(
      renewals.length,
      `the lease was renewed during the slow slice\n${explainWorker(busy)}`,
    ).toBeGreaterThanOrEqual(4);
    expect(new Set(renewals.map((l) => l.acquiredAt)).size, 'renewals of one hold').toBe(1);

    busy.child.kill('SIGTERM');
    const exit = await busy.exited;
    expect(exit, explainWorker(busy)).toEqual({ code: 0, signal: null });
    expect(records(busy, '@@closed')).toHaveLength(1);
    const failedRun = records<{ type: string; code?: string }>(busy, '@@event').filter((e) => e.type === 'run.failed');
    expect(
      failedRun.map((e) => e.code),
      explainWorker(busy),
    ).toEqual(['aborted']);
    const busyLeases = records<LeaseRecord>(busy, '@@lease');
    expect(busyLeases.at(-1)?.state, 'the stopped run released its lease').toBe('released');
    expect(records(busy, '@@failed'), 'the job was handed back, not failed').toEqual([]);

    await waitUntil(() => records(other, '@@completed').length > 0, 120_000, 'the other worker to finish').catch(
      (err) => {
        throw new Error(`${err.message}\n${explainWorker(busy)}\n${explainWorker(other)}`);
      },
    );
    const [completed] = records<Completed>(other, '@@completed');
    expect(completed.result).toMatchObject({ status: 'committed', resumed: true });
    // Taken over at once (the lease was released), not after a lock or lease expiry.
    const takenAt = records<LeaseRecord>(other, '@@lease')[0];
    expect(Date.parse(takenAt.acquiredAt)).toBeLessThan(Date.parse(busyLeases.at(-2)!.expiresAt));
    other.child.kill('SIGTERM');
    expect((await other.exited).code).toBe(0);

    expectEachSliceReadOnce([busy, other], [unit]);
    expect(records<{ workerId: string }>([busy, other], '@@read').every((r) => r.workerId === busy.name)).toBe(true);
    checkLeaseHistory([...busyLeases, ...records<LeaseRecord>(other, '@@lease')]);
    await expectSameRows(pg.pool, unit);
  }, 300_000);
});
