/**
 * Slice uploads under targeted S3 faults, each aimed at one request so the outcome is certain:
 * - a part that keeps failing is retried from its buffer within `S3ObjectStore`'s `retry` (the run never notices);
 * - a part that fails past that budget fails the upload, which is aborted; the run fails retryable, marked
 *   `retriedBy: 'store'` so its own `policy.retry` does not retry it again (ADR 0017: one budget per layer), and the
 *   next run — the orchestrator's retry — writes the slice again (a planned slice from the source, an unplanned
 *   stream by re-exporting into an emptied session);
 * - an answer lost after the server acted (CreateMultipartUpload, CompleteMultipartUpload) neither leaves an
 *   upload behind nor fails the slice.
 * - an unplanned PostgreSQL stream on a pool of ONE connection: the failed slice's stream is re-exported (the first
 *   read's connection is given back first, or the re-export would wait for it for ever).
 * Every case ends with the rows of a fault-free run, slices with the fault-free sha256, and no incomplete upload
 * (the proxy's log of created/completed/aborted upload ids, and ListMultipartUploads).
 */
import type http from 'node:http';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import {
  IngestError,
  type IngestionEvent,
  MemoryKvStore,
  ObjectStoreStagingProvider,
  type Row,
  runUnit,
  type SourceEndpoint,
} from '../../src/index.js';
import { PostgresSource } from '../../src/postgres/index.js';
import { S3ObjectStore } from '../../src/s3/index.js';
import { MemorySink, MemorySource } from '../../src/testing/index.js';
import { type FaultKind, type FaultProxy, startFaultProxy } from '../helpers/fault-proxy.js';
import { usePostgres } from '../helpers/pg.js';
import { createTestS3Client, s3Target, testBucket, uniquePrefix } from '../helpers/s3.js';
import { openUploads, sliceHashes } from '../helpers/s3-staged.js';
import { recordFigures } from './harness.js';

const pgEnv = usePostgres('upfault');

/** 9000 rows of ~2 KB: three slices of ~6 MiB, each a multipart upload of two parts. */
const ROWS = 9000;
const clients: S3Client[] = [];
const figures = {
  cases: [] as string[],
  faultsInjected: 0,
  faults: {} as Record<string, number>,
  uploadsCreated: 0,
  incompleteUploads: 0,
  slicesCompared: 0,
  uploadsAborted: 0,
  slicesRewritten: 0,
  rowsCompared: 0,
};
afterAll(() => {
  for (const c of clients) c.destroy();
  recordFigures('network-faults-s3-upload', figures);
});

function rows(): Row[] {
  return Array.from({ length: ROWS }, (_, i) => ({
    id: i + 1,
    body: `${String(i).padStart(8, '0')}-${'y'.repeat(2000)}`,
  }));
}

interface RunOpts {
  planned: boolean;
  storeRetry: number;
  policyRetry: number;
  /** Runs in all, the orchestrator's retries included: a retryable failure is run again with the same ids. */
  runs?: number;
}

async function stage(endpoint: string, prefix: string, o: RunOpts) {
  // One attempt per SDK call, so the store's `retry` is the whole budget of a request.
  const client = createTestS3Client({
    endpoint,
    maxAttempts: 1,
    requestHandler: { requestTimeout: 5_000, connectionTimeout: 2_000 } as never,
  });
  clients.push(client);
  const store = new S3ObjectStore({
    client,
    bucket: testBucket(),
    partSize: 5 * 1024 * 1024,
    retry: { maxAttempts: o.storeRetry, baseDelayMs: 10, maxDelayMs: 50 },
  });
  const sink = new MemorySink();
  const events: IngestionEvent[] = [];
  const source = new MemorySource({
    units: { events: { rows: rows(), batchSize: 500, ...(o.planned ? { planSlices: 3 } : {}) } },
  });
  const staging = new ObjectStoreStagingProvider({ store, prefix });
  const kv = new MemoryKvStore();
  const failures: IngestError[] = [];
  for (let run = 1; ; run++) {
    try {
      const result = await runUnit({
        source,
        sink,
        staging,
        kv,
        unit: { endpointId: 'upfault', unitId: 'events' },
        runId: 'upfault-run',
        mode: 'full',
        policy: {
          sliceMaxRows: 3000,
          keepStaging: true,
          exportConcurrency: 2,
          retry: { maxAttempts: o.policyRetry, baseDelayMs: 20, maxDelayMs: 100 },
        },
        onEvent: (e) => events.push(e),
      });
      return { result, rows: sink.rows('events'), events, failures };
    } catch (err) {
      // the orchestrator's layer: run the unit again when the failure is retryable
      if (!IngestError.is(err) || !err.retryable || run >= (o.runs ?? 1)) throw err;
      failures.push(err);
    }
  }
}

const cleanRuns = new Map<boolean, Promise<{ rows: Row[]; slices: Map<string, string> }>>();
function cleanRun(planned: boolean) {
  let p = cleanRuns.get(planned);
  if (!p) {
    p = (async () => {
      const prefix = uniquePrefix('upclean').replace(/\/$/, '');
      const r = await stage(s3Target().endpoint, prefix, { planned, storeRetry: 3, policyRetry: 1 });
      return { rows: r.rows, slices: await sliceHashes(prefix) };
    })();
    cleanRuns.set(planned, p);
  }
  return p;
}

/** Requests of slice 1 (`000001.ndjson`): its part uploads, its upload creation, its completion. */
const partOfSlice1 = (n: number) => (req: http.IncomingMessage) =>
  req.method === 'PUT' &&
  /\/000001\.ndjson\?/.test(req.url ?? '') &&
  new URL(req.url ?? '', 'http://x').searchParams.get('partNumber') === String(n);
const createOfSlice1 = (req: http.IncomingMessage) =>
  req.method === 'POST' && /\/000001\.ndjson\?uploads/.test(req.url ?? '');
const completeOfSlice1 = (req: http.IncomingMessage) =>
  req.method === 'POST' && /\/000001\.ndjson\?uploadId=/.test(req.url ?? '');

/** Fault the first `times` requests `match` picks with `kind`, then stage through the proxy and check everything. */
async function faulted(
  name: string,
  o: RunOpts & { match: (req: http.IncomingMessage) => boolean; times: number; kind: FaultKind },
) {
  let left = o.times;
  const proxy: FaultProxy = await startFaultProxy({
    target: s3Target().endpoint,
    rate: 1,
    burst: 1,
    kinds: [o.kind],
    filter: (req) => o.match(req) && left-- > 0,
  });
  const prefix = uniquePrefix('upfault').replace(/\/$/, '');
  try {
    const run = await stage(proxy.url, prefix, o);
    figures.incompleteUploads += proxy.incompleteUploads().length;
    const clean = await cleanRun(o.planned);
    expect(run.result.stats.rowsImported, name).toBe(ROWS);
    expect(run.rows, `${name}: rows differ from the fault-free run`).toEqual(clean.rows);
    const hashes = await sliceHashes(prefix);
    expect([...hashes.keys()].sort(), name).toEqual([...clean.slices.keys()].sort());
    for (const [k, sha] of clean.slices) expect(hashes.get(k), `${name}: slice ${k}`).toBe(sha);
    expect(proxy.incompleteUploads(), `${name}: incomplete uploads (proxy log)`).toEqual([]);
    expect(await openUploads(prefix), `${name}: incomplete uploads (ListMultipartUploads)`).toEqual([]);
    const faults = Object.values(proxy.stats.faults).reduce((n, x) => n + x, 0);
    expect(faults, `${name}: faults injected`).toBe(o.times);
    expect(proxy.unfiredKinds(), `${name}: fault kinds that never fired`).toEqual([]);
    figures.cases.push(name);
    figures.faultsInjected += faults;
    for (const [k, v] of Object.entries(proxy.stats.faults)) figures.faults[k] = (figures.faults[k] ?? 0) + v;
    figures.slicesCompared += hashes.size;
    figures.uploadsCreated += proxy.multipart.created.size;
    figures.uploadsAborted += proxy.multipart.aborted.size;
    figures.rowsCompared += run.rows.length;
    const rewrites = run.events.filter((e) => e.type === 'retry.scheduled' && e.phase === 'export');
    figures.slicesRewritten += rewrites.length + run.failures.length;
    return { proxy, rewrites, events: run.events, failures: run.failures };
  } finally {
    await proxy.close();
  }
}

describe('slice uploads under targeted S3 faults', () => {
  it('a part failing 5 times in a row is retried from its buffer within the store retry (6): the run never notices', async () => {
    const r = await faulted('part 2 of slice 1 fails 5 times, store retry 6', {
      planned: false,
      storeRetry: 6,
      policyRetry: 1,
      match: partOfSlice1(2),
      times: 5,
      kind: 'reset',
    });
    expect(r.rewrites, 'no slice written again').toEqual([]);
    expect(r.proxy.multipart.aborted.size, 'no upload aborted').toBe(0);
  }, 120_000);

  it('past the store retry the upload is aborted, policy.retry does not retry it again, and the next run exports the planned slice again', async () => {
    const r = await faulted('planned: part 2 of slice 1 fails 4 times, store retry 2', {
      planned: true,
      storeRetry: 2,
      policyRetry: 4,
      runs: 3,
      match: partOfSlice1(2),
      times: 4,
      kind: '503',
    });
    expect(r.rewrites, 'the phase layer never retries what the store gave up on').toEqual([]);
    expect(r.failures.length, 'slice 1 exported three times: two failed runs').toBe(2);
    for (const f of r.failures) {
      expect(f).toMatchObject({
        code: 'staging_failed',
        retryable: true,
        details: { retriedBy: 'store', attempts: 2 },
      });
      expect(f.message).toMatch(/000001\.ndjson/);
    }
    expect(r.events.filter((e) => e.type === 'run.resumed')).toHaveLength(2);
    expect(r.proxy.multipart.aborted.size, 'both failed uploads aborted').toBe(2);
  }, 120_000);

  it('past the store retry the upload is aborted and the next run re-exports an unplanned stream', async () => {
    const r = await faulted('unplanned: part 2 of slice 1 fails 2 times, store retry 2', {
      planned: false,
      storeRetry: 2,
      policyRetry: 3,
      runs: 2,
      match: partOfSlice1(2),
      times: 2,
      kind: 'stall',
    });
    expect(r.rewrites, 'no retry by the phase layer').toEqual([]);
    expect(r.failures.length, 'one re-export, by the next run').toBe(1);
    expect(r.proxy.multipart.aborted.size, 'the failed upload aborted').toBeGreaterThanOrEqual(1);
  }, 120_000);

  it('with policy.retry 1 the run fails retryably and leaves no incomplete upload', async () => {
    let left = 2;
    const proxy = await startFaultProxy({
      target: s3Target().endpoint,
      rate: 1,
      burst: 1,
      kinds: ['500'],
      filter: (req) => partOfSlice1(2)(req) && left-- > 0,
    });
    const prefix = uniquePrefix('upfail').replace(/\/$/, '');
    try {
      const err = await stage(proxy.url, prefix, { planned: true, storeRetry: 2, policyRetry: 1 }).catch((e) => e);
      expect(err).toMatchObject({ code: 'staging_failed', retryable: true, details: { retriedBy: 'store' } });
      expect(String(err.message)).toMatch(/000001\.ndjson/);
      expect(proxy.stats.faults['500'], 'both faults fired').toBe(2);
      expect(proxy.incompleteUploads()).toEqual([]);
      expect(await openUploads(prefix)).toEqual([]);
      figures.cases.push('planned, policy.retry 1: fails retryably');
    } finally {
      await proxy.close();
    }
  }, 120_000);

  it('a lost CreateMultipartUpload answer: the upload the server made is found and aborted', async () => {
    const r = await faulted('CreateMultipartUpload answer lost', {
      planned: false,
      storeRetry: 3,
      policyRetry: 1,
      match: createOfSlice1,
      times: 1,
      kind: 'lost',
    });
    const created = [...r.proxy.multipart.created];
    expect(created.length, 'three slices, and the upload whose answer was lost').toBe(4);
    expect(r.proxy.multipart.aborted.size, 'the lost one aborted').toBe(1);
    expect(r.rewrites).toEqual([]);
  }, 120_000);

  it('a lost CompleteMultipartUpload answer: the object is confirmed, not written again', async () => {
    const r = await faulted('CompleteMultipartUpload answer lost', {
      planned: true,
      storeRetry: 3,
      policyRetry: 1,
      match: completeOfSlice1,
      times: 1,
      kind: 'lost',
    });
    expect(r.rewrites).toEqual([]);
  }, 120_000);

  it('an unplanned PostgreSQL stream on a pool of one: past the store retry the upload is aborted, the next run re-exports the stream on the same connection', async () => {
    const table = `"${pgEnv.schema}".events`;
    await pgEnv.query(`CREATE TABLE ${table} (id int PRIMARY KEY, body text NOT NULL)`);
    await pgEnv.query(
      `INSERT INTO ${table} SELECT g, lpad((g - 1)::text, 8, '0') || '-' || repeat('y', 2000) FROM generate_series(1, $1) g`,
      [ROWS],
    );
    const pool = pgEnv.newPool({ max: 1 });
    const pgSource = new PostgresSource({ pool });
    // without its planner: the export streams and cuts the slices itself
    const source: SourceEndpoint<any> = { descriptor: pgSource.descriptor, read: (r, c) => pgSource.read(r, c) };
    let left = 2;
    const proxy = await startFaultProxy({
      target: s3Target().endpoint,
      rate: 1,
      burst: 1,
      kinds: ['reset'],
      filter: (req) => partOfSlice1(2)(req) && left-- > 0,
    });
    const prefix = uniquePrefix('uppg').replace(/\/$/, '');
    const client = createTestS3Client({
      endpoint: proxy.url,
      maxAttempts: 1,
      requestHandler: { requestTimeout: 5_000, connectionTimeout: 2_000 } as never,
    });
    clients.push(client);
    try {
      const sink = new MemorySink();
      const events: IngestionEvent[] = [];
      const unitId = `${pgEnv.schema}.events`;
      const options = {
        source,
        sink,
        staging: new ObjectStoreStagingProvider({
          store: new S3ObjectStore({
            client,
            bucket: testBucket(),
            partSize: 5 * 1024 * 1024,
            retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 50 },
          }),
          prefix,
        }),
        kv: new MemoryKvStore(),
        unit: { endpointId: 'uppg', unitId },
        runId: 'uppg-run',
        mode: 'full' as const,
        policy: {
          sliceMaxRows: 3000,
          chunkSize: 500,
          keepStaging: true,
          retry: { maxAttempts: 3, baseDelayMs: 20, maxDelayMs: 100 },
        },
        onEvent: (e: IngestionEvent) => events.push(e),
        // a connection never given back would make the re-export wait for ever: fail instead
        signal: AbortSignal.timeout(90_000),
      };
      const first = await runUnit(options).catch((e) => e);
      // the store gave up: the run fails at once (its policy.retry does not retry it), and the orchestrator runs it again
      expect(first).toMatchObject({ code: 'staging_failed', retryable: true, details: { retriedBy: 'store' } });
      expect(pool.idleCount, 'the first read gave its connection back').toBe(pool.totalCount);
      const result = await runUnit(options);
      expect(result.stats.rowsImported).toBe(ROWS);
      const got = sink.rows(unitId);
      expect(got.map((r) => Number(r.id)).sort((a, b) => a - b)).toEqual(Array.from({ length: ROWS }, (_, i) => i + 1));
      expect(got.every((r) => r.body === `${String(Number(r.id) - 1).padStart(8, '0')}-${'y'.repeat(2000)}`)).toBe(
        true,
      );
      const rewrites = events.filter((e) => e.type === 'run.resumed');
      expect(events.filter((e) => e.type === 'retry.scheduled')).toEqual([]);
      expect(rewrites, 'one re-export of the stream, by the next run').toHaveLength(1);
      expect(proxy.multipart.aborted.size, 'the failed upload aborted').toBeGreaterThanOrEqual(1);
      expect(proxy.incompleteUploads()).toEqual([]);
      expect(await openUploads(prefix)).toEqual([]);
      expect(pool.idleCount, 'the source connection is back in the pool').toBe(pool.totalCount);
      const faults = Object.values(proxy.stats.faults).reduce((n, x) => n + x, 0);
      expect(faults).toBe(2);
      expect(proxy.unfiredKinds(), 'fault kinds that never fired').toEqual([]);
      figures.cases.push('unplanned PostgreSQL stream, pool of one: re-exported');
      figures.faultsInjected += faults;
      for (const [k, v] of Object.entries(proxy.stats.faults)) figures.faults[k] = (figures.faults[k] ?? 0) + v;
      figures.uploadsCreated += proxy.multipart.created.size;
      figures.uploadsAborted += proxy.multipart.aborted.size;
      figures.rowsCompared += got.length;
      figures.slicesRewritten += rewrites.length;
    } finally {
      await proxy.close();
    }
  }, 120_000);
});
