import type http from 'node:http';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import {
  exportUnit,
  IngestError,
  importUnit,
  MemoryKvStore,
  ObjectStoreStagingProvider,
  type Row,
} from '../../src/index.js';
import { S3ObjectStore } from '../../src/s3/index.js';
import { MemorySink, MemorySource } from '../../src/testing/index.js';
import { type FaultProxy, startFaultProxy } from '../helpers/fault-proxy.js';
import { createTestS3Client, s3Target, testBucket, uniquePrefix } from '../helpers/s3.js';

/*
 * One read per S3 slice on import (docs/staging.md, "Verification"): S3 etags are content hashes, so the upload's etag
 * goes into the manifest and `verify()` proves each slice by the session's listing instead of downloading it; the
 * import's own read checks sha256. A replaced slice (same size, other bytes) is still caught before any row is
 * committed, and an etag that merely differs (another quoting, a store that rewrote it) costs a download, not a run.
 */

const clients: S3Client[] = [];
const proxies: FaultProxy[] = [];
afterAll(async () => {
  for (const p of proxies) await p.close();
  for (const c of clients) c.destroy();
});

const ROWS: Row[] = Array.from({ length: 900 }, (_, i) => ({
  id: i + 1,
  name: `row ${i + 1}`,
  note: 'x'.repeat(i % 50),
}));

/** An S3 store behind a loopback proxy that counts the GETs of each slice object (no faults). */
async function countingStore() {
  const gets = new Map<string, number>();
  const proxy = await startFaultProxy({
    target: s3Target().endpoint,
    rate: 0,
    filter: (req: http.IncomingMessage) => {
      const key = decodeURIComponent((req.url ?? '').split('?')[0]);
      if (req.method === 'GET' && /\/\d{6}\.ndjson$/.test(key)) gets.set(key, (gets.get(key) ?? 0) + 1);
      return false;
    },
  });
  proxies.push(proxy);
  const client = createTestS3Client({ endpoint: proxy.url });
  clients.push(client);
  return { store: new S3ObjectStore({ client, bucket: testBucket() }), gets };
}

async function exported() {
  const { store, gets } = await countingStore();
  const staging = new ObjectStoreStagingProvider({ store, prefix: uniquePrefix('verify-listing').replace(/\/$/, '') });
  const base = {
    staging,
    kv: new MemoryKvStore(),
    unit: { vendor: 'memory', endpointId: 'mem', unitId: 'users' },
    mode: 'full' as const,
    policy: { sliceMaxRows: 300, retry: { maxAttempts: 1 } },
  };
  const source = new MemorySource({ units: { users: { rows: ROWS, planSlices: 3 } } });
  const run = await exportUnit({ ...base, source });
  const session = await staging.openSession(run.sessionRef!);
  const manifest = (await session.describe()).slices;
  await session.close();
  const direct = new S3ObjectStore({ client: createTestS3Client(), bucket: testBucket() });
  return { base, gets, run, direct, manifestKey: `${run.sessionRef!.sessionId}/manifest.json`, slices: manifest };
}

async function readManifest(direct: S3ObjectStore, key: string): Promise<any> {
  const parts: Uint8Array[] = [];
  for await (const c of await direct.get(key)) parts.push(c);
  return JSON.parse(Buffer.concat(parts).toString('utf8'));
}

describe('S3 staging: verify by listing, one read per slice', () => {
  it('records each slice etag and reads each slice once on import; every row lands once', async () => {
    const t = await exported();
    const manifest = await readManifest(t.direct, t.manifestKey);
    expect(manifest.slices.length).toBe(3);
    for (const s of manifest.slices) expect(s.etag).toMatch(/^"?[0-9a-f]{32}(-\d+)?"?$/);
    t.gets.clear();
    const sink = new MemorySink();
    const res = await importUnit({ ...t.base, sink });
    expect(res.stats.rowsImported).toBe(900);
    expect(sink.rows('users').map((r) => r.id)).toEqual(ROWS.map((r) => r.id));
    expect([...t.gets.values()]).toEqual([1, 1, 1]);
  });

  it('a slice replaced by other bytes of the same size is caught before any row is committed', async () => {
    const t = await exported();
    const manifest = await readManifest(t.direct, t.manifestKey);
    const victim = manifest.slices[2];
    const parts: Uint8Array[] = [];
    for await (const c of await t.direct.get(victim.key)) parts.push(c);
    const bytes = Buffer.concat(parts);
    bytes[bytes.length - 5] ^= 0x01; // one bit of the last row
    await t.direct.put(victim.key, bytes);
    const sink = new MemorySink();
    const err = await importUnit({ ...t.base, sink }).catch((e) => e);
    expect(IngestError.is(err, 'staging_corrupt'), String(err)).toBe(true);
    expect(err.message).toContain('slice 2');
    expect(sink.rows('users')).toEqual([]);
  });

  it('an etag that differs from the listing only costs a download: the slice is hashed and imported', async () => {
    const t = await exported();
    const manifest = await readManifest(t.direct, t.manifestKey);
    manifest.slices[1].etag = '"0123456789abcdef0123456789abcdef"';
    await t.direct.put(t.manifestKey, Buffer.from(JSON.stringify(manifest)));
    t.gets.clear();
    const sink = new MemorySink();
    const res = await importUnit({ ...t.base, sink });
    expect(res.stats.rowsImported).toBe(900);
    const bySlice = manifest.slices.map(
      (s: { key: string }) => t.gets.get(`/${testBucket()}/${s.key}`) ?? t.gets.get(s.key),
    );
    expect(bySlice).toEqual([1, 2, 1]);
  });
});
