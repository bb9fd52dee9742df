import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { KvEntry, KvKey, KvPutOptions, KvStore } from '../contracts/kv-store.js';
import type { Json } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { assertKvKey, kvConflict, kvPutOptions, prefixMatches } from '../kv/kv-common.js';
import { sleep } from '../util/abort.js';

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
}

/**
 * The `kv-store.json` fallback for local development: one JSON file, replaced atomically (temp file,
 * fsync, rename) under a lock file, so two processes sharing it never lose a write and compare-and-set holds.
 * Use PostgresKvStore in production.
 *
 * @example
 * ```ts
 * import { FileKvStore } from '@nucleus/ingestion/fs';
 * const kv = new FileKvStore({ path: './kv-store.json' });
 * ```
 * @public
 */
export class FileKvStore implements KvStore {
  readonly path: string;
  readonly #lockPath: string;
  readonly #lockTimeoutMs: number;
  readonly #staleLockMs: number;
  #chain: Promise<unknown> = Promise.resolve();

  constructor(opts: FileKvStoreOptions) {
    if (!opts || typeof opts.path !== 'string' || opts.path.length === 0) {
      throw new IngestError('config_invalid', 'Expected `path` to be a non-empty string');
    }
    this.path = opts.path;
    this.#lockPath = `${opts.path}.lock`;
    this.#lockTimeoutMs = opts.lockTimeoutMs ?? 15_000;
    this.#staleLockMs = opts.staleLockMs ?? 5_000;
  }

  /** The live entry of `key`, or `undefined` when absent, deleted or expired. */
  async get<T extends Json>(key: KvKey): Promise<KvEntry<T> | undefined> {
    assertKvKey(key);
    const data = await this.#read();
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
    return this.#mutate((data) => {
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
    return this.#mutate((data) => {
      const i = data.entries.findIndex((x) => sameKey(x, key));
      if (i < 0 || !isLive(data.entries[i])) return false;
      if (opts?.expectedVersion !== undefined && data.entries[i].version !== opts.expectedVersion) return false;
      data.entries.splice(i, 1);
      return true;
    });
  }

  /** Every live entry of a namespace and scope whose key starts with `keyPrefix`, in key order. */
  async *list(prefix: { namespace: string; scopeId: string; keyPrefix?: string }): AsyncIterable<KvEntry> {
    const data = await this.#read();
    const rows = data.entries
      .filter((e) => isLive(e) && prefixMatches(e, prefix))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    for (const e of rows) yield toEntry(e);
  }

  /** Remove expired entries from the file. Returns how many. */
  async purgeExpired(): Promise<number> {
    return this.#mutate((data) => {
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

  /** Read-modify-write under the in-process chain and the cross-process lock file. */
  #mutate<R>(fn: (data: FileShape) => R): Promise<R> {
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
    return op;
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

  async #lock(): Promise<() => Promise<void>> {
    const deadline = Date.now() + this.#lockTimeoutMs;
    const token = `${process.pid}:${randomBytes(6).toString('hex')}`;
    for (let wait = 5; ; wait = Math.min(wait * 2, 100)) {
      try {
        await writeFile(this.#lockPath, token, { flag: 'wx' });
        return async () => {
          const owner = await readFile(this.#lockPath, 'utf8').catch(() => '');
          if (owner === token) await unlink(this.#lockPath).catch(() => {});
        };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST')
          throw new IngestError('kv_failed', `Cannot lock KV file ${this.path}`, { cause: err });
      }
      const info = await stat(this.#lockPath).catch(() => undefined);
      if (info && Date.now() - info.mtimeMs > this.#staleLockMs) {
        await unlink(this.#lockPath).catch(() => {});
        continue;
      }
      if (Date.now() > deadline)
        throw new IngestError('kv_failed', `Timed out waiting for the lock of KV file ${this.path}`, {
          retryable: true,
        });
      await sleep(wait + Math.random() * wait);
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
