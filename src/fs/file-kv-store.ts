import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { KvEntry, KvKey, KvPutOptions, KvStore } from '../contracts/kv-store.js';
import type { Json } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { assertKvKey, kvConflict, kvPutOptions, prefixMatches } from '../kv/kv-common.js';
import { raceAbort, sleep } from '../util/abort.js';

interface StoredEntry {
  namespace: string;
  scopeId: string;
  key: string;
  value: Json;
  version: number;
  createdAt: string;
  updatedAt: string;
  expiresAt?: string;
}

interface FileShape {
  format: 'nucleus-kv/1';
  entries: StoredEntry[];
}

/** Options of {@link FileKvStore}. @public */
export interface FileKvStoreOptions {
  /** The JSON file, e.g. `./kv-store.json`. Created on first write. */
  path: string;
  /** How long to wait for the lock of another process. @defaultValue 15000 */
  lockTimeoutMs?: number;
  /** A lock older than this is considered left by a crashed process and broken. @defaultValue 5000 */
  staleLockMs?: number;
  /** Every call (`get`, `put`, `delete`, `list`, `purgeExpired`) fails with `timeout` after this long. @defaultValue 30000 */
  timeoutMs?: number;
}

/**
 * The `kv-store.json` fallback for local development: one JSON file, replaced atomically (temp file,
 * fsync, rename) under a lock, so two processes sharing it never lose a write and compare-and-set holds.
 * Use PostgresKvStore in production.
 *
 * The lock is a numbered file in `<path>.locks/`: the highest number holds it. Taking the lock creates the next
 * number exclusively (`wx`), once the highest is released or older than `staleLockMs`; so breaking a stale lock never
 * deletes a file another process may have just created, and two breakers cannot both win.
 *
 * @example
 * ```ts
 * import { FileKvStore } from '@nucleus/ingestion/fs';
 * const kv = new FileKvStore({ path: './kv-store.json' });
 * ```
 * @throws IngestError `timeout` when a call takes longer than `timeoutMs` (its write may still land: re-read).
 * @public
 */
export class FileKvStore implements KvStore {
  readonly path: string;
  readonly #lockDir: string;
  readonly #lockTimeoutMs: number;
  readonly #staleLockMs: number;
  readonly #timeoutMs: number;
  #chain: Promise<unknown> = Promise.resolve();

  constructor(opts: FileKvStoreOptions) {
    if (!opts || typeof opts.path !== 'string' || opts.path.length === 0) {
      throw new IngestError('config_invalid', 'Expected `path` to be a non-empty string');
    }
    this.path = opts.path;
    this.#lockDir = `${opts.path}.locks`;
    this.#lockTimeoutMs = opts.lockTimeoutMs ?? 15_000;
    this.#staleLockMs = opts.staleLockMs ?? 5_000;
    this.#timeoutMs = opts.timeoutMs ?? 30_000;
  }

  /** The live entry of `key`, or `undefined` when absent, deleted or expired. */
  async get<T extends Json>(key: KvKey): Promise<KvEntry<T> | undefined> {
    assertKvKey(key);
    const data = await this.#timed('get', () => this.#read());
    const e = data.entries.find((x) => sameKey(x, key));
    return e && isLive(e) ? toEntry<T>(e) : undefined;
  }

  /**
   * Write `value` (compare-and-set with `expectedVersion`: a number, or `null` for "must not exist").
   * @throws IngestError `kv_conflict` when the compare-and-set loses
   */
  async put<T extends Json>(key: KvKey, value: T, opts?: KvPutOptions): Promise<KvEntry<T>> {
    assertKvKey(key);
    const { expectedVersion, ttlMs } = kvPutOptions(opts);
    if (value === undefined) throw new IngestError('config_invalid', 'KvStore values must be JSON (got undefined)');
    return this.#mutate('put', (data) => {
      const i = data.entries.findIndex((x) => sameKey(x, key));
      const existing = i >= 0 ? data.entries[i] : undefined;
      const live = existing && isLive(existing) ? existing : undefined;
      if (expectedVersion === null && live) throw kvConflict(key, null, live.version);
      if (typeof expectedVersion === 'number' && live?.version !== expectedVersion)
        throw kvConflict(key, expectedVersion, live?.version);
      const now = new Date();
      const next: StoredEntry = {
        namespace: key.namespace,
        scopeId: key.scopeId,
        key: key.key,
        value: JSON.parse(JSON.stringify(value)),
        version: (existing?.version ?? 0) + 1,
        createdAt: live?.createdAt ?? now.toISOString(),
        updatedAt: now.toISOString(),
        ...(ttlMs !== undefined ? { expiresAt: new Date(now.getTime() + ttlMs).toISOString() } : {}),
      };
      if (i >= 0) data.entries[i] = next;
      else data.entries.push(next);
      return toEntry<T>(next);
    });
  }

  /** Delete `key` (only at `expectedVersion` when given); `false` when absent or the version differs. */
  async delete(key: KvKey, opts?: { expectedVersion?: number }): Promise<boolean> {
    assertKvKey(key);
    return this.#mutate('delete', (data) => {
      const i = data.entries.findIndex((x) => sameKey(x, key));
      if (i < 0 || !isLive(data.entries[i])) return false;
      if (opts?.expectedVersion !== undefined && data.entries[i].version !== opts.expectedVersion) return false;
      data.entries.splice(i, 1);
      return true;
    });
  }

  /** Every live entry of a namespace and scope whose key starts with `keyPrefix`, in key order. */
  async *list(prefix: { namespace: string; scopeId: string; keyPrefix?: string }): AsyncIterable<KvEntry> {
    const data = await this.#timed('list', () => this.#read());
    const rows = data.entries
      .filter((e) => isLive(e) && prefixMatches(e, prefix))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    for (const e of rows) yield toEntry(e);
  }

  /** Remove expired entries from the file. Returns how many. */
  async purgeExpired(): Promise<number> {
    return this.#mutate('purgeExpired', (data) => {
      const before = data.entries.length;
      data.entries = data.entries.filter(isLive);
      return before - data.entries.length;
    });
  }

  async #read(): Promise<FileShape> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { format: 'nucleus-kv/1', entries: [] };
      throw new IngestError('kv_failed', `Cannot read KV file ${this.path}`, { cause: err });
    }
    try {
      const parsed = JSON.parse(text) as FileShape;
      if (parsed?.format !== 'nucleus-kv/1' || !Array.isArray(parsed.entries)) throw new Error('unexpected shape');
      return parsed;
    } catch (err) {
      throw new IngestError('kv_failed', `KV file ${this.path} is not a valid kv-store file; fix or remove it`, {
        cause: err,
        retryable: false,
      });
    }
  }

  /** `op()`, failing with `timeout` after `timeoutMs` (the operation itself may still finish). */
  #timed<R>(what: string, op: () => Promise<R>): Promise<R> {
    const ms = this.#timeoutMs;
    const ctl = new AbortController();
    const timer = setTimeout(() => {
      const msg = `FileKvStore ${what} on ${this.path} took longer than timeoutMs (${ms} ms)`;
      ctl.abort(new IngestError('timeout', msg, { details: { timeoutMs: ms } }));
    }, ms);
    const p = op();
    p.catch(() => {});
    return raceAbort(p, ctl.signal).finally(() => clearTimeout(timer));
  }

  /** Read-modify-write under the in-process chain and the cross-process lock, within `timeoutMs`. */
  #mutate<R>(what: string, fn: (data: FileShape) => R): Promise<R> {
    const op = this.#chain.then(async () => {
      // The first write creates the file's directory, like the file itself.
      await mkdir(dirname(this.path), { recursive: true }).catch(() => {});
      const release = await this.#lock();
      try {
        const data = await this.#read();
        const out = fn(data);
        await this.#write(data);
        return out;
      } finally {
        await release();
      }
    });
    this.#chain = op.catch(() => {});
    return this.#timed(what, () => op);
  }

  async #write(data: FileShape): Promise<void> {
    const tmp = join(dirname(this.path), `.${basename(this.path)}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      const fh = await open(tmp, 'w', 0o600);
      try {
        await fh.writeFile(JSON.stringify(data, null, 2));
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.path);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw new IngestError('kv_failed', `Cannot write KV file ${this.path}`, { cause: err });
    }
  }

  /**
   * Take the lock: create the next number of `<path>.locks/` exclusively once the highest is released (mtime 0) or
   * stale, then check no higher number appeared meanwhile (ours was then made from an outdated listing: drop it).
   */
  async #lock(): Promise<() => Promise<void>> {
    const deadline = Date.now() + this.#lockTimeoutMs;
    await mkdir(this.#lockDir, { recursive: true }).catch(() => {});
    for (let wait = 5; ; wait = Math.min(wait * 2, 100)) {
      const top = await this.#topLock();
      if (!top || Date.now() - top.mtimeMs > this.#staleLockMs) {
        const mine = join(this.#lockDir, String((top?.n ?? 0) + 1));
        const made = await writeFile(mine, `${process.pid}`, { flag: 'wx' }).then(
          () => true,
          (err: NodeJS.ErrnoException) => {
            if (err.code === 'EEXIST') return false;
            throw new IngestError('kv_failed', `Cannot lock KV file ${this.path}`, { cause: err });
          },
        );
        if (made) {
          const now = await this.#topLock();
          if (now && join(this.#lockDir, String(now.n)) === mine) {
            for (const old of now.lower) await unlink(join(this.#lockDir, old)).catch(() => {});
            // release: mtime 0 marks it free; the file stays, so its number is never taken twice
            return () => utimes(mine, 0, 0).catch(() => {});
          }
          await unlink(mine).catch(() => {});
        }
        continue;
      }
      if (Date.now() > deadline)
        throw new IngestError('kv_failed', `Timed out waiting for the lock of KV file ${this.path}`, {
          retryable: true,
        });
      await sleep(wait + Math.random() * wait);
    }
  }

  /** The highest lock number and its mtime, with the names of the lower ones; `undefined` when there is none. */
  async #topLock(): Promise<{ n: number; mtimeMs: number; lower: string[] } | undefined> {
    for (;;) {
      const names = (await readdir(this.#lockDir).catch(() => [] as string[])).filter((x) => /^\d+$/.test(x));
      if (names.length === 0) return undefined;
      const n = Math.max(...names.map(Number));
      const info = await stat(join(this.#lockDir, String(n))).catch(() => undefined);
      // gone meanwhile: a lower number dropped by its maker; list again
      if (info) return { n, mtimeMs: info.mtimeMs, lower: names.filter((x) => Number(x) < n) };
    }
  }
}

function sameKey(e: KvKey, k: KvKey): boolean {
  return e.namespace === k.namespace && e.scopeId === k.scopeId && e.key === k.key;
}
function isLive(e: StoredEntry): boolean {
  return e.expiresAt === undefined || Date.parse(e.expiresAt) > Date.now();
}
function toEntry<T extends Json>(e: StoredEntry): KvEntry<T> {
  return {
    namespace: e.namespace,
    scopeId: e.scopeId,
    key: e.key,
    value: e.value as T,
    version: e.version,
    updatedAt: new Date(e.updatedAt),
    ...(e.expiresAt ? { expiresAt: new Date(e.expiresAt) } : {}),
  };
}
