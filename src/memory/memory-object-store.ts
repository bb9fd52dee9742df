import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { ObjectInfo, ObjectStore, PutOptions } from '../contracts/object-store.js';
import { IngestError } from '../errors/ingest-error.js';
import { throwIfAborted } from '../util/abort.js';
import { assertValidObjectKey, assertValidObjectPrefix } from '../util/object-key.js';
import { compareObjectKeys } from '../util/object-key-order.js';

/** Options of {@link MemoryObjectStore}. @public */
export interface MemoryObjectStoreOptions {
  /** Name reported as {@link ObjectStore.bucket}. @defaultValue `'memory'` */
  bucket?: string;
}

const optionsSchema = z.object({ bucket: z.string().min(1).optional() }).strict();

interface StoredObject {
  bytes: Uint8Array;
  info: ObjectInfo;
}

/** Size of the chunks {@link MemoryObjectStore.get} yields. */
const READ_CHUNK = 64 * 1024;

/**
 * An {@link ObjectStore} that keeps objects in process memory — for tests and single-process pipelines.
 *
 * Bytes are copied on `put` and on `get`, so a caller mutating its buffers can never change stored data.
 * Keys are checked like every other store (`invalid_key` before anything happens) and listed in UTF-8 byte order.
 *
 * @example
 * ```ts
 * import { MemoryObjectStore } from '@nucleus/ingestion';
 * const store = new MemoryObjectStore({ bucket: 'scratch' });
 * await store.put('a/b.txt', new TextEncoder().encode('hi'), { contentType: 'text/plain' });
 * for await (const info of store.list('a/')) console.log(info.key, info.size);
 * ```
 * @throws IngestError `config_invalid` when the options are malformed.
 * @public
 */
export class MemoryObjectStore implements ObjectStore {
  readonly bucket: string;
  readonly #objects = new Map<string, StoredObject>();

  constructor(options: MemoryObjectStoreOptions = {}) {
    const parsed = optionsSchema.safeParse(options ?? {});
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(options)'}: ${i.message}`);
      throw new IngestError('config_invalid', `Invalid MemoryObjectStore options: ${issues.join('; ')}`, {
        details: { issues },
      });
    }
    this.bucket = parsed.data.bucket ?? 'memory';
  }

  /**
   * Store `body` under `key`, replacing any previous object only once the whole body has arrived.
   * @throws IngestError `invalid_key` for a non-portable key; `aborted` when `opts.signal` fires (nothing is
   * stored); `staging_failed` when the body yields something other than `Uint8Array` chunks.
   */
  async put(key: string, body: Uint8Array | AsyncIterable<Uint8Array>, opts: PutOptions = {}): Promise<ObjectInfo> {
    assertValidObjectKey(key);
    throwIfAborted(opts.signal, `put of ${key}`);
    const bytes = await collectBody(body, opts.signal, key);
    const info: ObjectInfo = {
      key,
      size: bytes.byteLength,
      etag: createHash('md5').update(bytes).digest('hex'),
      lastModified: new Date(),
      contentType: opts.contentType ?? 'application/octet-stream',
      metadata: { ...(opts.metadata ?? {}) },
    };
    this.#objects.set(key, { bytes, info });
    return copyInfo(info);
  }

  /**
   * Stream the object under `key` (a snapshot taken at call time).
   * @throws IngestError `invalid_key`; `not_found` when there is no such object; `aborted` while iterating.
   */
  async get(key: string, opts: { signal?: AbortSignal } = {}): Promise<AsyncIterable<Uint8Array>> {
    assertValidObjectKey(key);
    throwIfAborted(opts.signal, `get of ${key}`);
    const found = this.#objects.get(key);
    if (!found) throw notFound(this.bucket, key);
    const bytes = found.bytes;
    const signal = opts.signal;
    return (async function* () {
      for (let at = 0; at < bytes.byteLength; at += READ_CHUNK) {
        throwIfAborted(signal, `get of ${key}`);
        yield bytes.slice(at, Math.min(at + READ_CHUNK, bytes.byteLength));
      }
    })();
  }

  /** Metadata of the object under `key`, or `undefined`. @throws IngestError `invalid_key`. */
  async head(key: string): Promise<ObjectInfo | undefined> {
    assertValidObjectKey(key);
    const found = this.#objects.get(key);
    return found ? copyInfo(found.info) : undefined;
  }

  /** Every object whose key starts with `prefix`, in UTF-8 key order. @throws IngestError `invalid_key`. */
  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    assertValidObjectPrefix(prefix);
    const keys = [...this.#objects.keys()].filter((k) => k.startsWith(prefix)).sort(compareObjectKeys);
    for (const key of keys) {
      const found = this.#objects.get(key);
      if (found) yield copyInfo(found.info);
    }
  }

  /** Delete `keys`; missing keys are ignored. Every key is checked before any is deleted. @throws IngestError `invalid_key`. */
  async delete(keys: string[]): Promise<void> {
    for (const key of keys) assertValidObjectKey(key);
    for (const key of keys) this.#objects.delete(key);
  }
}

function notFound(bucket: string, key: string): IngestError {
  return new IngestError('not_found', `Object ${JSON.stringify(key)} not found in bucket ${JSON.stringify(bucket)}`, {
    details: { bucket, key },
  });
}

function copyInfo(info: ObjectInfo): ObjectInfo {
  return {
    ...info,
    lastModified: info.lastModified ? new Date(info.lastModified.getTime()) : undefined,
    metadata: { ...(info.metadata ?? {}) },
  };
}

async function collectBody(
  body: Uint8Array | AsyncIterable<Uint8Array>,
  signal: AbortSignal | undefined,
  key: string,
): Promise<Uint8Array> {
  if (body instanceof Uint8Array) return body.slice();
  if (!body || typeof (body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] !== 'function') {
    throw badChunk(key, body);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body) {
    throwIfAborted(signal, `put of ${key}`);
    if (!(chunk instanceof Uint8Array)) throw badChunk(key, chunk);
    chunks.push(chunk.slice());
    size += chunk.byteLength;
  }
  throwIfAborted(signal, `put of ${key}`);
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

function badChunk(key: string, value: unknown): IngestError {
  return new IngestError(
    'staging_failed',
    `Body of ${JSON.stringify(key)} must be a Uint8Array or an AsyncIterable of Uint8Array, got ${value === null ? 'null' : typeof value}`,
    { retryable: false },
  );
}
