/**
 * Network faults on S3: a fault-injecting proxy in front of the S3 server (500, 503 SlowDown, connection resets,
 * stalls, answers cut off mid-body, answers lost after the server acted; 10% of requests start a burst of 3 — a
 * quarter of all requests fail — with the store's `retry` at 6 attempts, and a 20% variant — 43% of requests fail
 * — at 12 attempts: under that many faults the SDK's own retry quota runs dry (its requests go out once), and a
 * request whose attempts are all drawn into bursts fails, since bursts count requests, not time). Each seed stages and imports the same rows through it; the staged slices must have the sha256 of a
 * fault-free run of the same data, the imported rows must be the same, and every multipart upload created through
 * the proxy must be completed or aborted (checked both from the proxy's log and with ListMultipartUploads).
 *
 *   FAULT_SEEDS=7,11 SOAK=1 npx vitest run test/reliability/network-faults-s3.test.ts   # replay seeds at soak size
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  IngestError,
  type IngestionEvent,
  MemoryKvStore,
  ObjectStoreStagingProvider,
  type Row,
  runUnit,
} from '../../src/index.js';
import { S3ObjectStore } from '../../src/s3/index.js';
import { MemorySink, MemorySource } from '../../src/testing/index.js';
import { ALL_FAULT_KINDS, type FaultKind, faultSeeds, startFaultProxy } from '../helpers/fault-proxy.js';
import { createTestS3Client, s3Target, testBucket, uniquePrefix } from '../helpers/s3.js';
import { openUploads, sliceHashes } from '../helpers/s3-staged.js';
import { recordFigures, SOAK } from './harness.js';

/** ~2 KB rows; slices of 3000 rows (~6 MiB) go up as multipart uploads of two parts. */
const ROWS = SOAK ? 40_000 : 8_000;
/** Seeds of the 10% runs: ten at soak size, one in the PR suite; `FAULT_SEEDS` overrides both lists. */
const SEEDS = faultSeeds(SOAK ? [7, 11, 23, 42, 101, 257, 1009, 4242, 65537, 99991] : [7]);
/** Seeds of the 20% runs. */
/** Runs of one unit the modelled orchestrator makes (the first included) before a retryable failure fails the test. */
const ORCHESTRATOR_RUNS = 4;
const HEAVY_SEEDS = faultSeeds(SOAK ? [3, 19, 31] : [3]);

const clients: S3Client[] = [];
const figures = {
  rows: ROWS,
  seeds: [] as Array<{ seed: number; rate: number; faults: number; requests: number; ms: number; retries: string[] }>,
  runs: 0,
  requests: 0,
  faultsInjected: 0,
  faults: {} as Record<string, number>,
  multipartCreated: 0,
  multipartAborted: 0,
  incompleteUploads: 0,
  pipelineRetries: 0,
  rowsCompared: 0,
  slicesCompared: 0,
  durationMs: 0,
};
const started = Date.now();
let clean: { prefix: string; rows: Row[]; slices: Map<string, string> };

afterAll(() => {
  for (const c of clients) c.destroy();
  figures.durationMs = Date.now() - started;
  recordFigures('network-faults-s3', figures);
});

function rows(): Row[] {
  return Array.from({ length: ROWS }, (_, i) => ({
    id: i + 1,
    body: `${String(i).padStart(8, '0')}-${'x'.repeat(2000)}`,
    at: new Date(1_700_000_000_000 + i * 1000),
  }));
}

function clientVia(endpoint: string): S3Client {
  // Requests time out, so a stalled connection fails and is retried instead of hanging.
  const client = createTestS3Client({
    endpoint,
    requestHandler: { requestTimeout: 5_000, connectionTimeout: 2_000 } as never,
  });
  clients.push(client);
  return client;
}

async function stageAndImport(endpoint: string, prefix: string, storeAttempts = 6) {
  const store = new S3ObjectStore({
    client: clientVia(endpoint),
    bucket: testBucket(),
    partSize: 5 * 1024 * 1024,
    retry: { maxAttempts: storeAttempts, baseDelayMs: 20, maxDelayMs: 200 },
  });
  const staging = new ObjectStoreStagingProvider({ store, prefix });
  const sink = new MemorySink();
  const source = new MemorySource({ units: { events: { rows: rows(), batchSize: 1000 } } });
  const kv = new MemoryKvStore();
  const retries: string[] = [];
  let result: Awaited<ReturnType<typeof runUnit>> | undefined;
  // One retry budget per layer (ADR 0017): a request the store gave up on fails the run at once, and the
  // orchestrator's layer — modelled here — runs the unit again with the same ids; the run resumes from staging.
  for (let run = 1; !result; run++) {
    try {
      result = await runUnit({
        source,
        sink,
        staging,
        kv,
        unit: { endpointId: 'netfault', unitId: 'events' },
        runId: 'netfault-run',
        mode: 'full',
        policy: { sliceMaxRows: 3000, keepStaging: true, retry: { maxAttempts: 8, baseDelayMs: 20, maxDelayMs: 300 } },
        onEvent: (e: IngestionEvent) => {
          if (e.type === 'retry.scheduled')
            retries.push(`${e.phase}${e.slice !== undefined ? ` slice ${e.slice}` : ''}: ${e.code}`);
        },
      });
    } catch (err) {
      if (!IngestError.is(err) || !err.retryable || run >= ORCHESTRATOR_RUNS) throw err;
      retries.push(`orchestrator run ${run + 1}: ${err.code}`);
    }
  }
  figures.runs++;
  figures.pipelineRetries += retries.length;
  return { result, rows: sink.rows('events'), retries };
}

beforeAll(async () => {
  const prefix = uniquePrefix('netclean').replace(/\/$/, '');
  const a = await stageAndImport(s3Target().endpoint, prefix);
  clean = { prefix, rows: a.rows, slices: await sliceHashes(prefix) };
  expect(a.result.stats.rowsImported).toBe(ROWS);
  expect(clean.slices.size, 'the fault-free run must stage several slices').toBeGreaterThan(1);
}, 300_000);

async function faultyRun(seed: number, rate: number, kinds: FaultKind[], storeAttempts: number) {
  const t0 = Date.now();
  const proxy = await startFaultProxy({ target: s3Target().endpoint, rate, burst: 3, stallMs: 1000, seed, kinds });
  const label = `seed ${seed} at ${rate * 100}% (replay: FAULT_SEEDS=${seed}${SOAK ? ' SOAK=1' : ''})`;
  try {
    const prefix = uniquePrefix(`netfault-${seed}`).replace(/\/$/, '');
    const b = await stageAndImport(proxy.url, prefix, storeAttempts);
    figures.incompleteUploads += proxy.incompleteUploads().length;
    const faults = Object.values(proxy.stats.faults).reduce((n, x) => n + x, 0);
    expect(faults, `${label}: the proxy must actually have injected faults`).toBeGreaterThan(0);
    expect(proxy.unfiredKinds(), `${label}: fault kinds that never fired`).toEqual([]);
    expect(proxy.multipart.created.size, `${label}: slices must go up as multipart uploads`).toBeGreaterThan(0);

    expect(b.result.stats.rowsImported, label).toBe(ROWS);
    expect(b.rows.length, label).toBe(clean.rows.length);
    expect(b.rows, `${label}: imported rows differ from the fault-free run`).toEqual(clean.rows);
    const hashes = await sliceHashes(prefix);
    expect([...hashes.keys()].sort(), label).toEqual([...clean.slices.keys()].sort());
    for (const [name, sha] of clean.slices) expect(hashes.get(name), `${label}: slice ${name} differs`).toBe(sha);

    // Every multipart upload created through the proxy was completed or aborted — and the server agrees.
    expect(proxy.incompleteUploads(), `${label}: incomplete multipart uploads`).toEqual([]);
    expect(await openUploads(prefix), `${label}: ListMultipartUploads`).toEqual([]);

    figures.requests += proxy.stats.requests;
    figures.faultsInjected += faults;
    for (const [k, v] of Object.entries(proxy.stats.faults)) figures.faults[k] = (figures.faults[k] ?? 0) + v;
    figures.multipartCreated += proxy.multipart.created.size;
    figures.multipartAborted += proxy.multipart.aborted.size;
    figures.rowsCompared += b.rows.length;
    figures.slicesCompared += hashes.size;
    figures.seeds.push({ seed, rate, faults, requests: proxy.stats.requests, ms: Date.now() - t0, retries: b.retries });
  } finally {
    await proxy.close();
  }
}

describe('S3 staging behind a fault-injecting proxy', () => {
  for (const seed of SEEDS) {
    it(`seed ${seed}, 10% of requests start a burst of 3 faults of every kind: byte-identical slices, the same rows, no incomplete upload`, async () => {
      await faultyRun(seed, 0.1, ALL_FAULT_KINDS, 6);
    }, 300_000);
  }
  for (const seed of HEAVY_SEEDS) {
    it(`seed ${seed}, 20% of requests start a burst of 3 faults (store retry 12): the same, under twice the faults`, async () => {
      await faultyRun(seed, 0.2, ALL_FAULT_KINDS, 12);
    }, 400_000);
  }
});
