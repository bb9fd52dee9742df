/**
 * Metadata of one stored object.
 * @public
 */
export interface ObjectInfo {
  key: string;
  size: number;
  lastModified?: Date;
  etag?: string;
  contentType?: string;
  metadata?: Record<string, string>;
}

/** Options of {@link ObjectStore.put}. @public */
export interface PutOptions {
  contentType?: string;
  metadata?: Record<string, string>;
  signal?: AbortSignal;
}

/**
 * A bucket of objects addressed by portable keys: relative, `/`-separated, 1–1024 bytes of UTF-8, no empty,
 * `.` or `..` segment, no leading `/`, no backslash, no control character. Anything else is refused with
 * `invalid_key` before any I/O.
 * @public
 */
export interface ObjectStore {
  readonly bucket: string;
  /** Write an object atomically: readers see the old object or the whole new one. */
  put(key: string, body: Uint8Array | AsyncIterable<Uint8Array>, opts?: PutOptions): Promise<ObjectInfo>;
  /** Stream an object; `not_found` when missing. */
  get(key: string, opts?: { signal?: AbortSignal }): Promise<AsyncIterable<Uint8Array>>;
  /** Size and metadata of an object, or `undefined` when it does not exist. */
  head(key: string): Promise<ObjectInfo | undefined>;
  /** Every object whose key starts with `prefix`, in key order. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /** Delete keys; missing keys are ignored. */
  delete(keys: string[]): Promise<void>;
  /**
   * Optional: `true` when the `etag` that `put` returns and `list`/`head` report changes whenever an object's bytes
   * change, as S3's does (an MD5 of the bytes, or of the parts' MD5s). Staging then records each slice's etag in the
   * manifest and verifies a session before import by listing it (size and etag per slice) instead of reading every
   * slice twice; a slice whose etag or size differs is read and hashed as before. Leave it unset for stores whose
   * etags are not content hashes (a file's mtime, say).
   */
  readonly contentEtags?: boolean;
}
