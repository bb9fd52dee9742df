/**
 * S3 faults while a run imports into PostgreSQL: slice GETs cut off in the middle of their body, and faults on
 * the small objects (manifest, `_SUCCESS`, `_LANDED`). A cut GET resumes at the byte it reached (a ranged request,
 * checked against the object's ETag) within `S3ObjectStore`'s `retry`; with no retry left the slice is read again
 * from its start by the run's `policy.retry`, and with none of either the run fails retryably and a later run
 * finishes it. Whatever happens, sha256 verification stays exact and every source row is in the target once
 * (compared as text in SQL both ways with EXCEPT ALL, and through the ledger).
 */

import type http from 'node:http';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IngestError, type IngestionEvent, ObjectStoreStagingProvider, runUnit } from '../../src/index.js';
import { PostgresKvStore, PostgresSink, PostgresSource } from '../../src/postgres/index.js';
import { S3ObjectStore } from '../../src/s3/index.js';
import { type FaultKind, type FaultProxy, faultSeeds, startFaultProxy } from '../helpers/fault-proxy.js';
import { usePostgres } from '../helpers/pg.js';
import { createTestS3Client, s3Target, testBucket, uniquePrefix } from '../helpers/s3.js';
import { addSourceRows, checkInvariants, createTables, recordFigures, SOAK } from './harness.js';

const env = usePostgres('rel_nets3get');
/** Rows per scenario (~130 bytes each staged; slices of 4000 rows, ~0.5 MB). */
const ROWS = SOAK ? 40_000 : 12_000;
const SEED = faultSeeds([5])[0];
/** One staging prefix for the file: the invariants check every run in the ledger against its session. */
const PREFIX = uniquePrefix('nets3get').replace(/\/$/, '');
const clients: S3Client[] = [];
let kv: PostgresKvStore;
const figures = {
  scenarios: [] as string[],
  faults: {} as Record<string, number>,
  cuts: 0,
  cutAtBytes: 0,
  rangedGets: 0,
  smallObjectFaults: 0,
  importRetries: 0,
  failedRunsRetryable: 0,
  rowsChecked: 0,
  duplicatesFound: 0,
  missingRows: 0,
};

beforeAll(async () => {
  await createTables(env.pool, env.schema, 'append');
  kv = new PostgresKvStore({ db: env.newKysely(), schema: env.schema });
  await kv.migrate();
});
afterAll(() => {
  for (const c of clients) c.destroy();
  recordFigures('network-faults-s3-import', figures);
});

const SLICE = /\/\d{6}\.ndjson(\?|$)/;
const SMALL = /\/(manifest\.json|_SUCCESS|_LANDED)(\?|$)/;

function storeVia(proxy: FaultProxy, retry: number): S3ObjectStore {
  const client = createTestS3Client({
    endpoint: proxy.url,
    requestHandler: { requestTimeout: 5_000, connectionTimeout: 2_000 } as never,
  });
  clients.push(client);
  return new S3ObjectStore({
    client,
    bucket: testBucket(),
    retry: { maxAttempts: retry, baseDelayMs: 10, maxDelayMs: 50 },
  });
}

async function run(store: S3ObjectStore, prefix: string, policyRetry: number, onEvent: (e: IngestionEvent) => void) {
  const unitId = `${env.schema}.src`;
  return runUnit({
    source: new PostgresSource({ pool: env.newPool({ max: 2 }), units: { [unitId]: { cursorColumns: ['seq'] } } }),
    sink: new PostgresSink({
      pool: env.newPool({ max: 2 }),
      schema: env.schema,
      tables: { [unitId]: `${env.schema}.dst` },
    }),
    staging: new ObjectStoreStagingProvider({ store, prefix }),
    kv,
    unit: { vendor: 'postgres', endpointId: 'crash-src', unitId, sinkId: 'crash-dst' },
    mode: 'incremental',
    disposition: 'append',
    policy: {
      sliceMaxRows: 4000,
      chunkSize: 500,
      keepStaging: true,
      retry: { maxAttempts: policyRetry, baseDelayMs: 20, maxDelayMs: 100 },
      // the faults are armed at export.completed: they hit the import of a sealed session, so the phases stay apart
      // (the overlapped import's per-slice reads: overlapped-import.test.ts)
      overlap: false,
    },
    onEvent,
  });
}

/** Every source row is in the target exactly once, compared as text both ways; the harness invariants hold. */
async function checkExactlyOnce(prefix: string, label: string): Promise<void> {
  const s = `"${env.schema}"`;
  const diff = async (a: string, b: string) =>
    (
      await env.query(
        `SELECT count(*)::int AS n FROM (SELECT seq::text, payload FROM ${s}.${a} EXCEPT ALL SELECT seq::text, payload FROM ${s}.${b}) x`,
      )
    ).rows[0].n as number;
  const missing = await diff('src', 'dst');
  const extra = await diff('dst', 'src');
  figures.missingRows += missing;
  figures.duplicatesFound += extra;
  expect(missing, `${label}: source rows missing from the target`).toBe(0);
  expect(extra, `${label}: target rows beyond the source (duplicates)`).toBe(0);
  const direct = new S3ObjectStore({ client: createTestS3Client(), bucket: testBucket() });
  const r = await checkInvariants(env.pool, env.schema, { store: direct, prefix }, { complete: true, label });
  figures.rowsChecked += r.targetRows;
}

/**
 * One scenario: new source rows, a proxy whose faults only hit requests `faulty` picks once the export is done
 * (so they land during the import), then runs until one commits (at most `runs`).
 */
async function scenario(
  name: string,
  opts: {
    faulty: (req: http.IncomingMessage) => boolean;
    kinds: FaultKind[];
    rate: number;
    burst: number;
    storeRetry: number;
    policyRetry: number;
    runs?: number;
  },
) {
  await addSourceRows(env.pool, env.schema, ROWS);
  let importing = false;
  const proxy = await startFaultProxy({
    target: s3Target().endpoint,
    rate: opts.rate,
    burst: opts.burst,
    kinds: opts.kinds,
    seed: SEED,
    stallMs: 500,
    filter: (req) => importing && opts.faulty(req),
  });
  const prefix = PREFIX;
  const events: IngestionEvent[] = [];
  const failures: IngestError[] = [];
  let committed = false;
  try {
    for (let i = 0; i < (opts.runs ?? 1) && !committed; i++) {
      try {
        await run(storeVia(proxy, opts.storeRetry), prefix, opts.policyRetry, (e) => {
          events.push(e);
          if (e.type === 'export.completed') importing = true;
        });
        committed = true;
      } catch (err) {
        if (!IngestError.is(err) || !err.retryable) throw err;
        failures.push(err);
      }
    }
  } finally {
    await proxy.close();
  }
  for (const [k, v] of Object.entries(proxy.stats.faults)) figures.faults[k] = (figures.faults[k] ?? 0) + v;
  figures.cuts += proxy.stats.faults.cut;
  figures.cutAtBytes += proxy.stats.cutAtBytes;
  figures.rangedGets += proxy.stats.ranged;
  figures.failedRunsRetryable += failures.length;
  const importRetries = events.filter((e) => e.type === 'retry.scheduled' && e.phase === 'import').length;
  figures.importRetries += importRetries;
  expect(committed, `${name}: no run committed (${failures.map((f) => f.message).join(' | ')})`).toBe(true);
  expect(proxy.unfiredKinds(), `${name}: fault kinds that never fired`).toEqual([]);
  await checkExactlyOnce(prefix, name);
  figures.scenarios.push(name);
  return { proxy, importRetries, failures, events };
}

const sliceGet = (req: http.IncomingMessage) => req.method === 'GET' && SLICE.test(req.url ?? '');

describe('S3 faults during the import into PostgreSQL', () => {
  it('slice GETs cut off mid-body resume at the byte they reached: one run, no import retry, rows once', async () => {
    const r = await scenario('slice GETs cut mid-body, resumed by range', {
      faulty: sliceGet,
      kinds: ['cut'],
      rate: 0.5,
      burst: 2,
      storeRetry: 6,
      policyRetry: 1,
    });
    // verify() proves S3 slices by listing (etags), so the sink's reads are the only slice GETs: fewer to cut
    expect(r.proxy.stats.faults.cut, 'cuts injected').toBeGreaterThan(0);
    expect(r.proxy.stats.cutAtBytes, 'cuts happened inside bodies').toBeGreaterThan(0);
    expect(r.proxy.stats.ranged, 'resumed with ranged GETs').toBeGreaterThan(0);
    expect(r.importRetries, 'resumed inside the store: the pipeline never retried').toBe(0);
  }, 300_000);

  it('with no store retry left, a cut slice is read again from its start by policy.retry: rows once', async () => {
    // Cut only the sink's read of slice 1 (its first GET: verify() proves S3 slices by listing), once.
    const seen = new Map<string, number>();
    let cut = false;
    const r = await scenario('slice GET cut with no store retry, slice re-read by policy.retry', {
      faulty: (req) => {
        if (!sliceGet(req) || cut) return false;
        const key = (req.url ?? '').split('?')[0];
        const n = (seen.get(key) ?? 0) + 1;
        seen.set(key, n);
        if (!/\/000001\.ndjson$/.test(key) || n !== 1) return false;
        cut = true;
        return true;
      },
      kinds: ['cut'],
      rate: 1,
      burst: 1,
      storeRetry: 1,
      policyRetry: 4,
    });
    expect(r.proxy.stats.faults.cut).toBe(1);
    expect(r.proxy.stats.ranged, 'with one attempt the store must not resume').toBe(0);
    expect(r.importRetries, 'policy.retry read the slice again').toBeGreaterThan(0);
  }, 300_000);

  it('with neither retry left the run fails retryably; the next run finishes it: rows once', async () => {
    let cut = 0;
    const r = await scenario('slice GET cut with no retry at all, finished by the next run', {
      faulty: (req) => sliceGet(req) && cut++ < 1,
      kinds: ['cut'],
      rate: 1,
      burst: 1,
      storeRetry: 1,
      policyRetry: 1,
      runs: 3,
    });
    expect(r.failures.length, 'the first run must fail').toBeGreaterThan(0);
    for (const f of r.failures) expect(f, f.message).toMatchObject({ code: 'staging_failed', retryable: true });
  }, 300_000);

  it('faults on the manifest and the markers (every kind, half of their requests) are retried: rows once', async () => {
    const r = await scenario('manifest and marker requests faulted', {
      faulty: (req) => SMALL.test(req.url ?? ''),
      kinds: ['500', '503', 'reset', 'stall', 'cut', 'lost'],
      rate: 0.5,
      burst: 2,
      storeRetry: 8,
      policyRetry: 1,
    });
    const faults = Object.values(r.proxy.stats.faults).reduce((n, x) => n + x, 0);
    figures.smallObjectFaults += faults;
    expect(faults, 'faults on small objects').toBeGreaterThan(2);
  }, 300_000);
});
