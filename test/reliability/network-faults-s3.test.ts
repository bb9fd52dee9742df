/**
 * Network faults on S3: a fault-injecting proxy in front of the S3 server (500, 503 SlowDown, connection resets,
 * stalls; 10% of requests start a burst of 3). A run staged through it produces byte-identical slices and the same
 * imported rows as a fault-free run, and every multipart upload it created was completed or aborted.
 */
import { ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryKvStore, ObjectStoreStagingProvider, type Row, runUnit } from '../../src/index.js';
import { S3ObjectStore } from '../../src/s3/index.js';
import { MemorySink, MemorySource } from '../../src/testing/index.js';
import { type FaultProxy, startFaultProxy } from '../helpers/fault-proxy.js';
import { createTestS3Client, s3Target, testBucket, uniquePrefix } from '../helpers/s3.js';
import { recordFigures, SOAK } from './harness.js';

const ROWS = SOAK ? 40_000 : 8_000;
let proxy: FaultProxy;
const figures = {
  runs: 0,
  requests: 0,
  faultsInjected: 0,
  faults: {} as Record<string, number>,
  multipartCreated: 0,
  rowsCompared: 0,
  slicesCompared: 0,
};

beforeAll(async () => {
  proxy = await startFaultProxy({ target: s3Target().endpoint, rate: 0.1, burst: 3, stallMs: 1000, seed: 7 });
});
afterAll(async () => {
  await proxy?.close();
  recordFigures('network-faults-s3', figures);
});

/** Rows big enough that each slice (3000 rows, ~6 MiB) goes up as a multipart upload. */
function rows(): Row[] {
  return Array.from({ length: ROWS }, (_, i) => ({
    id: i + 1,
    body: `${String(i).padStart(8, '0')}-${'x'.repeat(2000)}`,
    at: new Date(1_700_000_000_000 + i * 1000),
  }));
}

function clientVia(endpoint: string): S3Client {
  // Requests time out, so a stalled connection fails and is retried instead of hanging.
  return createTestS3Client({ endpoint, requestHandler: { requestTimeout: 5_000, connectionTimeout: 2_000 } as never });
}

async function stageAndImport(endpoint: string, prefix: string) {
  const store = new S3ObjectStore({
    client: clientVia(endpoint),
    bucket: testBucket(),
    partSize: 5 * 1024 * 1024,
    retry: { maxAttempts: 6, baseDelayMs: 20, maxDelayMs: 200 },
  });
  const staging = new ObjectStoreStagingProvider({ store, prefix });
  const sink = new MemorySink();
  const result = await runUnit({
    source: new MemorySource({ units: { events: { rows: rows(), batchSize: 1000 } } }),
    sink,
    staging,
    kv: new MemoryKvStore(),
    unit: { endpointId: 'netfault', unitId: 'events' },
    runId: 'netfault-run',
    mode: 'full',
    policy: { sliceMaxRows: 3000, keepStaging: true, retry: { maxAttempts: 8, baseDelayMs: 20, maxDelayMs: 300 } },
  });
  figures.runs++;
  return { result, rows: sink.rows('events') };
}

async function objects(prefix: string): Promise<Map<string, Buffer>> {
  const store = new S3ObjectStore({ client: createTestS3Client(), bucket: testBucket() });
  const out = new Map<string, Buffer>();
  for await (const info of store.list(`${prefix}/`)) {
    const name = info.key.slice(prefix.length + 1);
    if (!/\/\d{6}\.ndjson$/.test(name)) continue; // slices only: manifests and markers hold timestamps
    const chunks: Uint8Array[] = [];
    for await (const c of await store.get(info.key)) chunks.push(c);
    out.set(name, Buffer.concat(chunks));
  }
  return out;
}

describe('S3 staging behind a fault-injecting proxy', () => {
  it('stages byte-identical slices, imports the same rows and leaves no incomplete multipart upload', async () => {
    const clean = uniquePrefix('netclean').replace(/\/$/, '');
    const faulty = uniquePrefix('netfault').replace(/\/$/, '');
    const a = await stageAndImport(s3Target().endpoint, clean);
    const b = await stageAndImport(proxy.url, faulty);

    const faults = Object.values(proxy.stats.faults).reduce((n, x) => n + x, 0);
    figures.requests = proxy.stats.requests;
    figures.faultsInjected = faults;
    figures.faults = { ...proxy.stats.faults };
    figures.multipartCreated = proxy.multipart.created.size;
    expect(faults, 'the proxy must actually have injected faults').toBeGreaterThan(0);
    expect(proxy.multipart.created.size, 'slices of ~6 MiB must go up as multipart uploads').toBeGreaterThan(0);

    expect(b.result.stats.rowsImported).toBe(ROWS);
    expect(b.rows).toEqual(a.rows);
    figures.rowsCompared = b.rows.length;
    const [ca, cb] = await Promise.all([objects(clean), objects(faulty)]);
    expect(ca.size).toBeGreaterThan(1);
    expect([...cb.keys()].sort()).toEqual([...ca.keys()].sort());
    for (const [k, v] of ca) expect(cb.get(k)?.equals(v), `slice ${k} differs`).toBe(true);
    figures.slicesCompared = ca.size;

    // Every multipart upload the library created was completed or aborted.
    expect(proxy.incompleteUploads()).toEqual([]);
    if (!s3Target().local) {
      const listed = await createTestS3Client().send(
        new ListMultipartUploadsCommand({ Bucket: testBucket(), Prefix: `${faulty}/` }),
      );
      expect(listed.Uploads ?? []).toEqual([]);
    }
  }, 240_000);
});
