import { createHash } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  type CompletedPart,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { IngestError } from '../errors/ingest-error.js';
import { throwIfAborted } from '../util/abort.js';
import { s3Failure } from './s3-errors.js';

/** Runs one idempotent S3 request with the store's retry policy, mapping failures; `attempt` counts from 1. */
export type Retrying = <T>(fn: (attempt: number) => Promise<T>, op: string) => Promise<T>;

/** What {@link uploadStream} needs. @internal */
export interface StreamUploadTarget {
  client: S3Client;
  bucket: string;
  key: string;
  contentType: string;
  metadata: Record<string, string>;
  partSize: number;
  queueSize: number;
  retrying: Retrying;
  signal?: AbortSignal;
}

/** Result of a streamed upload. @internal */
export interface StreamUploadResult {
  etag: string | undefined;
  /** Bytes uploaded. */
  size: number;
  /** 1 for a single PutObject. */
  parts: number;
}

interface Part {
  number: number;
  data: Buffer;
}

/**
 * Upload a stream with every S3 request retried on its own. Parts are buffered (at most `queueSize` in flight
 * plus one being filled), so a part that fails is sent again from memory: a burst of faults on one part costs
 * that part's retries, not the object. The shape follows `@aws-sdk/lib-storage`'s `Upload` (N workers pull
 * parts from one generator; on failure wait for all, abort the upload, rethrow the first error) — which leaves
 * a part to the client's own `maxAttempts` (3 by default) and its shared retry quota.
 *
 * - A body that fits in one part is one PutObject (retried).
 * - CreateMultipartUpload is retried; when a retry was needed, an upload the server created for an answer that
 *   was lost is looked up (ListMultipartUploads on the key) and aborted, so none is left behind.
 * - CompleteMultipartUpload is retried; a retry that fails (S3 answers `NoSuchUpload`) may follow an attempt that
 *   completed but whose answer was lost: HeadObject decides (the size, and S3's multipart ETag `md5(part md5s)-N`
 *   where the server reports one of that form; servers that report a plain ETag are judged by size, and the
 *   reader's sha256 check still catches a different object of the same size).
 * - On failure or abort the multipart upload is aborted (retried) before the error is rethrown.
 * @internal
 */
export async function uploadStream(
  body: AsyncIterable<Uint8Array>,
  t: StreamUploadTarget,
): Promise<StreamUploadResult> {
  const where = `put of ${t.key}`;
  const source = partsOf(body, t.partSize)[Symbol.asyncIterator]();
  const first = await source.next();
  const second = first.done ? undefined : await source.next();
  if (first.done || second?.done) {
    const data = first.done ? Buffer.alloc(0) : first.value.data;
    throwIfAborted(t.signal, where);
    const out = await t.retrying(
      () =>
        t.client.send(
          new PutObjectCommand({
            Bucket: t.bucket,
            Key: t.key,
            ContentType: t.contentType,
            Metadata: t.metadata,
            Body: data,
            ContentLength: data.byteLength,
          }),
          { abortSignal: t.signal },
        ),
      'put',
    );
    return { etag: out.ETag, size: data.byteLength, parts: 1 };
  }

  throwIfAborted(t.signal, where);
  const withChecksums = (await t.client.config.requestChecksumCalculation?.()) === 'WHEN_SUPPORTED';
  let createAttempts = 0;
  const created = await t.retrying((attempt) => {
    createAttempts = attempt;
    return t.client.send(
      new CreateMultipartUploadCommand({
        Bucket: t.bucket,
        Key: t.key,
        ContentType: t.contentType,
        Metadata: t.metadata,
        ...(withChecksums ? { ChecksumAlgorithm: 'CRC32' as const } : {}),
      }),
      { abortSignal: t.signal },
    );
  }, 'create multipart upload');
  const uploadId = created.UploadId;
  try {
    if (!uploadId) {
      throw new IngestError('staging_failed', `S3 ${where}: CreateMultipartUpload answered without an UploadId`, {
        retryable: true,
        details: { bucket: t.bucket, key: t.key },
      });
    }
    const queued: Part[] = [first.value, (second as IteratorYieldResult<Part>).value];
    const next = async (): Promise<Part | undefined> => {
      const part = queued.shift();
      if (part) return part;
      const r = await source.next();
      return r.done ? undefined : r.value;
    };
    const parts: CompletedPart[] = [];
    let size = 0;
    let failure: { err: unknown } | undefined;
    const worker = async () => {
      while (!failure) {
        const part = await next();
        if (!part || failure) return;
        throwIfAborted(t.signal, where);
        parts.push(await uploadPart(t, uploadId, part));
        size += part.data.byteLength;
      }
    };
    await Promise.all(
      Array.from({ length: t.queueSize }, () =>
        worker().catch((err) => {
          failure ??= { err };
        }),
      ),
    );
    if (failure) throw failure.err;
    throwIfAborted(t.signal, where);
    parts.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
    const etag = await completeUpload(t, uploadId, parts, size);
    return { etag, size, parts: parts.length };
  } catch (err) {
    // Close the caller's body even when S3 failed before reading all of it.
    await source.return?.(undefined).catch(() => {});
    if (uploadId) await abortUpload(t, uploadId);
    throw err;
  } finally {
    if (createAttempts > 1) await abortStrayUploads(t, uploadId);
  }
}

/** One part, retried from its buffer. */
async function uploadPart(t: StreamUploadTarget, uploadId: string, part: Part): Promise<CompletedPart> {
  const out = await t.retrying(
    () =>
      t.client.send(
        new UploadPartCommand({
          Bucket: t.bucket,
          Key: t.key,
          UploadId: uploadId,
          PartNumber: part.number,
          Body: part.data,
          ContentLength: part.data.byteLength,
        }),
        { abortSignal: t.signal },
      ),
    `upload part ${part.number}`,
  );
  if (!out.ETag) {
    throw new IngestError('staging_failed', `S3 put of ${t.key}: part ${part.number} was answered without an ETag`, {
      retryable: false,
      details: { bucket: t.bucket, key: t.key },
    });
  }
  return {
    PartNumber: part.number,
    ETag: out.ETag,
    ...(out.ChecksumCRC32 ? { ChecksumCRC32: out.ChecksumCRC32 } : {}),
    ...(out.ChecksumCRC32C ? { ChecksumCRC32C: out.ChecksumCRC32C } : {}),
    ...(out.ChecksumCRC64NVME ? { ChecksumCRC64NVME: out.ChecksumCRC64NVME } : {}),
    ...(out.ChecksumSHA1 ? { ChecksumSHA1: out.ChecksumSHA1 } : {}),
    ...(out.ChecksumSHA256 ? { ChecksumSHA256: out.ChecksumSHA256 } : {}),
  };
}

/** CompleteMultipartUpload, retried; a `NoSuchUpload` on a retry is checked against the object itself. */
async function completeUpload(
  t: StreamUploadTarget,
  uploadId: string,
  parts: CompletedPart[],
  size: number,
): Promise<string | undefined> {
  const out = await t.retrying(async (attempt) => {
    try {
      return await t.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: t.bucket,
          Key: t.key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts },
        }),
        { abortSignal: t.signal },
      );
    } catch (err) {
      // A retry that fails (S3: NoSuchUpload; other servers: any error) may follow an attempt that completed.
      if (attempt > 1) {
        const etag = await completedEarlier(t, parts, size);
        if (etag !== undefined) {
          await abortUpload(t, uploadId);
          return { ETag: etag };
        }
      }
      throw err;
    }
  }, 'complete multipart upload');
  return out.ETag;
}

/**
 * After a lost CompleteMultipartUpload answer: the object's ETag when it is the one this upload made (same size,
 * and S3's multipart ETag `md5(part md5s)-N` where the server reports one of that form), else `undefined`.
 */
async function completedEarlier(
  t: StreamUploadTarget,
  parts: CompletedPart[],
  size: number,
): Promise<string | undefined> {
  const head = await t.client
    .send(new HeadObjectCommand({ Bucket: t.bucket, Key: t.key }), { abortSignal: t.signal })
    .catch(() => undefined);
  if (!head || head.ContentLength !== size) return undefined;
  const etag = head.ETag ?? '';
  if (/-\d+"?$/.test(etag) && etag.replace(/"/g, '') !== multipartEtag(parts)) return undefined;
  return etag;
}

/** S3's ETag of a completed multipart upload: md5 of the parts' binary md5s, `-` number of parts. */
export function multipartEtag(parts: CompletedPart[]): string {
  const md5 = createHash('md5');
  for (const p of parts) md5.update(Buffer.from((p.ETag ?? '').replace(/"/g, ''), 'hex'));
  return `${md5.digest('hex')}-${parts.length}`;
}

/** Abort an upload, retried; "already gone" counts as done, other failures are ignored (the caller rethrows its own). */
async function abortUpload(t: StreamUploadTarget, uploadId: string): Promise<void> {
  await t
    .retrying(async () => {
      try {
        // Not through the caller's signal: an aborted put must still clean up.
        await t.client.send(new AbortMultipartUploadCommand({ Bucket: t.bucket, Key: t.key, UploadId: uploadId }));
      } catch (err) {
        if (
          (err as { name?: string })?.name === 'NoSuchUpload' ||
          s3Failure(err, 'abort', t.bucket).code === 'not_found'
        )
          return;
        throw err;
      }
    }, 'abort multipart upload')
    .catch(() => {});
}

/**
 * After CreateMultipartUpload needed a retry, an earlier attempt may have created an upload whose answer was lost:
 * abort every open upload of exactly this key other than `keep`. One writer per key holds (the run lease), so an
 * upload of this key that is not ours is such a leftover. Servers without ListMultipartUploads are skipped.
 */
async function abortStrayUploads(t: StreamUploadTarget, keep: string | undefined): Promise<void> {
  try {
    const listed = await t.retrying(
      () => t.client.send(new ListMultipartUploadsCommand({ Bucket: t.bucket, Prefix: t.key })),
      'list multipart uploads',
    );
    for (const u of listed.Uploads ?? []) {
      if (u.Key === t.key && u.UploadId && u.UploadId !== keep) await abortUpload(t, u.UploadId);
    }
  } catch {
    // Best effort: a bucket lifecycle rule (AbortIncompleteMultipartUpload) is the backstop; see docs/s3.md.
  }
}

/** Cut a stream of chunks into parts of exactly `partSize` bytes (the last one shorter), numbered from 1. */
async function* partsOf(body: AsyncIterable<Uint8Array>, partSize: number): AsyncGenerator<Part> {
  let chunks: Uint8Array[] = [];
  let held = 0;
  let number = 1;
  for await (const chunk of body) {
    let c = chunk;
    while (held + c.byteLength >= partSize) {
      const take = partSize - held;
      chunks.push(c.subarray(0, take));
      yield { number: number++, data: Buffer.concat(chunks, partSize) };
      chunks = [];
      held = 0;
      c = c.subarray(take);
    }
    if (c.byteLength > 0) {
      chunks.push(c);
      held += c.byteLength;
    }
  }
  if (held > 0 || number === 1) yield { number: number++, data: Buffer.concat(chunks, held) };
}
