import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { z } from 'zod';
import type { ObjectInfo, ObjectStore, PutOptions } from '../contracts/object-store.js';
import { IngestError } from '../errors/ingest-error.js';
import { abortable, throwIfAborted } from '../util/abort.js';
import { assertValidObjectKey, assertValidObjectPrefix } from '../util/object-key.js';
import { DEFAULT_RETRY, type RetryPolicy, withRetry } from '../util/retry.js';
import { uploadStream } from './multipart-upload.js';
import { resumableBody } from './resumable-get.js';
import { s3Failure } from './s3-errors.js';

/** Options of {@link S3ObjectStore}. @public */
export interface S3ObjectStoreOptions {
  /** An S3 client you configured (region, credentials, endpoint); the store never builds one. */
  client: S3Client;
  /** The bucket; it must exist. */
  bucket: string;
  /**
   * Bytes per multipart part, at least 5 MiB. Bodies given as a `Uint8Array` up to this size go in one PutObject.
   * @defaultValue 8 MiB
   */
  partSize?: number;
  /** Parts uploaded in parallel; memory per upload stays near `partSize × (queueSize + 1)`. @defaultValue 4 */
  queueSize?: number;
  /**
   * Attempts per S3 request — every request the store sends: GET (and each resumption of a GET cut off
   * mid-body), HEAD, LIST, DELETE, PutObject, and each request of a multipart upload (create, every part, complete,
   * abort). Each attempt goes through the client's own retry strategy (its `maxAttempts`, 3 by default), so a
   * request is tried up to `retry.maxAttempts × client maxAttempts` times; give the client `maxAttempts: 1` to have
   * this policy alone decide. An error this retry gave up on is marked `details.retriedBy: 'store'`, and the run's
   * `policy.retry` does not retry it again (one budget per layer; the orchestrator retries the run).
   * @defaultValue {@link DEFAULT_RETRY} (`{ maxAttempts: 3, baseDelayMs: 200, maxDelayMs: 10000 }`)
   */
  retry?: Partial<RetryPolicy>;
  /** Keys per ListObjectsV2 page (1–1000). @defaultValue 1000 */
  pageSize?: number;
}

const MIN_PART_SIZE = 5 * 1024 * 1024;
const DELETE_BATCH = 1000;

const optionsSchema = z
  .object({
    client: z.custom<S3Client>((v) => typeof (v as { send?: unknown } | null)?.send === 'function', {
      message: 'must be an S3Client',
    }),
    bucket: z.string().min(1, 'must be a non-empty bucket name'),
    partSize: z.number().int().min(MIN_PART_SIZE, 'must be at least 5 MiB (5242880)').optional(),
    queueSize: z.number().int().min(1).max(64).optional(),
    retry: z
      .object({
        maxAttempts: z.number().int().min(1).optional(),
        baseDelayMs: z.number().min(0).optional(),
        maxDelayMs: z.number().min(0).optional(),
      })
      .strict()
      .optional(),
    pageSize: z.number().int().min(1).max(1000).optional(),
  })
  .strict();

/**
 * An {@link ObjectStore} on an S3 bucket through an injected `S3Client` (works with AWS S3 and S3-compatible
 * servers such as MinIO).
 *
 * - `put` of a `Uint8Array` up to `partSize` is one PutObject (retried); larger or streamed bodies are cut into
 *   parts of `partSize` and sent as a multipart upload, `queueSize` parts at a time, each part retried from its
 *   buffer under `retry` (a streamed body that fits in one part is one PutObject). An upload that still fails, or
 *   is aborted through `opts.signal`, aborts its multipart upload, so no incomplete upload is left behind; an
 *   answer lost after S3 acted (create, complete) is detected and neither leaves an upload nor fails the put.
 * - `list` follows continuation tokens and yields keys in S3's (UTF-8) order; listed objects carry key, size, etag
 *   and lastModified — use `head` for content type and metadata.
 * - `delete` sends DeleteObjects in batches of 1000 and reports every key S3 refused.
 * - Every request is retried with backoff on 5xx, throttling (SlowDown, 429), timeouts and connection resets; a
 *   GET cut off mid-body resumes at the byte it reached with a ranged request, checked against the ETag.
 * - Metadata keys come back lowercase (S3 stores them so); use lowercase ASCII keys and values to stay portable.
 *
 * @example
 * ```ts
 * import { S3Client } from '@aws-sdk/client-s3';
 * import { S3ObjectStore } from '@nucleus/ingestion/s3';
 * const store = new S3ObjectStore({ client: new S3Client({ region: 'eu-west-1' }), bucket: 'my-staging' });
 * await store.put('runs/r1/0', new TextEncoder().encode('{"id":1}\n'));
 * ```
 * @throws IngestError `config_invalid` when the options are malformed.
 * @public
 */
export class S3ObjectStore implements ObjectStore {
  readonly bucket: string;
  /** S3 etags change with the bytes (MD5, or MD5 of the parts' MD5s): staging verifies sessions by listing them. */
  readonly contentEtags = true;
  readonly #client: S3Client;
  readonly #partSize: number;
  readonly #queueSize: number;
  readonly #retry: RetryPolicy;
  readonly #pageSize: number;

  constructor(options: S3ObjectStoreOptions) {
    const parsed = optionsSchema.safeParse(options ?? {});
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(options)'}: ${i.message}`);
      throw new IngestError('config_invalid', `Invalid S3ObjectStore options: ${issues.join('; ')}`, {
        details: { issues },
      });
    }
    this.#client = parsed.data.client;
    this.bucket = parsed.data.bucket;
    this.#partSize = parsed.data.partSize ?? 8 * 1024 * 1024;
    this.#queueSize = parsed.data.queueSize ?? 4;
    this.#retry = { ...DEFAULT_RETRY, ...(parsed.data.retry ?? {}) };
    this.#pageSize = parsed.data.pageSize ?? 1000;
  }

  /**
   * Write `body` under `key`; S3 makes the object visible only once complete.
   * @throws IngestError `invalid_key`; `aborted` when `opts.signal` fires (any multipart upload is aborted);
   * `staging_failed` when S3 refuses or fails (retryable for transient failures).
   */
  async put(key: string, body: Uint8Array | AsyncIterable<Uint8Array>, opts: PutOptions = {}): Promise<ObjectInfo> {
    assertValidObjectKey(key);
    throwIfAborted(opts.signal, `put of ${key}`);
    const contentType = opts.contentType ?? 'application/octet-stream';
    const metadata = Object.fromEntries(Object.entries(opts.metadata ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
    const params = { Bucket: this.bucket, Key: key, ContentType: contentType, Metadata: metadata };
    if (body instanceof Uint8Array && body.byteLength <= this.#partSize) {
      const out = await this.#retrying(
        () =>
          this.#client.send(new PutObjectCommand({ ...params, Body: body, ContentLength: body.byteLength }), {
            abortSignal: opts.signal,
          }),
        'put',
        key,
        opts.signal,
      );
      return { key, size: body.byteLength, etag: out.ETag, lastModified: new Date(), contentType, metadata };
    }
    if (
      !(body instanceof Uint8Array) &&
      typeof (body as AsyncIterable<Uint8Array>)?.[Symbol.asyncIterator] !== 'function'
    ) {
      throw new IngestError(
        'staging_failed',
        `Body of ${JSON.stringify(key)} must be a Uint8Array or an AsyncIterable of Uint8Array`,
        {
          retryable: false,
        },
      );
    }
    const checked = async function* (source: AsyncIterable<Uint8Array>) {
      for await (const chunk of source) {
        if (!(chunk instanceof Uint8Array)) {
          throw new IngestError('staging_failed', `Body of ${JSON.stringify(key)} yielded a non-Uint8Array chunk`, {
            retryable: false,
          });
        }
        yield chunk;
      }
    };
    const source = body instanceof Uint8Array ? oneChunk(body) : body;
    try {
      const out = await uploadStream(checked(abortable(source, opts.signal, `put of ${key}`)), {
        client: this.#client,
        bucket: this.bucket,
        key,
        contentType,
        metadata,
        partSize: this.#partSize,
        queueSize: this.#queueSize,
        retrying: (fn, op) => this.#retrying(fn, op, key, opts.signal),
        signal: opts.signal,
      });
      return { key, size: out.size, etag: out.etag, lastModified: new Date(), contentType, metadata };
    } catch (err) {
      if (opts.signal?.aborted) throw s3Failure(abortErrorOf(opts.signal, err), 'put', this.bucket, key);
      throw s3Failure(err, 'put', this.bucket, key);
    }
  }

  /**
   * Stream the object under `key`. A transient failure mid-stream resumes from the last byte received (with
   * `If-Match` on the ETag, so a concurrent overwrite is an error, not a spliced object).
   * @throws IngestError `invalid_key`; `not_found`; `aborted`; `staging_failed`.
   */
  async get(key: string, opts: { signal?: AbortSignal } = {}): Promise<AsyncIterable<Uint8Array>> {
    assertValidObjectKey(key);
    throwIfAborted(opts.signal, `get of ${key}`);
    const signal = opts.signal;
    const first = await this.#retrying(
      () => this.#client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }), { abortSignal: signal }),
      'get',
      key,
      signal,
    );
    return resumableBody(first, {
      client: this.#client,
      bucket: this.bucket,
      key,
      retry: this.#retry,
      retrying: (fn, op) => this.#retrying(fn, op, key, signal),
      signal,
    });
  }

  /** Content type, metadata, size and etag of the object under `key`, or `undefined`. @throws IngestError `invalid_key`; `staging_failed`. */
  async head(key: string): Promise<ObjectInfo | undefined> {
    assertValidObjectKey(key);
    try {
      const out = await this.#retrying(
        () => this.#client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key })),
        'head',
        key,
      );
      return {
        key,
        size: out.ContentLength ?? 0,
        etag: out.ETag,
        lastModified: out.LastModified,
        contentType: out.ContentType,
        metadata: { ...(out.Metadata ?? {}) },
      };
    } catch (err) {
      if (IngestError.is(err, 'not_found')) return undefined;
      throw err;
    }
  }

  /** Every object under `prefix`, following continuation tokens. @throws IngestError `invalid_key`; `staging_failed`. */
  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    assertValidObjectPrefix(prefix);
    let token: string | undefined;
    do {
      const page = await this.#retrying(
        () =>
          this.#client.send(
            new ListObjectsV2Command({
              Bucket: this.bucket,
              Prefix: prefix || undefined,
              ContinuationToken: token,
              MaxKeys: this.#pageSize,
            }),
          ),
        'list',
        prefix,
      );
      for (const o of page.Contents ?? []) {
        if (o.Key === undefined) continue;
        yield { key: o.Key, size: o.Size ?? 0, etag: o.ETag, lastModified: o.LastModified };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /**
   * Delete `keys` with DeleteObjects, 1000 per request; missing keys are ignored. Every key is checked first.
   * @throws IngestError `invalid_key`; `staging_failed` listing each key S3 refused (`details.errors`).
   */
  async delete(keys: string[]): Promise<void> {
    for (const key of keys) assertValidObjectKey(key);
    const unique = [...new Set(keys)];
    const errors: { key: string; code?: string; message?: string }[] = [];
    for (let i = 0; i < unique.length; i += DELETE_BATCH) {
      const batch = unique.slice(i, i + DELETE_BATCH);
      const out = await this.#retrying(
        () =>
          this.#client.send(
            new DeleteObjectsCommand({
              Bucket: this.bucket,
              Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
            }),
          ),
        'delete',
        batch.length === 1 ? batch[0] : `${batch[0]} (+${batch.length - 1} keys)`,
      );
      for (const e of out.Errors ?? []) {
        if (e.Code === 'NoSuchKey') continue;
        errors.push({ key: e.Key ?? '?', code: e.Code, message: e.Message });
      }
    }
    if (errors.length > 0) {
      const shown = errors
        .slice(0, 5)
        .map((e) => `${e.key}: ${e.code}`)
        .join('; ');
      throw new IngestError(
        'staging_failed',
        `S3 delete in s3://${this.bucket} refused ${errors.length} of ${unique.length} keys: ${shown}${errors.length > 5 ? '; …' : ''}`,
        { retryable: errors.some((e) => e.code === 'InternalError' || e.code === 'SlowDown'), details: { errors } },
      );
    }
  }

  /** Run an idempotent request with retries, mapping failures to IngestError. */
  #retrying<T>(fn: (attempt: number) => Promise<T>, op: string, key: string, signal?: AbortSignal): Promise<T> {
    return withRetry(
      async (attempt) => {
        try {
          return await fn(attempt);
        } catch (err) {
          if (signal?.aborted) throw s3Failure(abortErrorOf(signal, err), op, this.bucket, key);
          throw s3Failure(err, op, this.bucket, key);
        }
      },
      this.#retry,
      { signal, layer: 'store' },
    );
  }
}

async function* oneChunk(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

function abortErrorOf(signal: AbortSignal, err: unknown): unknown {
  if (IngestError.is(err, 'aborted')) return err;
  const reason = signal.reason;
  if (IngestError.is(reason)) return reason;
  return new IngestError('aborted', 'Operation was aborted', { cause: reason instanceof Error ? reason : err });
}
