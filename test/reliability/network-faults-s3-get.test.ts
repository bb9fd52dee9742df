/**
 * A GET cut off mid-body resumes at the byte it reached — and only on the same object: when the object is
 * overwritten between the cut and the resumption (same size, other bytes), the read fails with a non-retryable
 * `staging_failed` instead of splicing two objects (s3rver ignores `If-Match`, so this is the store's own ETag
 * check at work; real S3 answers 412 to the `If-Match`, which ends the same way).
 */
import { randomBytes } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { IngestError } from '../../src/index.js';
import { S3ObjectStore } from '../../src/s3/index.js';
import { type FaultProxy, startFaultProxy } from '../helpers/fault-proxy.js';
import { createTestS3Client, s3Target, testBucket, uniquePrefix } from '../helpers/s3.js';

const clients: S3Client[] = [];
afterAll(() => {
  for (const c of clients) c.destroy();
});

function client(endpoint?: string): S3Client {
  // A request timeout, so that a response that stops short fails the test instead of hanging it.
  const c = createTestS3Client({
    requestHandler: { requestTimeout: 10_000, connectionTimeout: 2_000 } as never,
    ...(endpoint ? { endpoint, maxAttempts: 1 } : {}),
  });
  clients.push(c);
  return c;
}

async function readAll(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const chunk of source) parts.push(chunk);
  return Buffer.concat(parts);
}

/** A proxy that cuts the first `cuts` GETs of `key` in the middle of their body. */
async function cutting(key: string, cuts: number): Promise<FaultProxy> {
  let left = cuts;
  return startFaultProxy({
    target: s3Target().endpoint,
    rate: 1,
    burst: 1,
    kinds: ['cut'],
    filter: (req) => req.method === 'GET' && (req.url ?? '').split('?')[0].endsWith(key) && left-- > 0,
  });
}

describe('a GET cut off mid-body', () => {
  it('resumes with ranged GETs at the byte it reached and returns the exact bytes', async () => {
    const key = `${uniquePrefix('getcut')}object`;
    const body = randomBytes(3 * 1024 * 1024 + 17);
    await new S3ObjectStore({ client: client(), bucket: testBucket() }).put(key, body);
    const proxy = await cutting(key, 3);
    try {
      const store = new S3ObjectStore({ client: client(proxy.url), bucket: testBucket(), retry: { baseDelayMs: 5 } });
      const got = await readAll(await store.get(key));
      expect(got.equals(body)).toBe(true);
      expect(proxy.stats.faults.cut).toBe(3);
      expect(proxy.stats.ranged, 'each cut resumed with a ranged GET').toBe(3);
    } finally {
      await proxy.close();
    }
  });

  it('fails without splicing when the object changed before the resumption', async () => {
    const key = `${uniquePrefix('getcut')}object`;
    const first = randomBytes(2 * 1024 * 1024);
    const second = randomBytes(first.byteLength);
    const direct = new S3ObjectStore({ client: client(), bucket: testBucket() });
    await direct.put(key, first);
    const proxy = await cutting(key, 1);
    try {
      // A long enough backoff that the overwrite lands between the cut and the resumption.
      const store = new S3ObjectStore({
        client: client(proxy.url),
        bucket: testBucket(),
        retry: { maxAttempts: 3, baseDelayMs: 4000, maxDelayMs: 4000 },
      });
      const reading = (async () => readAll(await store.get(key)))().catch((e) => e);
      // Overwrite only once the cut is done: s3rver writes objects in place, so overwriting while it still streams
      // the first answer would shorten that answer under its Content-Length (a hang, not a cut).
      while (proxy.stats.cutAtBytes < first.byteLength / 2) await new Promise((r) => setTimeout(r, 5));
      await new Promise((r) => setTimeout(r, 50));
      await direct.put(key, second);
      const err = await reading;
      expect(IngestError.is(err), String(err)).toBe(true);
      expect(err).toMatchObject({ code: 'staging_failed', retryable: false });
      expect(String(err.message)).toMatch(/changed while it was read/);
      expect(proxy.stats.faults.cut, 'the cut fired').toBe(1);
      expect(proxy.stats.ranged, 'the resumption was asked for').toBe(1);
    } finally {
      await proxy.close();
    }
  });
});
