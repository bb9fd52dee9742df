import type { Json } from './values.js';

/** Address of a KV entry. @public */
export interface KvKey {
  namespace: string;
  scopeId: string;
  key: string;
}

/** A stored value with its version. @public */
export interface KvEntry<T extends Json = Json> extends KvKey {
  value: T;
  /** Increases by one with every write to the key, and keeps increasing after the entry expires. */
  version: number;
  updatedAt: Date;
  expiresAt?: Date;
}

/** Options of {@link KvStore.put}. @public */
export interface KvPutOptions {
  /** Compare-and-set: the write succeeds only if the current version is this; `null`: only if absent (or expired). */
  expectedVersion?: number | null;
  /** Entry expires (becomes invisible) after this many milliseconds. */
  ttlMs?: number;
}

/**
 * Versioned key-value state: checkpoints, run state, leases.
 *
 * Semantics every implementation shares (and `describeKvStore` checks):
 * - `put` with `expectedVersion` is an atomic compare-and-set; a mismatch throws `IngestError` code `kv_conflict`;
 * - an expired entry is invisible to `get` and `list` and counts as absent for `expectedVersion: null`,
 *   yet a later write continues its version sequence (versions of a key never repeat, so they can fence);
 * - `delete` with `expectedVersion` is conditional and returns `false` on mismatch.
 * @public
 */
export interface KvStore {
  get<T extends Json>(key: KvKey): Promise<KvEntry<T> | undefined>;
  put<T extends Json>(key: KvKey, value: T, opts?: KvPutOptions): Promise<KvEntry<T>>;
  delete(key: KvKey, opts?: { expectedVersion?: number }): Promise<boolean>;
  list(prefix: { namespace: string; scopeId: string; keyPrefix?: string }): AsyncIterable<KvEntry>;
}
