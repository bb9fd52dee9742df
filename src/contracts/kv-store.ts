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
  /** The live entry of `key`, or `undefined` when it is absent, deleted or expired. */
  get<T extends Json>(key: KvKey): Promise<KvEntry<T> | undefined>;
  /**
   * Write `value`. With `expectedVersion` a number: only if the live entry has that version; `null`: only if there
   * is no live entry; absent: unconditionally. Returns the new entry (its version is one more than the key's last).
   * @throws IngestError `kv_conflict` when the compare-and-set loses
   */
  put<T extends Json>(key: KvKey, value: T, opts?: KvPutOptions): Promise<KvEntry<T>>;
  /** Delete `key` (only at `expectedVersion` when given); `false` when absent or the version differs. */
  delete(key: KvKey, opts?: { expectedVersion?: number }): Promise<boolean>;
  /** Every live entry of a namespace and scope whose key starts with `keyPrefix`, in key order. */
  list(prefix: { namespace: string; scopeId: string; keyPrefix?: string }): AsyncIterable<KvEntry>;
}
