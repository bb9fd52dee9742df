import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { ObjectInfo, ObjectStore } from '../contracts/object-store.js';
import { compareObjectKeys } from '../util/object-key-order.js';

/** Options of {@link describeObjectStore}. @public */
export interface DescribeObjectStoreOptions {
  /** Keys written, listed and deleted in one call by the "many keys" test; above 1000 crosses S3's page and batch size. @defaultValue 1001 */
  manyKeys?: number;
  /** Size of the streamed-body test, above S3's 5 MiB multipart threshold by default. @defaultValue 5.5 MiB */
  largeBodyBytes?: number;
  /**
   * Check that `list` yields keys in UTF-8 byte order. Turn off only for a server known to break S3's ordering
   * (s3rver lists folder by folder); the keys listed are still checked, as sets.
   * @defaultValue true
   */
  strictListOrder?: boolean;
  /**
   * Check that readers see the old object or the whole new one while an overwrite streams in. Turn off only for a
   * server known to write objects in place (s3rver); real S3, the filesystem and memory stores are atomic.
   * @defaultValue true
   */
  atomicOverwrite?: boolean;
  /** Runs after each test with the store the test used (close clients, remove temp folders). */
  cleanup?: (store: ObjectStore) => void | Promise<void>;
}

const encoder = new TextEncoder();

/**
 * The behaviour every {@link ObjectStore} must have, as a vitest suite: put/get/head/list/delete round-trips (empty
 * objects, multi-MiB streamed bodies, unicode keys, content type and metadata), atomic overwrite, list order and
 * prefix semantics, `invalid_key` for non-portable keys, `not_found` for missing objects, and deleting many keys.
 * Each test works under its own random prefix, so a shared bucket is fine.
 *
 * @example
 * ```ts
 * import { describeObjectStore } from '@nucleus/ingestion/testing/vitest';
 * import { MyObjectStore } from '../src/my-object-store.js';
 * describeObjectStore('MyObjectStore', () => new MyObjectStore({ bucket: 'test' }), { manyKeys: 1500 });
 * ```
 * @public
 */
export function describeObjectStore(
  name: string,
  factory: () => ObjectStore | Promise<ObjectStore>,
  options: DescribeObjectStoreOptions = {},
): void {
  const manyKeys = options.manyKeys ?? 1001;
  const largeBodyBytes = options.largeBodyBytes ?? Math.floor(5.5 * 1024 * 1024);
  const strictOrder = options.strictListOrder ?? true;
  /** Keys listed under `prefix`, in the order the store yields them (sorted when the order is not checked). */
  const listed = async (store: ObjectStore, prefix: string): Promise<string[]> => {
    const keys = await keysOf(store.list(prefix));
    return strictOrder ? keys : keys.sort(compareObjectKeys);
  };

  /** A fresh store and a prefix no other test uses. */
  async function setup(): Promise<{ store: ObjectStore; p: string; done: () => Promise<void> }> {
    const store = await factory();
    const p = `contract-${randomBytes(6).toString('hex')}/`;
    return { store, p, done: async () => void (await options.cleanup?.(store)) };
  }

  function test(title: string, body: (store: ObjectStore, p: string) => Promise<void>, timeout?: number): void {
    it(
      title,
      async () => {
        const { store, p, done } = await setup();
        try {
          await body(store, p);
        } finally {
          await done();
        }
      },
      timeout,
    );
  }

  describe(`ObjectStore contract: ${name}`, () => {
    test('put returns the object info and get streams the same bytes back', async (store, p) => {
      const bytes = encoder.encode('{"id":1}\n{"id":2}\n');
      const info = await store.put(`${p}slice-0`, bytes, { contentType: 'application/x-ndjson' });
      expect(info).toMatchObject({ key: `${p}slice-0`, size: bytes.byteLength, contentType: 'application/x-ndjson' });
      expect(info.lastModified).toBeInstanceOf(Date);
      expect(info.metadata).toEqual({});
      expect(await readAll(await store.get(`${p}slice-0`))).toEqual(Buffer.from(bytes));
      const head = await store.head(`${p}slice-0`);
      expect(head).toMatchObject({ key: `${p}slice-0`, size: bytes.byteLength, contentType: 'application/x-ndjson' });
    });

    test('an empty object round-trips, from bytes and from an empty stream', async (store, p) => {
      await store.put(`${p}empty-bytes`, new Uint8Array(0));
      await store.put(`${p}empty-stream`, chunks([]));
      for (const key of [`${p}empty-bytes`, `${p}empty-stream`]) {
        expect((await readAll(await store.get(key))).byteLength).toBe(0);
        expect((await store.head(key))?.size).toBe(0);
      }
      expect((await keysOf(store.list(p))).sort(compareObjectKeys)).toEqual([`${p}empty-bytes`, `${p}empty-stream`]);
    });

    test(
      'a multi-MiB streamed body in uneven chunks round-trips byte for byte',
      async (store, p) => {
        const body = randomBytes(largeBodyBytes);
        const sizes = [1, 65_536, 1_000_003, 7, 3 * 1024 * 1024 + 5];
        const parts: Uint8Array[] = [];
        for (let at = 0, i = 0; at < body.byteLength; i++) {
          const n = Math.min(sizes[i % sizes.length], body.byteLength - at);
          parts.push(body.subarray(at, at + n));
          at += n;
        }
        const info = await store.put(`${p}large`, chunks(parts), { metadata: { rows: '123' } });
        expect(info.size).toBe(body.byteLength);
        const back = await readAll(await store.get(`${p}large`));
        expect(back.byteLength).toBe(body.byteLength);
        expect(sha256(back)).toBe(sha256(body));
        expect(await store.head(`${p}large`)).toMatchObject({ size: body.byteLength, metadata: { rows: '123' } });
      },
      120_000,
    );

    test('stored bytes do not change when the caller mutates its buffer afterwards', async (store, p) => {
      const bytes = encoder.encode('original');
      await store.put(`${p}copy`, bytes);
      bytes.fill(0x21);
      const streamed = encoder.encode('streamed');
      await store.put(`${p}copy-stream`, chunks([streamed]));
      streamed.fill(0x21);
      expect((await readAll(await store.get(`${p}copy`))).toString()).toBe('original');
      expect((await readAll(await store.get(`${p}copy-stream`))).toString()).toBe('streamed');
    });

    test('unicode and punctuation keys round-trip and list', async (store, p) => {
      const keys = [
        `${p}données/日本語/ключ-🚀.ndjson`,
        `${p}a b+c=d&e?f#g`,
        `${p}100%2e%2e`,
        `${p}ünïcødé`,
        `${p}...`,
      ];
      for (const [i, key] of keys.entries()) await store.put(key, encoder.encode(`v${i}`));
      for (const [i, key] of keys.entries()) {
        expect((await readAll(await store.get(key))).toString()).toBe(`v${i}`);
      }
      expect((await keysOf(store.list(p))).sort(compareObjectKeys)).toEqual([...keys].sort(compareObjectKeys));
    });

    test('content type and metadata are kept, and replaced by an overwrite', async (store, p) => {
      const metadata = { rows: '42', codec: 'ndjson', sha256: 'abc123' };
      const info = await store.put(`${p}meta`, encoder.encode('x'), { contentType: 'application/x-ndjson', metadata });
      expect(info.metadata).toEqual(metadata);
      expect(await store.head(`${p}meta`)).toMatchObject({ contentType: 'application/x-ndjson', metadata });
      await store.put(`${p}meta`, encoder.encode('yy'), { contentType: 'text/plain', metadata: { rows: '7' } });
      expect(await store.head(`${p}meta`)).toMatchObject({
        size: 2,
        contentType: 'text/plain',
        metadata: { rows: '7' },
      });
      await store.put(`${p}meta`, encoder.encode('zzz'));
      const plain = await store.head(`${p}meta`);
      expect(plain).toMatchObject({ size: 3, contentType: 'application/octet-stream' });
      expect(plain?.metadata ?? {}).toEqual({});
    });

    if (options.atomicOverwrite !== false)
      test('readers see the old object or the whole new one while an overwrite streams in', async (store, p) => {
        const size = 256 * 1024;
        const key = `${p}atomic`;
        await store.put(key, new Uint8Array(size).fill(0x61));
        let writing = true;
        const slowBody = async function* () {
          for (let i = 0; i < 8; i++) {
            await new Promise((r) => setTimeout(r, 15));
            yield new Uint8Array(size / 8).fill(0x62);
          }
        };
        const put = store.put(key, slowBody()).finally(() => {
          writing = false;
        });
        const seen = new Set<string>();
        do {
          const bytes = await readAll(await store.get(key));
          expect(bytes.byteLength).toBe(size);
          const first = bytes[0];
          expect(bytes.every((b) => b === first)).toBe(true);
          seen.add(String.fromCharCode(first));
          // Let timers run: an in-memory store answers without ever leaving the microtask queue.
          await new Promise((r) => setTimeout(r, 1));
        } while (writing);
        await put;
        expect(seen.has('a')).toBe(true);
        const after = await readAll(await store.get(key));
        expect(after.byteLength).toBe(size);
        expect(after.every((b) => b === 0x62)).toBe(true);
      });

    test('a put aborted through its signal stores nothing and keeps the previous object', async (store, p) => {
      await store.put(`${p}kept`, encoder.encode('old'));
      const controller = new AbortController();
      const body = async function* () {
        yield encoder.encode('new-part-1');
        controller.abort();
        await new Promise((r) => setTimeout(r, 10));
        yield encoder.encode('new-part-2');
      };
      await expect(store.put(`${p}kept`, body(), { signal: controller.signal })).rejects.toMatchObject({
        code: 'aborted',
      });
      await expect(store.put(`${p}fresh`, body(), { signal: controller.signal })).rejects.toMatchObject({
        code: 'aborted',
      });
      expect((await readAll(await store.get(`${p}kept`))).toString()).toBe('old');
      expect(await store.head(`${p}fresh`)).toBeUndefined();
      expect(await keysOf(store.list(p))).toEqual([`${p}kept`]);
    });

    test('list yields keys in UTF-8 byte order with plain string-prefix semantics', async (store, p) => {
      const names = ['b', 'B', 'a/c', 'a.b', 'ab', 'a/b', 'a-z', 'é', 'z', '\u{1F600}', '\uFF21', 'a/b0/x'];
      for (const n of names) await store.put(`${p}${n}`, encoder.encode(n));
      const all = await listed(store, p);
      expect(all).toEqual(names.map((n) => `${p}${n}`).sort(compareObjectKeys));
      expect(all.indexOf(`${p}a.b`)).toBeLessThan(all.indexOf(`${p}a/b`));
      expect(all.indexOf(`${p}\uFF21`)).toBeLessThan(all.indexOf(`${p}\u{1F600}`));
      expect(await listed(store, `${p}a`)).toEqual([
        `${p}a-z`,
        `${p}a.b`,
        `${p}a/b`,
        `${p}a/b0/x`,
        `${p}a/c`,
        `${p}ab`,
      ]);
      expect(await listed(store, `${p}a/`)).toEqual([`${p}a/b`, `${p}a/b0/x`, `${p}a/c`]);
      expect(await listed(store, `${p}a/b`)).toEqual([`${p}a/b`, `${p}a/b0/x`]);
      expect(await listed(store, `${p}nothing-here/`)).toEqual([]);
      const infos: ObjectInfo[] = [];
      for await (const info of store.list(`${p}b`)) infos.push(info);
      expect(infos).toHaveLength(1);
      expect(infos[0]).toMatchObject({ key: `${p}b`, size: 1 });
    });

    test('non-portable keys are refused with invalid_key by every operation, before any I/O', async (store, p) => {
      const bad = [
        '',
        '..',
        `${p}../escape`,
        `${p}a/../../escape`,
        `/${p}absolute`,
        `${p}back\\slash`,
        `${p}nul\u0000byte`,
        `${p}new\nline`,
        `${p}del\u007f`,
        `${p}a//b`,
        `${p}trailing/`,
        `${p}./dot`,
        `${p}${'x'.repeat(1025)}`,
        `${p}lone\ud800surrogate`,
      ];
      for (const key of bad) {
        await expect(store.put(key, encoder.encode('x')), `put ${JSON.stringify(key)}`).rejects.toMatchObject({
          code: 'invalid_key',
        });
        await expect(
          store.put(key, chunks([encoder.encode('x')])),
          `put stream ${JSON.stringify(key)}`,
        ).rejects.toMatchObject({
          code: 'invalid_key',
        });
        await expect(store.get(key), `get ${JSON.stringify(key)}`).rejects.toMatchObject({ code: 'invalid_key' });
        await expect(store.head(key), `head ${JSON.stringify(key)}`).rejects.toMatchObject({ code: 'invalid_key' });
        await expect(store.delete([`${p}fine`, key]), `delete ${JSON.stringify(key)}`).rejects.toMatchObject({
          code: 'invalid_key',
        });
      }
      for (const prefix of ['/abs', '../', `${p}a//`, `${p}..`, `${p}x\u0000`]) {
        await expect(keysOf(store.list(prefix)), `list ${JSON.stringify(prefix)}`).rejects.toMatchObject({
          code: 'invalid_key',
        });
      }
      expect(await keysOf(store.list(p))).toEqual([]);
    });

    test('a missing object: get is not_found, head is undefined, delete is a no-op', async (store, p) => {
      await expect(store.get(`${p}missing`)).rejects.toMatchObject({ code: 'not_found' });
      await expect(store.get(`${p}missing/deeper/key`)).rejects.toMatchObject({ code: 'not_found' });
      expect(await store.head(`${p}missing`)).toBeUndefined();
      await store.delete([`${p}missing`, `${p}missing/deeper/key`]);
      await store.delete([]);
    });

    test('a deleted object is gone and its neighbours stay', async (store, p) => {
      await store.put(`${p}d/one`, encoder.encode('1'));
      await store.put(`${p}d/two`, encoder.encode('2'));
      await store.delete([`${p}d/one`]);
      await expect(store.get(`${p}d/one`)).rejects.toMatchObject({ code: 'not_found' });
      expect(await keysOf(store.list(p))).toEqual([`${p}d/two`]);
      await store.delete([`${p}d/two`, `${p}d/two`]);
      expect(await keysOf(store.list(p))).toEqual([]);
    });

    test(
      `${manyKeys} keys list in order and delete in one call`,
      async (store, p) => {
        const keys = Array.from({ length: manyKeys }, (_, i) => `${p}many/${String(i).padStart(6, '0')}`);
        for (let i = 0; i < keys.length; i += 50) {
          await Promise.all(keys.slice(i, i + 50).map((k) => store.put(k, encoder.encode(k))));
        }
        expect(await listed(store, `${p}many/`)).toEqual(keys);
        await store.delete([...keys, `${p}many/not-there`]);
        expect(await keysOf(store.list(p))).toEqual([]);
      },
      180_000,
    );
  });
}

async function* chunks(parts: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const part of parts) yield part;
}

async function readAll(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const chunk of source) parts.push(chunk);
  return Buffer.concat(parts);
}

async function keysOf(source: AsyncIterable<ObjectInfo>): Promise<string[]> {
  const keys: string[] = [];
  for await (const info of source) keys.push(info.key);
  return keys;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
