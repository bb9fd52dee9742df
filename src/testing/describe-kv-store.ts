import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KvKey, KvStore } from '../contracts/kv-store.js';
import { IngestError } from '../errors/ingest-error.js';

/** Options of {@link describeKvStore}. @public */
export interface DescribeKvStoreOptions {
  /** Called once after the suite, e.g. to close pools. */
  /** Called once after the suite (close pools, drop schemas). */
  teardown?: () => Promise<void> | void;
}

/**
 * The KvStore contract suite: compare-and-set, TTL, version continuity, prefix listing with wildcards,
 * unicode and hostile keys. Run it against your own store in vitest.
 *
 * @example
 * ```ts
 * import { describeKvStore } from '@nucleus/ingestion/testing/vitest';
 * import { MemoryKvStore } from '@nucleus/ingestion';
 * describeKvStore('memory', () => new MemoryKvStore());
 * ```
 * @public
 */
export function describeKvStore(
  name: string,
  factory: () => KvStore | Promise<KvStore>,
  opts: DescribeKvStoreOptions = {},
): void {
  describe(`KvStore contract: ${name}`, () => {
    let kv: KvStore;
    let n = 0;
    const scope = `scope-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    const key = (k?: string): KvKey => ({ namespace: 'contract', scopeId: scope, key: k ?? `k${++n}` });

    beforeAll(async () => {
      kv = await factory();
    });
    afterAll(async () => {
      await opts.teardown?.();
    });

    it('returns undefined for a missing key', async () => {
      expect(await kv.get(key())).toBeUndefined();
    });

    it('stores JSON values and returns them with version 1', async () => {
      const k = key();
      const value = { a: 1, b: [true, null, 'x'], nested: { deep: 'ü€😀' }, n: -1.5 };
      const put = await kv.put(k, value);
      expect(put.version).toBe(1);
      const got = await kv.get(k);
      expect(got?.value).toEqual(value);
      expect(got?.version).toBe(1);
      expect(got?.updatedAt).toBeInstanceOf(Date);
      expect(got).toMatchObject(k);
    });

    it('does not let callers mutate stored values', async () => {
      const k = key();
      const value = { list: [1, 2] };
      await kv.put(k, value);
      value.list.push(3);
      const got = await kv.get<{ list: number[] }>(k);
      expect(got?.value.list).toEqual([1, 2]);
      got!.value.list.push(4);
      expect((await kv.get<{ list: number[] }>(k))?.value.list).toEqual([1, 2]);
    });

    it('increments the version on every write', async () => {
      const k = key();
      await kv.put(k, 1);
      await kv.put(k, 2);
      const e = await kv.put(k, 3);
      expect(e.version).toBe(3);
      expect((await kv.get(k))?.value).toBe(3);
    });

    it('expectedVersion null creates only when absent', async () => {
      const k = key();
      await kv.put(k, 'first', { expectedVersion: null });
      await expect(kv.put(k, 'second', { expectedVersion: null })).rejects.toSatisfy((e) =>
        IngestError.is(e, 'kv_conflict'),
      );
      expect((await kv.get(k))?.value).toBe('first');
    });

    it('expectedVersion is a compare-and-set', async () => {
      const k = key();
      const a = await kv.put(k, 'a');
      const b = await kv.put(k, 'b', { expectedVersion: a.version });
      expect(b.version).toBe(a.version + 1);
      const err = await kv.put(k, 'stale', { expectedVersion: a.version }).catch((e) => e);
      expect(IngestError.is(err, 'kv_conflict')).toBe(true);
      expect(err.retryable).toBe(false);
      expect((await kv.get(k))?.value).toBe('b');
      await expect(kv.put(key(), 'x', { expectedVersion: 1 })).rejects.toSatisfy((e) =>
        IngestError.is(e, 'kv_conflict'),
      );
    });

    it('concurrent compare-and-set: exactly one writer wins per version', async () => {
      const k = key();
      const base = await kv.put(k, 0);
      const results = await Promise.allSettled(
        Array.from({ length: 8 }, (_, i) => kv.put(k, i + 1, { expectedVersion: base.version })),
      );
      const ok = results.filter((r) => r.status === 'fulfilled');
      expect(ok).toHaveLength(1);
      for (const r of results) if (r.status === 'rejected') expect(IngestError.is(r.reason, 'kv_conflict')).toBe(true);
      expect((await kv.get(k))?.version).toBe(base.version + 1);
    });

    it('expired entries are invisible, count as absent, and keep the version sequence', async () => {
      const k = key();
      const first = await kv.put(k, 'short', { ttlMs: 150 });
      expect(first.expiresAt).toBeInstanceOf(Date);
      expect((await kv.get(k))?.value).toBe('short');
      await new Promise((r) => setTimeout(r, 1200));
      expect(await kv.get(k)).toBeUndefined();
      const listed: string[] = [];
      for await (const e of kv.list({ namespace: k.namespace, scopeId: k.scopeId, keyPrefix: k.key }))
        listed.push(e.key);
      expect(listed).not.toContain(k.key);
      const again = await kv.put(k, 'again', { expectedVersion: null });
      expect(again.version).toBeGreaterThan(first.version);
      expect((await kv.get(k))?.expiresAt).toBeUndefined();
    });

    it('delete removes an entry; with expectedVersion only on match', async () => {
      const k = key();
      const e = await kv.put(k, 'x');
      expect(await kv.delete(k, { expectedVersion: e.version + 5 })).toBe(false);
      expect(await kv.get(k)).toBeDefined();
      expect(await kv.delete(k, { expectedVersion: e.version })).toBe(true);
      expect(await kv.get(k)).toBeUndefined();
      expect(await kv.delete(k)).toBe(false);
    });

    it('lists by key prefix in key order, treating LIKE wildcards literally', async () => {
      const p = `list-${++n}`;
      const keys = [`${p}/b`, `${p}/a`, `${p}%x`, `${p}_y`, `${p}\\z`, `${p}/c/d`];
      for (const k of keys) await kv.put(key(k), k);
      await kv.put(key(`other-${p}`), 'no');
      const seen = async (prefix: string) => {
        const out: string[] = [];
        for await (const e of kv.list({ namespace: 'contract', scopeId: scope, keyPrefix: prefix })) out.push(e.key);
        return out;
      };
      expect(await seen(`${p}/`)).toEqual([`${p}/a`, `${p}/b`, `${p}/c/d`]);
      expect(await seen(`${p}%`)).toEqual([`${p}%x`]);
      expect(await seen(`${p}_`)).toEqual([`${p}_y`]);
      expect(await seen(`${p}\\`)).toEqual([`${p}\\z`]);
      expect((await seen(p)).length).toBe(6);
    });

    it('keeps scopes and namespaces apart', async () => {
      const k = key();
      await kv.put(k, 'mine');
      expect(await kv.get({ ...k, scopeId: `${scope}-other` })).toBeUndefined();
      expect(await kv.get({ ...k, namespace: 'contract-other' })).toBeUndefined();
    });

    it('stores hostile and unicode keys as data', async () => {
      for (const hostile of ["'; DROP TABLE kv_entries; --", '__proto__', 'constructor', 'ключ/🔑', 'a\\b%c_d']) {
        const k = key(hostile);
        await kv.put(k, { hostile });
        expect((await kv.get(k))?.value).toEqual({ hostile });
      }
      expect(({} as Record<string, unknown>).hostile).toBeUndefined();
    });

    it('refuses invalid keys with config_invalid', async () => {
      await expect(kv.get({ namespace: '', scopeId: scope, key: 'x' })).rejects.toSatisfy((e) =>
        IngestError.is(e, 'config_invalid'),
      );
    });
  });
}
