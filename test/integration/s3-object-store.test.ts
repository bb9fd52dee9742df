import { createHash, randomBytes } from 'node:crypto';
import { ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { IngestError } from '../../src/index.js';
import { S3ObjectStore } from '../../src/s3/index.js';
import { createTestS3Client, testBucket, uniquePrefix } from '../helpers/s3.js';

const MiB = 1024 * 1024;
const clients: S3Client[] = [];
afterAll(() => {
  for (const c of clients) c.destroy();
});

/** A test client that counts the commands it sends and can fail chosen ones before they leave the process. */
function instrumentedClient(inject?: (command: string, attempt: number) => unknown) {
  const client = createTestS3Client({ maxAttempts: 1 });
  clients.push(client);
  const counts: Record<string, number> = {};
  const inputs: Record<string, any[]> = {};
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = context.commandName ?? '?';
      counts[name] = (counts[name] ?? 0) + 1;
      (inputs[name] ??= []).push(args.input);
      const failure = inject?.(name, counts[name]);
      if (failure) throw failure;
      return next(args);
    },
    { step: 'initialize', name: 'countAndInject' },
  );
  return { client, counts, inputs };
}

async function openUploads(client: S3Client, prefix: string): Promise<string[]> {
  const out = await client.send(new ListMultipartUploadsCommand({ Bucket: testBucket(), Prefix: prefix }));
  return (out.Uploads ?? []).map((u) => u.Key ?? '');
}

async function readAll(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const chunk of source) parts.push(chunk);
  return Buffer.concat(parts);
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('S3ObjectStore against a real S3 server', () => {
  it('uploads a streamed body above the part size as a multipart upload and reads it back', async () => {
    const { client, counts } = instrumentedClient();
    const store = new S3ObjectStore({ client, bucket: testBucket(), partSize: 5 * MiB, queueSize: 2 });
    const key = `${uniquePrefix('s3-multipart')}big`;
    const body = randomBytes(12 * MiB + 123);
    const info = await store.put(
      key,
      (async function* () {
        for (let at = 0; at < body.byteLength; at += 700_000) yield body.subarray(at, at + 700_000);
      })(),
      { contentType: 'application/x-ndjson', metadata: { rows: '3' } },
    );
    expect(info.size).toBe(body.byteLength);
    expect(counts.CreateMultipartUploadCommand).toBe(1);
    expect(counts.UploadPartCommand).toBe(3);
    expect(counts.CompleteMultipartUploadCommand).toBe(1);
    expect(sha256(await readAll(await store.get(key)))).toBe(sha256(body));
    expect(await store.head(key)).toMatchObject({
      size: body.byteLength,
      contentType: 'application/x-ndjson',
      metadata: { rows: '3' },
    });
    expect(await openUploads(client, key)).toEqual([]);
  });

  it('an upload aborted through its signal leaves no incomplete multipart upload', async () => {
    const { client } = instrumentedClient();
    const store = new S3ObjectStore({ client, bucket: testBucket(), partSize: 5 * MiB, queueSize: 1 });
    const key = `${uniquePrefix('s3-abort')}partial`;
    const controller = new AbortController();
    let openDuringUpload: string[] = [];
    const body = async function* () {
      for (let i = 0; i < 3; i++) yield randomBytes(4 * MiB);
      // Two parts are on their way: the multipart upload exists now.
      await new Promise((r) => setTimeout(r, 300));
      openDuringUpload = await openUploads(client, key);
      controller.abort();
      yield randomBytes(4 * MiB);
      yield randomBytes(4 * MiB);
    };
    const err = await store.put(key, body(), { signal: controller.signal }).catch((e) => e);
    expect(IngestError.is(err, 'aborted')).toBe(true);
    expect(openDuringUpload).toEqual([key]);
    expect(await openUploads(client, key)).toEqual([]);
    expect(await store.head(key)).toBeUndefined();
  });

  it('an upload whose body fails leaves no incomplete multipart upload and reports the failure', async () => {
    const { client } = instrumentedClient();
    const store = new S3ObjectStore({ client, bucket: testBucket(), partSize: 5 * MiB, queueSize: 2 });
    const key = `${uniquePrefix('s3-fail')}broken`;
    let openDuringUpload: string[] = [];
    const body = async function* () {
      for (let i = 0; i < 3; i++) yield randomBytes(4 * MiB);
      await new Promise((r) => setTimeout(r, 300));
      openDuringUpload = await openUploads(client, key);
      throw new Error('source went away');
    };
    const err = await store.put(key, body()).catch((e) => e);
    expect(IngestError.is(err, 'staging_failed')).toBe(true);
    expect(String(err.message)).toContain('source went away');
    expect(openDuringUpload).toEqual([key]);
    expect(await openUploads(client, key)).toEqual([]);
    expect(await store.head(key)).toBeUndefined();
  });

  it('lists more than 1000 keys across continuation tokens and deletes them in batches of 1000', {
    timeout: 240_000,
  }, async () => {
    const { client, counts, inputs } = instrumentedClient();
    const store = new S3ObjectStore({ client, bucket: testBucket(), retry: { baseDelayMs: 10 } });
    const prefix = uniquePrefix('s3-many');
    const keys = Array.from({ length: 1003 }, (_, i) => `${prefix}${String(i).padStart(5, '0')}`);
    for (let i = 0; i < keys.length; i += 100) {
      await Promise.all(keys.slice(i, i + 100).map((k) => store.put(k, new TextEncoder().encode(k))));
    }
    const listed: string[] = [];
    for await (const info of store.list(prefix)) listed.push(info.key);
    expect(listed).toEqual(keys);
    expect(counts.ListObjectsV2Command).toBe(2);
    await store.delete(keys);
    // Two batches (s3rver sometimes answers a batch with a 500 InternalError; the store retries it).
    const batches: string[][] = inputs.DeleteObjectsCommand.map((input) =>
      input.Delete.Objects.map((o: { Key: string }) => o.Key),
    );
    expect(new Set(batches.flat())).toEqual(new Set(keys));
    expect(new Set(batches.map((b) => b.length))).toEqual(new Set([1000, 3]));
    const after: string[] = [];
    for await (const info of store.list(prefix)) after.push(info.key);
    expect(after).toEqual([]);
  });

  it('retries transient failures (503 SlowDown, connection reset) on idempotent requests', async () => {
    const slowDown = Object.assign(new Error('Please reduce your request rate.'), {
      name: 'SlowDown',
      $metadata: { httpStatusCode: 503 },
    });
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    const { client, counts } = instrumentedClient((command, attempt) => {
      if (command === 'PutObjectCommand' && attempt === 1) return slowDown;
      if (command === 'GetObjectCommand' && attempt <= 2) return reset;
      if (command === 'ListObjectsV2Command' && attempt === 1) return slowDown;
      return undefined;
    });
    const store = new S3ObjectStore({ client, bucket: testBucket(), retry: { maxAttempts: 3, baseDelayMs: 5 } });
    const prefix = uniquePrefix('s3-retry');
    await store.put(`${prefix}x`, new TextEncoder().encode('hello'));
    expect(counts.PutObjectCommand).toBe(2);
    expect((await readAll(await store.get(`${prefix}x`))).toString()).toBe('hello');
    expect(counts.GetObjectCommand).toBe(3);
    const keys: string[] = [];
    for await (const info of store.list(prefix)) keys.push(info.key);
    expect(keys).toEqual([`${prefix}x`]);
    expect(counts.ListObjectsV2Command).toBe(2);
  });

  it('gives up after maxAttempts with a retryable staging_failed, and never retries AccessDenied', async () => {
    const denied = Object.assign(new Error('Access Denied'), {
      name: 'AccessDenied',
      $metadata: { httpStatusCode: 403 },
    });
    const internal = Object.assign(new Error('We encountered an internal error.'), {
      name: 'InternalError',
      $metadata: { httpStatusCode: 500 },
    });
    const { client, counts } = instrumentedClient((command) =>
      command === 'HeadObjectCommand' ? denied : command === 'GetObjectCommand' ? internal : undefined,
    );
    const store = new S3ObjectStore({ client, bucket: testBucket(), retry: { maxAttempts: 3, baseDelayMs: 1 } });
    const headErr = await store.head('any/key').catch((e) => e);
    expect(headErr).toMatchObject({ code: 'staging_failed', retryable: false });
    expect(counts.HeadObjectCommand).toBe(1);
    const getErr = await store.get('any/key').catch((e) => e);
    expect(getErr).toMatchObject({ code: 'staging_failed', retryable: true });
    expect(counts.GetObjectCommand).toBe(3);
  });

  it('maps a missing object to not_found and bad credentials to a non-retryable error without the secret', async () => {
    const store = new S3ObjectStore({ client: createTestS3Client(), bucket: testBucket() });
    await expect(store.get(`${uniquePrefix('s3-missing')}nope`)).rejects.toMatchObject({ code: 'not_found' });
    const secret = 'wrong-secret-Zq81XvK2pL0';
    const badClient = createTestS3Client({
      credentials: { accessKeyId: 'NUCLEUSTESTNOTAKEY', secretAccessKey: secret },
      maxAttempts: 1,
    });
    clients.push(badClient);
    const bad = new S3ObjectStore({ client: badClient, bucket: testBucket(), retry: { maxAttempts: 1 } });
    const err = await bad.put(`${uniquePrefix('s3-auth')}x`, new Uint8Array(1)).catch((e) => e);
    expect(err).toMatchObject({ code: 'staging_failed', retryable: false });
    expect(JSON.stringify(err.toJSON())).not.toContain(secret);
    expect(String(err.stack)).not.toContain(secret);
    const missingBucket = new S3ObjectStore({ client: createTestS3Client(), bucket: 'no-such-bucket-nucleus' });
    await expect(missingBucket.put('k', new Uint8Array(1))).rejects.toMatchObject({
      code: 'staging_failed',
      retryable: false,
    });
  });

  it('refuses to build without a client and lists every option problem', () => {
    expect(() => new S3ObjectStore({ bucket: '', partSize: 1024 } as never)).toThrow(
      expect.objectContaining({ code: 'config_invalid', message: expect.stringMatching(/client.*bucket.*partSize/s) }),
    );
  });
});
