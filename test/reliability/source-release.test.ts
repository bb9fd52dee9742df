/**
 * A source's connection goes back to its pool on every early exit of the export: a staging write that fails
 * (retryably or not), a host abort, a lost lease — on the row path, the planned path and the pass-through path.
 * Each case runs the source (and, for PostgreSQL, the sink and the KvStore too) on a pool of ONE connection: a
 * read left open would keep that connection checked out, so the pool would not be idle after the failed run, and
 * the retry or the next run would wait for it for ever (each run has a deadline, so that shows as a failure).
 * Staging is real (`ObjectStoreStagingProvider` over `MemoryObjectStore`); the fault is injected at the object
 * store, where an S3 upload fails: the upload of one slice object takes the first bytes, then fails (or hangs
 * until the run's signal fires).
 */
import { Kysely, PostgresDialect } from 'kysely';
import type mysql from 'mysql2';
import { afterAll, describe, expect, it } from 'vitest';
import {
  checkpointKey,
  IngestError,
  type KvStore,
  MemoryKvStore,
  MemoryObjectStore,
  type ObjectInfo,
  type ObjectStore,
  ObjectStoreStagingProvider,
  type PutOptions,
  type RecordCodec,
  type RunUnitOptions,
  runUnit,
  type SourceEndpoint,
} from '../../src/index.js';
import { MySqlSource } from '../../src/mysql/index.js';
import { PostgresKvStore, PostgresSink, PostgresSource, pgCopyCodec } from '../../src/postgres/index.js';
import { MemorySink } from '../../src/testing/index.js';
import { useMySql } from '../helpers/mysql.js';
import { usePostgres } from '../helpers/pg.js';
import { recordFigures } from './harness.js';

const pgEnv = usePostgres('release');
const myEnv = useMySql('release');
const ROWS = 3000;
const figures = { cases: [] as string[], faultsInjected: 0, rowsChecked: 0, poolChecks: 0 };
afterAll(() => recordFigures('source-release', figures));

interface Fault {
  /** Slice objects whose upload fails. */
  match: RegExp;
  /** `fail`: take the first bytes, then fail; `hang`: take the first bytes, then wait for the signal. */
  mode: 'fail' | 'hang';
  retryable: boolean;
  /** Uploads left to fault. */
  times: number;
}

/** An object store whose slice uploads fail on demand, as an S3 upload past its retries does. */
class FaultyStore implements ObjectStore {
  readonly inner = new MemoryObjectStore();
  fault: Fault | undefined;
  injected = 0;
  get bucket() {
    return this.inner.bucket;
  }
  async put(key: string, body: Uint8Array | AsyncIterable<Uint8Array>, opts: PutOptions = {}): Promise<ObjectInfo> {
    const f = this.fault;
    if (!f || f.times <= 0 || !f.match.test(key) || body instanceof Uint8Array) return this.inner.put(key, body, opts);
    f.times--;
    this.injected++;
    figures.faultsInjected++;
    await body[Symbol.asyncIterator]().next();
    if (f.mode === 'hang') {
      await new Promise<never>((_, reject) => {
        const signal = opts.signal;
        if (!signal) return;
        if (signal.aborted) reject(signal.reason);
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      });
    }
    throw new IngestError('staging_failed', `injected: the upload of ${key} failed`, { retryable: f.retryable });
  }
  get(key: string, opts?: { signal?: AbortSignal }) {
    return this.inner.get(key, opts);
  }
  head(key: string) {
    return this.inner.head(key);
  }
  list(prefix: string) {
    return this.inner.list(prefix);
  }
  delete(keys: string[]) {
    return this.inner.delete(keys);
  }
}

/** The source without its planner: the export streams and cuts slices itself (the unplanned path). */
function streamed(source: SourceEndpoint<any>): SourceEndpoint<any> {
  return {
    descriptor: source.descriptor,
    read: (req, ctx) => source.read(req, ctx),
    ...(source.checkUnit ? { checkUnit: (unitId: string, ctx: any) => source.checkUnit!(unitId, ctx) } : {}),
  };
}

const SLICE_1 = /\/000001\.[a-z-]+$/;

// --- PostgreSQL -------------------------------------------------------------------------------------------------

let pgTables = 0;
async function pgCase(opts: { planned: boolean; codec?: RecordCodec; kv?: 'pg' | 'memory' }) {
  const n = ++pgTables;
  const s = pgEnv.schema;
  await pgEnv.query(`CREATE TABLE "${s}".src${n} (id int PRIMARY KEY, v text NOT NULL)`);
  await pgEnv.query(`CREATE TABLE "${s}".dst${n} (id int, v text)`);
  await pgEnv.query(`INSERT INTO "${s}".src${n} SELECT g, repeat('v', 200) || g FROM generate_series(1, $1) g`, [ROWS]);
  await pgEnv.query(`ANALYZE "${s}".src${n}`);
  const app = `nucleus_release_${s}_${n}`;
  const pool = pgEnv.newPool({ max: 1, application_name: app });
  const kv: KvStore =
    opts.kv === 'memory'
      ? new MemoryKvStore()
      : new PostgresKvStore({ db: new Kysely<any>({ dialect: new PostgresDialect({ pool }) }), schema: s });
  if (kv instanceof PostgresKvStore) await kv.migrate();
  const unitId = `${s}.src${n}`;
  const source = new PostgresSource({ pool });
  const store = new FaultyStore();
  const unit = { vendor: 'postgres', endpointId: 'pg', unitId };
  const base: RunUnitOptions = {
    source: opts.planned ? source : streamed(source),
    sink: new PostgresSink({ pool, tables: { [unitId]: `${s}.dst${n}` }, ledgerTable: `${s}.ledger` }),
    staging: new ObjectStoreStagingProvider({ store, ...(opts.codec ? { codec: opts.codec } : {}) }),
    kv,
    unit,
    runId: `release-${n}`,
    mode: 'full',
    disposition: 'append',
    policy: { sliceMaxRows: 500, chunkSize: 200, exportConcurrency: 2, retry: { maxAttempts: 1 } },
  };
  /** A run with a deadline: a connection that never comes back ends it as a failure instead of a hang. */
  const run = (extra: Partial<RunUnitOptions> = {}) =>
    runUnit({
      ...base,
      ...extra,
      policy: { ...base.policy, ...extra.policy },
      signal: extra.signal ? AbortSignal.any([extra.signal, AbortSignal.timeout(30_000)]) : AbortSignal.timeout(30_000),
    });
  /** Every connection of the pool is back and idle, and no backend of it is inside a transaction. */
  const assertIdle = async (what: string) => {
    figures.poolChecks++;
    expect(pool.waitingCount, `${what}: clients waiting for the pool`).toBe(0);
    expect(pool.idleCount, `${what}: connections checked out`).toBe(pool.totalCount);
    let busy: unknown[] = [];
    for (let i = 0; i < 40; i++) {
      busy = (
        await pgEnv.query(
          `SELECT pid, state, left(query, 60) AS query FROM pg_stat_activity WHERE application_name = $1 AND state <> 'idle'`,
          [app],
        )
      ).rows;
      if (busy.length === 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(busy, `${what}: backends of the pool still busy (pg_stat_activity)`).toEqual([]);
  };
  /** The target holds every source row exactly once. */
  const assertExact = async (what: string) => {
    const r = (
      await pgEnv.query(
        `SELECT count(*)::int AS n, count(DISTINCT id)::int AS d, (SELECT count(*)::int FROM "${s}".src${n} s
           WHERE NOT EXISTS (SELECT 1 FROM "${s}".dst${n} d WHERE d.id = s.id AND d.v = s.v)) AS missing
         FROM "${s}".dst${n}`,
      )
    ).rows[0];
    expect(r, what).toEqual({ n: ROWS, d: ROWS, missing: 0 });
    figures.rowsChecked += r.n;
  };
  return { store, run, assertIdle, assertExact, kv, unit };
}

describe('PostgreSQL source on a pool of one: the connection comes back on every early exit', {
  timeout: 90_000,
}, () => {
  it('streamed: a staging write that fails for good fails the run; the pool is idle and the next run works', async () => {
    const c = await pgCase({ planned: false });
    c.store.fault = { match: SLICE_1, mode: 'fail', retryable: false, times: 1 };
    const err = await c.run().catch((e) => e);
    expect(err).toMatchObject({ code: 'staging_failed', retryable: false });
    expect(c.store.injected).toBe(1);
    await c.assertIdle('after the failed run');
    const ok = await c.run();
    expect(ok.stats.rowsImported).toBe(ROWS);
    await c.assertIdle('after the next run');
    await c.assertExact('streamed, next run');
    figures.cases.push('pg streamed: failed staging write, next run');
  });

  it('streamed: policy.retry re-exports the stream on the same pool of one after two failed uploads', async () => {
    const c = await pgCase({ planned: false });
    c.store.fault = { match: SLICE_1, mode: 'fail', retryable: true, times: 2 };
    const ok = await c.run({ policy: { retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 20 } } });
    expect(c.store.injected).toBe(2);
    expect(ok.stats.rowsImported).toBe(ROWS);
    await c.assertIdle('after the run');
    await c.assertExact('streamed, re-exported');
    figures.cases.push('pg streamed: re-export after retryable failures');
  });

  it('planned: policy.retry exports the slice again on the same pool of one', async () => {
    const c = await pgCase({ planned: true });
    c.store.fault = { match: SLICE_1, mode: 'fail', retryable: true, times: 2 };
    const ok = await c.run({ policy: { retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 20 } } });
    expect(c.store.injected).toBe(2);
    expect(ok.stats.slices).toBeGreaterThan(2);
    await c.assertIdle('after the run');
    await c.assertExact('planned, slice written again');
    figures.cases.push('pg planned: slice re-exported');
  });

  it('pass-through (pg-copy): a failed upload ends the COPY and frees the connection; the next run works', async () => {
    const c = await pgCase({ planned: true, codec: pgCopyCodec() });
    c.store.fault = { match: /\/0000\d\d\.[a-z-]+$/, mode: 'fail', retryable: false, times: 1 };
    const err = await c.run().catch((e) => e);
    expect(err).toMatchObject({ code: 'staging_failed' });
    await c.assertIdle('after the failed run');
    const ok = await c.run();
    expect(ok.stats.rowsImported).toBe(ROWS);
    await c.assertIdle('after the next run');
    await c.assertExact('pass-through, next run');
    figures.cases.push('pg pass-through: failed upload, next run');
  });

  it('a host abort while a slice upload hangs: the read is closed; the next run works', async () => {
    const c = await pgCase({ planned: false, kv: 'memory' });
    c.store.fault = { match: SLICE_1, mode: 'hang', retryable: true, times: 1 };
    const host = new AbortController();
    const timer = setInterval(() => {
      if (c.store.injected > 0) host.abort(new Error('host shutting down'));
    }, 20);
    const err = await c.run({ signal: host.signal }).catch((e) => e);
    clearInterval(timer);
    expect(err).toMatchObject({ code: 'aborted' });
    await c.assertIdle('after the aborted run');
    const ok = await c.run();
    expect(ok.stats.rowsImported).toBe(ROWS);
    await c.assertExact('aborted, next run');
    figures.cases.push('pg streamed: host abort');
  });

  it('a lease lost while a slice upload hangs: the read is closed (lease_lost)', async () => {
    const c = await pgCase({ planned: false, kv: 'memory' });
    c.store.fault = { match: SLICE_1, mode: 'hang', retryable: true, times: 1 };
    const leaseKey = { ...checkpointKey(c.unit), key: `${checkpointKey(c.unit).key}::lease` };
    const timer = setInterval(async () => {
      if (c.store.injected === 0) return;
      clearInterval(timer);
      // another worker takes the lease over: the holder's next renewal (a compare-and-set) fails
      const held = await c.kv.get(leaseKey);
      await c.kv.put(leaseKey, { ...(held?.value as object), holder: 'another-worker' }, { ttlMs: 1500 });
    }, 20);
    const err = await c.run({ policy: { leaseTtlMs: 600 } }).catch((e) => e);
    clearInterval(timer);
    expect(err).toMatchObject({ code: 'lease_lost' });
    await c.assertIdle('after the fenced-off run');
    await new Promise((r) => setTimeout(r, 1600));
    const ok = await c.run();
    expect(ok.stats.rowsImported).toBe(ROWS);
    await c.assertExact('lease lost, next run');
    figures.cases.push('pg streamed: lease lost');
  });
});

// --- MySQL ------------------------------------------------------------------------------------------------------

let myTables = 0;
async function myCase(opts: { planned: boolean }) {
  const n = ++myTables;
  await myEnv.query(`CREATE TABLE src${n} (id INT PRIMARY KEY, v VARCHAR(300) NOT NULL)`);
  await myEnv.query(`INSERT INTO src${n} (id, v) SELECT seq, CONCAT(REPEAT('v', 200), seq) FROM seq_1_to_${ROWS}`);
  const pool = myEnv.newPool({ connectionLimit: 1 });
  const source = new MySqlSource({ pool });
  const store = new FaultyStore();
  const sink = new MemorySink();
  const kv = new MemoryKvStore();
  const unitId = `${myEnv.database}.src${n}`;
  const base: RunUnitOptions = {
    source: opts.planned ? source : streamed(source),
    sink,
    staging: new ObjectStoreStagingProvider({ store }),
    kv,
    unit: { vendor: 'mysql', endpointId: 'my', unitId },
    runId: `release-my-${n}`,
    mode: 'full',
    policy: { sliceMaxRows: 500, chunkSize: 200, exportConcurrency: 2, retry: { maxAttempts: 1 } },
  };
  const run = (extra: Partial<RunUnitOptions> = {}) =>
    runUnit({ ...base, ...extra, policy: { ...base.policy, ...extra.policy }, signal: AbortSignal.timeout(30_000) });
  /**
   * mysql2's pool: every connection it made is free and nobody waits (internals: the pool has no public counters).
   * A healthy connection is given back after a query restoring the pool's session settings: wait for it briefly.
   */
  const assertIdle = async (what: string) => {
    const p = pool as mysql.Pool & {
      _allConnections: { length: number };
      _freeConnections: { length: number };
      _connectionQueue: { length: number };
    };
    figures.poolChecks++;
    for (let i = 0; i < 40 && p._freeConnections.length !== p._allConnections.length; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(p._connectionQueue.length, `${what}: waiting for the pool`).toBe(0);
    expect(p._freeConnections.length, `${what}: connections checked out`).toBe(p._allConnections.length);
  };
  const assertExact = (what: string) => {
    const ids = sink.rows(unitId).map((r) => Number(r.id));
    expect(ids.length, what).toBe(ROWS);
    expect(new Set(ids).size, what).toBe(ROWS);
    figures.rowsChecked += ids.length;
  };
  return { store, run, assertIdle, assertExact };
}

describe('MySQL source on a pool of one: the connection comes back on every early exit', { timeout: 90_000 }, () => {
  it('streamed: a staging write that fails for good fails the run; the pool is idle and the next run works', async () => {
    const c = await myCase({ planned: false });
    c.store.fault = { match: SLICE_1, mode: 'fail', retryable: false, times: 1 };
    const err = await c.run().catch((e) => e);
    expect(err).toMatchObject({ code: 'staging_failed', retryable: false });
    await c.assertIdle('after the failed run');
    const ok = await c.run();
    expect(ok.stats.rowsImported).toBe(ROWS);
    await c.assertIdle('after the next run');
    c.assertExact('streamed, next run');
    figures.cases.push('mysql streamed: failed staging write, next run');
  });

  it('streamed and planned: policy.retry writes again on the same pool of one', async () => {
    for (const planned of [false, true]) {
      const c = await myCase({ planned });
      c.store.fault = { match: SLICE_1, mode: 'fail', retryable: true, times: 2 };
      const ok = await c.run({ policy: { retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 20 } } });
      expect(c.store.injected).toBe(2);
      expect(ok.stats.rowsImported).toBe(ROWS);
      await c.assertIdle(`after the run (planned: ${planned})`);
      c.assertExact(`planned: ${planned}`);
      figures.cases.push(`mysql ${planned ? 'planned' : 'streamed'}: written again after retryable failures`);
    }
  });
});
