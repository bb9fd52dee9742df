import { createHash, randomBytes } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import {
  type FileHandle,
  lstat,
  mkdir,
  open,
  readdir,
  readFile,
  realpath,
  rename,
  rmdir,
  unlink,
} from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import type { ObjectInfo, ObjectStore, PutOptions } from '../contracts/object-store.js';
import { IngestError } from '../errors/ingest-error.js';
import { abortable, throwIfAborted } from '../util/abort.js';
import { assertValidObjectKey, assertValidObjectPrefix } from '../util/object-key.js';
import { compareObjectKeys } from '../util/object-key-order.js';
import { entryKind, fsSegments, invalidKey, META_DIR, pathUnder, RESERVED_PREFIX, walkDirs } from './fs-paths.js';

/** Options of {@link FileSystemObjectStore}. @public */
export interface FileSystemObjectStoreOptions {
  /** The directory that is the bucket; created when missing. */
  root: string;
  /** Name reported as {@link ObjectStore.bucket}. @defaultValue the root directory's base name */
  bucket?: string;
  /**
   * fsync each file and its folder before `put` resolves, so a put survives a power loss. Turn off only for
   * scratch data you can rebuild (tests, throwaway staging): writes stay atomic, they are just not durable.
   * @defaultValue true
   */
  fsync?: boolean;
}

const optionsSchema = z
  .object({
    root: z.string().min(1, 'must be a non-empty path'),
    bucket: z.string().min(1).optional(),
    fsync: z.boolean().optional(),
  })
  .strict();

/** Bytes gathered before one write system call. */
const WRITE_BUFFER = 1024 * 1024;
/** Bytes per chunk yielded by {@link FileSystemObjectStore.get}. */
const READ_CHUNK = 256 * 1024;
const DEFAULT_CONTENT_TYPE = 'application/octet-stream';
/** Files stat'ed at once while listing, and keys removed at once by `delete`. */
const LIST_CONCURRENCY = 32;
const DELETE_CONCURRENCY = 16;

interface Sidecar {
  key: string;
  ino: number;
  size: number;
  contentType: string;
  metadata: Record<string, string>;
}

/**
 * An {@link ObjectStore} on a local directory: the directory is the bucket, a key is a relative path below it.
 *
 * - `put` streams into a temp file in the target folder, fsyncs it, renames it over the target and fsyncs the
 *   folder, so readers see the old object or the whole new one — never a torn one — even across a crash.
 * - Content type and metadata live in a JSON sidecar under the reserved `.nucleus~meta` folder, tied to the
 *   file's inode so they always describe the bytes they sit next to.
 * - Keys can never leave the root: besides the portable-key rules every store applies, a key whose path crosses a
 *   symbolic link (or ends on one) is refused with `invalid_key`, as are segments over 255 bytes and segments
 *   starting with `.nucleus~` (reserved for temp files and sidecars).
 * - A key cannot be both an object and a folder (`a` and `a/b`): the second put is refused with `invalid_key`.
 *
 * @example
 * ```ts
 * import { FileSystemObjectStore } from '@nucleus/ingestion/fs';
 * const store = new FileSystemObjectStore({ root: '/var/lib/ingestion/staging' });
 * await store.put('runs/r1/0', new TextEncoder().encode('{"id":1}\n'), { contentType: 'application/x-ndjson' });
 * for await (const chunk of await store.get('runs/r1/0')) process.stdout.write(chunk);
 * ```
 * @throws IngestError `config_invalid` when the options are malformed.
 * @public
 */
export class FileSystemObjectStore implements ObjectStore {
  readonly bucket: string;
  /** The root as given, resolved to an absolute path. */
  readonly root: string;
  readonly #fsync: boolean;
  #realRoot: Promise<string> | undefined;

  constructor(options: FileSystemObjectStoreOptions) {
    const parsed = optionsSchema.safeParse(options ?? {});
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(options)'}: ${i.message}`);
      throw new IngestError('config_invalid', `Invalid FileSystemObjectStore options: ${issues.join('; ')}`, {
        details: { issues },
      });
    }
    this.root = resolve(parsed.data.root);
    this.bucket = parsed.data.bucket ?? basename(this.root);
    this.#fsync = parsed.data.fsync ?? true;
  }

  /**
   * Write `body` under `key` atomically (temp file, fsync, rename, fsync of the folder).
   * @throws IngestError `invalid_key` for a non-portable key, a path through a symbolic link, or an object/folder
   * clash; `aborted` when `opts.signal` fires; `staging_failed` on I/O errors (disk full included). The temp file
   * is removed whenever the put does not complete.
   */
  async put(key: string, body: Uint8Array | AsyncIterable<Uint8Array>, opts: PutOptions = {}): Promise<ObjectInfo> {
    assertValidObjectKey(key);
    const segments = fsSegments(key);
    throwIfAborted(opts.signal, `put of ${key}`);
    const root = await this.#root();
    const contentType = opts.contentType ?? DEFAULT_CONTENT_TYPE;
    const metadata = { ...(opts.metadata ?? {}) };
    let tmp: string | undefined;
    let fh: FileHandle | undefined;
    try {
      const dir = await this.#openTempDir(root, segments, key);
      tmp = dir.tmp;
      fh = dir.fh;
      const target = pathUnder(root, segments, key);
      const kind = await entryKind(target);
      if (kind === 'link') throw invalidKey(key, 'the object path is a symbolic link');
      if (kind === 'dir' || kind === 'other') throw invalidKey(key, 'a folder of other objects has this name');
      await writeBody(fh, body, opts.signal, key);
      if (this.#fsync) await fh.sync();
      const st = await fh.stat();
      await fh.close();
      fh = undefined;
      throwIfAborted(opts.signal, `put of ${key}`);
      if (contentType === DEFAULT_CONTENT_TYPE && Object.keys(metadata).length === 0) {
        // Nothing to record: drop a stale sidecar (it would not match the new inode anyway).
        await unlink(sidecarPath(root, key)).catch(ignoreMissing);
      } else {
        await this.#writeSidecar(root, { key, ino: st.ino, size: st.size, contentType, metadata });
      }
      await rename(tmp, target);
      tmp = undefined;
      if (this.#fsync) await fsyncDir(dir.path);
      return { key, size: st.size, etag: etagOf(st), lastModified: st.mtime, contentType, metadata: { ...metadata } };
    } catch (err) {
      await fh?.close().catch(() => {});
      if (tmp) await unlink(tmp).catch(() => {});
      throw fsFailure(err, 'write', key, this.root);
    }
  }

  /**
   * Stream the object under `key`. The file is opened at call time, so a concurrent overwrite does not change what
   * an iteration returns. Iterate to the end (or break) so the file handle is closed.
   * @throws IngestError `invalid_key`; `not_found` when there is no such object; `aborted`; `staging_failed`.
   */
  async get(key: string, opts: { signal?: AbortSignal } = {}): Promise<AsyncIterable<Uint8Array>> {
    assertValidObjectKey(key);
    const segments = fsSegments(key);
    throwIfAborted(opts.signal, `get of ${key}`);
    let fh: FileHandle | undefined;
    try {
      const root = await this.#root();
      const dir = await walkDirs(root, segments.slice(0, -1), key, false);
      if (dir === undefined) throw this.#notFound(key);
      fh = await open(pathUnder(root, segments, key), constants.O_RDONLY | constants.O_NOFOLLOW);
      const st = await fh.stat();
      if (!st.isFile()) throw this.#notFound(key);
    } catch (err) {
      await fh?.close().catch(() => {});
      throw fsFailure(err, 'read', key, this.root, this.bucket);
    }
    return readChunks(fh, key, opts.signal, this.root);
  }

  /** Metadata of the object under `key`, or `undefined`. @throws IngestError `invalid_key`; `staging_failed`. */
  async head(key: string): Promise<ObjectInfo | undefined> {
    assertValidObjectKey(key);
    const segments = fsSegments(key);
    try {
      const root = await this.#root();
      const dir = await walkDirs(root, segments.slice(0, -1), key, false);
      if (dir === undefined) return undefined;
      return await this.#info(root, join(dir, segments[segments.length - 1]), key);
    } catch (err) {
      throw fsFailure(err, 'inspect', key, this.root);
    }
  }

  /**
   * Every object whose key starts with `prefix`, in UTF-8 key order, walking one folder at a time (file contents are
   * never read). Symbolic links inside the root are not objects and are skipped.
   * @throws IngestError `invalid_key`; `staging_failed`.
   */
  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    assertValidObjectPrefix(prefix);
    const slash = prefix.lastIndexOf('/');
    const folder = slash >= 0 ? prefix.slice(0, slash) : '';
    const folderSegments = folder ? fsSegments(folder, 'prefix') : [];
    let dir: string | undefined;
    let root: string;
    try {
      root = await this.#root();
      dir = await walkDirs(root, folderSegments, prefix, false);
    } catch (err) {
      throw fsFailure(err, 'list', prefix, this.root);
    }
    if (dir === undefined) return;
    yield* this.#walk(root, dir, folder ? `${folder}/` : '', prefix.slice(slash + 1));
  }

  /**
   * Delete `keys`; missing keys are ignored, and folders left empty are removed. Every key is checked before any
   * is deleted.
   * @throws IngestError `invalid_key`; `staging_failed`.
   */
  async delete(keys: string[]): Promise<void> {
    const all = keys.map((key) => {
      assertValidObjectKey(key);
      return { key, segments: fsSegments(key) };
    });
    const root = await this.#root();
    const touched = new Set<string>();
    const deleteOne = async ({ key, segments }: { key: string; segments: string[] }) => {
      try {
        const dir = await walkDirs(root, segments.slice(0, -1), key, false);
        if (dir === undefined) return;
        const path = pathUnder(root, segments, key);
        const kind = await entryKind(path);
        if (kind === 'link') throw invalidKey(key, 'the object path is a symbolic link');
        if (kind !== 'file') return;
        await unlink(path).catch(ignoreMissing);
        await unlink(sidecarPath(root, key)).catch(ignoreMissing);
        touched.add(dir);
      } catch (err) {
        throw fsFailure(err, 'delete', key, this.root);
      }
    };
    try {
      for (let i = 0; i < all.length; i += DELETE_CONCURRENCY) {
        await Promise.all(all.slice(i, i + DELETE_CONCURRENCY).map(deleteOne));
      }
    } finally {
      // Deepest folders first, so a parent emptied by its children goes too.
      for (const dir of [...touched].sort((a, b) => b.length - a.length)) await pruneEmptyDirs(root, dir);
    }
  }

  #root(): Promise<string> {
    this.#realRoot ??= (async () => {
      try {
        await mkdir(this.root, { recursive: true });
        return await realpath(this.root);
      } catch (err) {
        this.#realRoot = undefined;
        throw IngestError.wrap(err, 'staging_failed', `Cannot use ${this.root} as an object store root`);
      }
    })();
    return this.#realRoot;
  }

  /** Create the target folder and a temp file in it; retried when a concurrent delete prunes the folder. */
  async #openTempDir(
    root: string,
    segments: string[],
    key: string,
  ): Promise<{ path: string; tmp: string; fh: FileHandle }> {
    for (let attempt = 1; ; attempt++) {
      const path = (await walkDirs(root, segments.slice(0, -1), key, true)) as string;
      const tmp = join(path, tempName());
      try {
        const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
        return { path, tmp, fh: await open(tmp, flags, 0o644) };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 5) throw err;
      }
    }
  }

  async #writeSidecar(root: string, sidecar: Sidecar): Promise<void> {
    const path = sidecarPath(root, sidecar.key);
    const dir = dirname(path);
    await mkdir(dir, { recursive: true });
    const tmp = join(dir, tempName());
    try {
      const fh = await open(
        tmp,
        constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
        0o644,
      );
      try {
        await fh.writeFile(JSON.stringify(sidecar));
        if (this.#fsync) await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, path);
      if (this.#fsync) await fsyncDir(dir);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw err;
    }
  }

  async #info(root: string, path: string, key: string): Promise<ObjectInfo | undefined> {
    let st: Stats;
    try {
      st = await lstat(path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw err;
    }
    if (st.isSymbolicLink()) throw invalidKey(key, 'the object path is a symbolic link');
    if (!st.isFile()) return undefined;
    const sidecar = await readSidecar(root, key);
    const matches = sidecar && sidecar.ino === st.ino && sidecar.size === st.size && sidecar.key === key;
    return {
      key,
      size: st.size,
      etag: etagOf(st),
      lastModified: st.mtime,
      contentType: matches ? sidecar.contentType : DEFAULT_CONTENT_TYPE,
      metadata: matches ? { ...sidecar.metadata } : {},
    };
  }

  async *#walk(root: string, dir: string, keyPrefix: string, namePrefix: string): AsyncGenerator<ObjectInfo> {
    let entries: { name: string; isDir: boolean; sortKey: string }[];
    try {
      entries = (await readdir(dir, { withFileTypes: true }))
        .filter((e) => !e.name.startsWith(RESERVED_PREFIX) && e.name.startsWith(namePrefix))
        .filter((e) => e.isFile() || e.isDirectory())
        .map((e) => ({ name: e.name, isDir: e.isDirectory(), sortKey: e.isDirectory() ? `${e.name}/` : e.name }))
        .sort((a, b) => compareObjectKeys(a.sortKey, b.sortKey));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return;
      throw fsFailure(err, 'list', keyPrefix, this.root);
    }
    for (let i = 0; i < entries.length; ) {
      const entry = entries[i];
      if (entry.isDir) {
        yield* this.#walk(root, join(dir, entry.name), `${keyPrefix}${entry.name}/`, '');
        i++;
        continue;
      }
      // Stat a run of plain files concurrently, then yield them in order.
      const run: string[] = [];
      while (i < entries.length && !entries[i].isDir && run.length < LIST_CONCURRENCY) run.push(entries[i++].name);
      const infos = await Promise.all(
        run.map((name) =>
          this.#info(root, join(dir, name), `${keyPrefix}${name}`).catch((err) => {
            if (IngestError.is(err, 'invalid_key')) return undefined;
            throw fsFailure(err, 'list', `${keyPrefix}${name}`, this.root);
          }),
        ),
      );
      for (const info of infos) if (info) yield info;
    }
  }

  #notFound(key: string): IngestError {
    return new IngestError(
      'not_found',
      `Object ${JSON.stringify(key)} not found in bucket ${JSON.stringify(this.bucket)} (${this.root})`,
      { details: { bucket: this.bucket, key } },
    );
  }
}

async function* readChunks(fh: FileHandle, key: string, signal: AbortSignal | undefined, root: string) {
  try {
    while (true) {
      throwIfAborted(signal, `get of ${key}`);
      const buf = Buffer.allocUnsafe(READ_CHUNK);
      let n: number;
      try {
        n = (await fh.read(buf, 0, READ_CHUNK, null)).bytesRead;
      } catch (err) {
        throw fsFailure(err, 'read', key, root);
      }
      if (n === 0) return;
      yield n === READ_CHUNK ? buf : buf.subarray(0, n);
    }
  } finally {
    await fh.close().catch(() => {});
  }
}

async function writeBody(
  fh: FileHandle,
  body: Uint8Array | AsyncIterable<Uint8Array>,
  signal: AbortSignal | undefined,
  key: string,
): Promise<void> {
  if (body instanceof Uint8Array) {
    await writeAll(fh, body);
    return;
  }
  if (!body || typeof (body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] !== 'function') {
    throw badChunk(key, body);
  }
  const buffer = Buffer.allocUnsafe(WRITE_BUFFER);
  let used = 0;
  for await (const chunk of abortable(body, signal, `put of ${key}`)) {
    if (!(chunk instanceof Uint8Array)) throw badChunk(key, chunk);
    if (used + chunk.byteLength > WRITE_BUFFER && used > 0) {
      await writeAll(fh, buffer.subarray(0, used));
      used = 0;
    }
    if (chunk.byteLength >= WRITE_BUFFER) {
      await writeAll(fh, chunk);
    } else {
      buffer.set(chunk, used);
      used += chunk.byteLength;
    }
  }
  if (used > 0) await writeAll(fh, buffer.subarray(0, used));
}

async function writeAll(fh: FileHandle, data: Uint8Array): Promise<void> {
  let at = 0;
  while (at < data.byteLength) {
    const { bytesWritten } = await fh.write(data, at, data.byteLength - at);
    at += bytesWritten;
  }
}

async function fsyncDir(path: string): Promise<void> {
  const fh = await open(path, constants.O_RDONLY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Remove `dir` and its parents while they are empty, stopping at the root. */
async function pruneEmptyDirs(root: string, dir: string): Promise<void> {
  let current = dir;
  while (current.startsWith(`${root}/`) && current !== root) {
    try {
      await rmdir(current);
    } catch {
      return;
    }
    current = dirname(current);
  }
}

function sidecarPath(root: string, key: string): string {
  const hash = createHash('sha256').update(key).digest('hex');
  return join(root, META_DIR, hash.slice(0, 2), `${hash}.json`);
}

async function readSidecar(root: string, key: string): Promise<Sidecar | undefined> {
  try {
    const parsed = JSON.parse(await readFile(sidecarPath(root, key), 'utf8')) as Sidecar;
    return parsed && typeof parsed === 'object' ? parsed : undefined;
  } catch {
    return undefined;
  }
}

function tempName(): string {
  return `${RESERVED_PREFIX}tmp~${process.pid}~${randomBytes(8).toString('hex')}`;
}

function etagOf(st: { ino: number; size: number; mtimeMs: number }): string {
  return `${st.ino.toString(16)}-${st.size.toString(16)}-${Math.round(st.mtimeMs * 1000).toString(16)}`;
}

function ignoreMissing(err: unknown): void {
  if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
}

function badChunk(key: string, value: unknown): IngestError {
  return new IngestError(
    'staging_failed',
    `Body of ${JSON.stringify(key)} must be a Uint8Array or an AsyncIterable of Uint8Array, got ${value === null ? 'null' : typeof value}`,
    { retryable: false },
  );
}

/** Map a filesystem error to the IngestError a caller can act on. */
function fsFailure(err: unknown, op: string, key: string, root: string, bucket?: string): IngestError {
  if (IngestError.is(err)) return err;
  const code = (err as NodeJS.ErrnoException).code;
  const where = `${JSON.stringify(key)} under ${root}`;
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return new IngestError('staging_failed', `Could not ${op} ${where}: no space left (${code})`, {
        cause: err,
        details: { key, errno: code },
      });
    case 'ELOOP':
      return invalidKey(key, 'the path crosses a symbolic link');
    case 'ENOTDIR':
    case 'EISDIR':
      return invalidKey(key, 'an object and a folder would share a name');
    case 'ENAMETOOLONG':
      return invalidKey(key, 'the path is too long for this filesystem');
    case 'ENOENT':
      if (op === 'read') {
        return new IngestError(
          'not_found',
          `Object ${JSON.stringify(key)} not found in bucket ${JSON.stringify(bucket)} (${root})`,
          {
            details: { bucket, key },
          },
        );
      }
      break;
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new IngestError('staging_failed', `Could not ${op} ${where}: ${code}`, {
        cause: err,
        retryable: false,
        details: { key, errno: code },
      });
  }
  return IngestError.wrap(err, 'staging_failed', `Could not ${op} ${where}`, { key });
}
