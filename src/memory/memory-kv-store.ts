import type { KvEntry, KvKey, KvPutOptions, KvStore } from '../contracts/kv-store.js';
import type { Json } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { assertKvKey, kvConflict, kvPutOptions, prefixMatches } from '../kv/kv-common.js';

interface Slot {
  value: Json;
  version: number;
  updatedAt: number;
  expiresAt?: number;
}

/**
 * A KvStore in process memory — for tests and single-process tools.
 * Values are copied in and out, so callers cannot mutate stored state.
 *
 * @example
 * ```ts
 * import { MemoryKvStore } from '@nucleus/ingestion';
 * const kv = new MemoryKvStore();
 * await kv.put({ namespace: 'ingestion', scopeId: 'default', key: 'k' }, { cursor: 1 }, { expectedVersion: null });
 * ```
 * @public
 */
export class MemoryKvStore implements KvStore {
  readonly #slots = new Map<string, Slot>();
  readonly #now: () => number;

  /** @param opts.now - clock, for tests of TTL. */
  constructor(opts: { now?: () => number } = {}) {
    this.#now = opts.now ?? Date.now;
  }

  /** {@inheritDoc KvStore.get} */
  async get<T extends Json>(key: KvKey): Promise<KvEntry<T> | undefined> {
    assertKvKey(key);
    const slot = this.#live(key);
    return slot ? toEntry<T>(key, slot) : undefined;
  }

  /** {@inheritDoc KvStore.put} */
  async put<T extends Json>(key: KvKey, value: T, opts?: KvPutOptions): Promise<KvEntry<T>> {
    assertKvKey(key);
    const { expectedVersion, ttlMs } = kvPutOptions(opts);
    const id = slotId(key);
    const existing = this.#slots.get(id);
    const live = this.#live(key);
    if (expectedVersion === null && live) throw kvConflict(key, expectedVersion, live.version);
    if (typeof expectedVersion === 'number' && live?.version !== expectedVersion) {
      throw kvConflict(key, expectedVersion, live?.version);
    }
    const now = this.#now();
    const slot: Slot = {
      value: copyJson(value),
      version: (existing?.version ?? 0) + 1,
      updatedAt: now,
      expiresAt: ttlMs === undefined ? undefined : now + ttlMs,
    };
    this.#slots.set(id, slot);
    return toEntry<T>(key, slot);
  }

  /** {@inheritDoc KvStore.delete} */
  async delete(key: KvKey, opts?: { expectedVersion?: number }): Promise<boolean> {
    assertKvKey(key);
    const live = this.#live(key);
    if (!live) return false;
    if (opts?.expectedVersion !== undefined && opts.expectedVersion !== live.version) return false;
    this.#slots.delete(slotId(key));
    return true;
  }

  /** {@inheritDoc KvStore.list} */
  async *list(prefix: { namespace: string; scopeId: string; keyPrefix?: string }): AsyncIterable<KvEntry> {
    const rows: KvEntry[] = [];
    for (const [id, slot] of this.#slots) {
      const key = parseSlotId(id);
      if (!prefixMatches(key, prefix)) continue;
      if (slot.expiresAt !== undefined && slot.expiresAt <= this.#now()) continue;
      rows.push(toEntry(key, slot));
    }
    rows.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    yield* rows;
  }

  #live(key: KvKey): Slot | undefined {
    const slot = this.#slots.get(slotId(key));
    if (!slot) return undefined;
    if (slot.expiresAt !== undefined && slot.expiresAt <= this.#now()) return undefined;
    return slot;
  }
}

function slotId(k: KvKey): string {
  return JSON.stringify([k.namespace, k.scopeId, k.key]);
}
function parseSlotId(id: string): KvKey {
  const [namespace, scopeId, key] = JSON.parse(id) as string[];
  return { namespace, scopeId, key };
}
function toEntry<T extends Json>(key: KvKey, slot: Slot): KvEntry<T> {
  return {
    namespace: key.namespace,
    scopeId: key.scopeId,
    key: key.key,
    value: copyJson(slot.value) as T,
    version: slot.version,
    updatedAt: new Date(slot.updatedAt),
    ...(slot.expiresAt !== undefined ? { expiresAt: new Date(slot.expiresAt) } : {}),
  };
}
function copyJson(v: Json): Json {
  if (v === undefined) throw new IngestError('config_invalid', 'KvStore values must be JSON (got undefined)');
  return JSON.parse(JSON.stringify(v));
}
