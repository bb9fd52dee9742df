import { GetObjectCommand, type GetObjectCommandOutput, type S3Client } from '@aws-sdk/client-s3';
import { IngestError } from '../errors/ingest-error.js';
import { sleep } from '../util/abort.js';
import { backoffDelay, markRetried, type RetryPolicy } from '../util/retry.js';
import type { Retrying } from './multipart-upload.js';
import { s3Failure } from './s3-errors.js';

/** What {@link resumableBody} needs. @internal */
export interface ResumableGetTarget {
  client: S3Client;
  bucket: string;
  key: string;
  retry: RetryPolicy;
  retrying: Retrying;
  signal?: AbortSignal;
}

type Body = AsyncIterable<Uint8Array> & { destroy?: () => void };

/**
 * The body of a GET that survives interruptions: when the stream breaks with a transient error (reset, timeout,
 * premature close) it is requested again from the byte it reached (`Range: bytes=<offset>-`, `If-Match: <etag>`)
 * and the answer is checked — 206, a `Content-Range` starting at the offset and the same ETag — so a changed
 * object is an error, never a spliced one (servers that ignore `If-Match` are caught by the ETag check).
 * Up to `retry.maxAttempts` attempts per interruption; the count starts again once bytes flow.
 * @internal
 */
export async function* resumableBody(first: GetObjectCommandOutput, t: ResumableGetTarget): AsyncGenerator<Uint8Array> {
  const etag = first.ETag;
  const total = first.ContentLength;
  let offset = 0;
  let body = first.Body as Body;
  try {
    for (let failures = 0; ; ) {
      const before = offset;
      try {
        for await (const chunk of body) {
          offset += chunk.byteLength;
          yield chunk;
        }
        return;
      } catch (err) {
        const mapped = s3Failure(err, 'get', t.bucket, t.key);
        if (offset > before) failures = 0;
        failures++;
        if (t.signal?.aborted || !mapped.retryable) throw mapped;
        if (failures >= t.retry.maxAttempts) {
          if (failures > 1) markRetried(mapped, 'store', failures);
          throw mapped;
        }
        body.destroy?.();
        // The stream broke after its last byte: nothing is missing.
        if (total !== undefined && offset >= total) return;
        await sleep(backoffDelay(failures, t.retry), t.signal);
        body = await resume(t, offset, etag);
      }
    }
  } finally {
    body.destroy?.();
  }
}

/** GET the rest of the object from `offset`, checking it is still the object that was being read. */
async function resume(t: ResumableGetTarget, offset: number, etag: string | undefined): Promise<Body> {
  const changed = (why: string, cause?: unknown) =>
    new IngestError(
      'staging_failed',
      `S3 get of s3://${t.bucket}/${t.key}: the object changed while it was read (${why})`,
      {
        cause,
        retryable: false,
        details: { bucket: t.bucket, key: t.key, offset },
      },
    );
  const ranged = offset > 0;
  const out = await t.retrying(async () => {
    try {
      return await t.client.send(
        new GetObjectCommand({
          Bucket: t.bucket,
          Key: t.key,
          ...(ranged ? { Range: `bytes=${offset}-` } : {}),
          ...(etag ? { IfMatch: etag } : {}),
        }),
        { abortSignal: t.signal },
      );
    } catch (err) {
      const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
      if (e?.name === 'PreconditionFailed' || e?.$metadata?.httpStatusCode === 412)
        throw changed('If-Match failed', err);
      throw err;
    }
  }, 'get');
  const body = out.Body as Body;
  const start = /^bytes (\d+)-/.exec(out.ContentRange ?? '')?.[1];
  let why: string | undefined;
  if (etag && out.ETag && out.ETag !== etag) why = `ETag ${out.ETag}, was ${etag}`;
  else if (ranged && Number(start) !== offset)
    why = `asked for bytes from ${offset}, got Content-Range ${JSON.stringify(out.ContentRange ?? null)}`;
  if (why) {
    body?.destroy?.();
    throw changed(why);
  }
  return body;
}
