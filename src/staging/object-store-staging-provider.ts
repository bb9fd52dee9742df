import { z } from 'zod';
import { builtinCodec, type CodecSpec, isCodecSpec, resolveCodec } from '../codecs/codec-registry.js';
import type { IngestionContext } from '../contracts/context.js';
import type { ObjectStore } from '../contracts/object-store.js';
import type {
  RecordCodec,
  RecordReader,
  RecordWriter,
  SealOptions,
  SessionDescription,
  StagingHandle,
  StagingProvider,
  StagingSession,
  StagingSessionRef,
  SweepOptions,
  SweepReport,
  WriterOptions,
} from '../contracts/staging.js';
import type { RecordSchema } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import {
  ABANDONED_NAME,
  assertExtension,
  LANDED_NAME,
  MANIFEST_NAME,
  normalizePrefix,
  parseSliceName,
  runDirKey,
  SUCCESS_NAME,
  sliceKey,
} from './layout.js';
import {
  MANIFEST_FORMAT,
  type ObjectStoreSessionRef,
  objectStoreRefSchema,
  readManifest,
  type StagingManifest,
  type StagingManifestSlice,
  writeManifest,
} from './manifest.js';
import { objectStoreReader, verifySession } from './object-store-slice-reader.js';
import { ObjectStoreSliceWriter } from './object-store-slice-writer.js';
import { sweepObjectStore } from './object-store-sweep.js';

/** Options of {@link ObjectStoreStagingProvider}. @public */
export interface ObjectStoreStagingProviderOptions {
  /** Where the bytes go: `MemoryObjectStore`, `FileSystemObjectStore` (`/fs`), `S3ObjectStore` (`/s3`), … */
  store: ObjectStore;
  /** How rows become bytes. @defaultValue `'ndjson'` */
  codec?: CodecSpec;
  /** Key prefix of every session. @defaultValue `'ingestion'` */
  prefix?: string;
}

const optionsSchema = z
  .object({
    store: z.custom<ObjectStore>(
      (s) =>
        typeof s === 'object' &&
        s !== null &&
        ['put', 'get', 'head', 'list', 'delete'].every(
          (m) => typeof (s as Record<string, unknown>)[m] === 'function',
        ) &&
        typeof (s as { bucket?: unknown }).bucket === 'string',
      'must be an ObjectStore (bucket, put, get, head, list, delete)',
    ),
    codec: z.custom<CodecSpec>(isCodecSpec, "must be 'ndjson', 'ndjson.gz' or a RecordCodec").optional(),
    prefix: z.string().min(1).optional(),
  })
  .strict();

/**
 * Staging on any {@link ObjectStore}: one object per slice under
 * `<prefix>/<workspaceId>/<endpointId>/<runId>/<slice><ext>`, a zod-validated `manifest.json` (rows, bytes,
 * sha256, codec and schema per slice), `_SUCCESS` when sealed and `_LANDED` when the sink committed.
 *
 * Writers stream through the codec into `store.put` with backpressure (memory per writer is one batch plus the
 * store's part buffer). Readers verify each slice — size before reading, sha256 and row count while reading —
 * and fail with `staging_corrupt` before the end of a damaged slice is handed out. A session reopens anywhere
 * from its JSON `ref` ({@link ObjectStoreStagingProvider.openSession}). Manifest updates are serialized within a
 * process; across processes the run lease (see `runUnit`) keeps a single writer per run, and the lease's fencing
 * token, written into the manifest by `fence()`, refuses the manifest changes of a holder paused past its lease.
 *
 * @example
 * ```ts
 * import { ObjectStoreStagingProvider } from '@nucleus/ingestion';
 * import { FileSystemObjectStore } from '@nucleus/ingestion/fs';
 * const staging = new ObjectStoreStagingProvider({
 *   store: new FileSystemObjectStore({ root: '/var/lib/ingestion' }),
 *   codec: 'ndjson.gz',
 * });
 * ```
 * @throws IngestError `config_invalid` when the options are malformed (every issue is listed).
 * @public
 */
export class ObjectStoreStagingProvider implements StagingProvider {
  /** Provider id written into every session ref. */
  readonly id = 'object-store';
  readonly store: ObjectStore;
  readonly codec: RecordCodec;
  /** Normalised key prefix (no trailing `/`). */
  readonly prefix: string;
  readonly #chains = new Map<string, Promise<unknown>>();

  constructor(options: ObjectStoreStagingProviderOptions) {
    const parsed = optionsSchema.safeParse(options ?? {});
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(options)'}: ${i.message}`);
      throw new IngestError('config_invalid', `Invalid ObjectStoreStagingProvider options: ${issues.join('; ')}`, {
        details: { issues },
      });
    }
    this.store = parsed.data.store;
    this.codec = resolveCodec(parsed.data.codec);
    assertExtension(this.codec.extension, this.codec.id);
    this.prefix = normalizePrefix(parsed.data.prefix ?? 'ingestion');
  }

  /**
   * The session of `ctx.runId`: a new one (an initial manifest is written at once, so `sweep` can find it),
   * or the existing one when the run directory already has a manifest — same run id, same location.
   * @throws IngestError `config_invalid` for empty ids; `staging_corrupt` when an existing manifest is
   * invalid or belongs to another unit; `staging_failed` on I/O.
   */
  async allocateSession(ctx: IngestionContext): Promise<StagingSession> {
    const runDir = runDirKey(this.prefix, ctx);
    const ref: ObjectStoreSessionRef = {
      provider: this.id,
      sessionId: runDir,
      runId: ctx.runId,
      workspaceId: ctx.workspaceId,
      endpointId: ctx.endpointId,
      unitId: ctx.unitId,
      ...(ctx.sinkId !== undefined ? { sinkId: ctx.sinkId } : {}),
      ...(ctx.vendor !== undefined ? { vendor: ctx.vendor } : {}),
      bucket: this.store.bucket,
      prefix: this.prefix,
      runDir,
      codec: this.codec.id,
    };
    const manifest = await this.serialize(runDir, async () => {
      const existing = await readManifest(this.store, `${runDir}/${MANIFEST_NAME}`, ctx.signal);
      if (existing) {
        assertSameSession(existing, ref);
        return existing;
      }
      const now = new Date().toISOString();
      const fresh: StagingManifest = {
        format: MANIFEST_FORMAT,
        version: 1,
        ref,
        createdAt: now,
        updatedAt: now,
        slices: [],
      };
      await writeManifest(this.store, `${runDir}/${MANIFEST_NAME}`, fresh, ctx.signal);
      return fresh;
    });
    return new ObjectStoreStagingSession(this, { ...manifest.ref, codec: this.codec.id }, manifest, ctx.signal);
  }

  /**
   * Reopen a session from its ref, e.g. in another process. The ref's location must match this provider's
   * bucket and prefix.
   * @throws IngestError `config_invalid` for a malformed or foreign ref; `not_found` when nothing was staged
   * there; `staging_corrupt` when objects exist but the manifest is missing, invalid or disagrees with the ref.
   */
  async openSession(ref: StagingSessionRef): Promise<StagingSession> {
    const parsed = objectStoreRefSchema.safeParse(ref);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(ref)'}: ${i.message}`);
      throw new IngestError('config_invalid', `Not a session ref of ObjectStoreStagingProvider: ${issues.join('; ')}`, {
        details: { issues },
      });
    }
    const r = parsed.data as ObjectStoreSessionRef;
    const runDir = runDirKey(this.prefix, r);
    const mismatch: string[] = [];
    if (r.runDir !== runDir)
      mismatch.push(
        `runDir ${JSON.stringify(r.runDir)} is not ${JSON.stringify(runDir)} under prefix ${JSON.stringify(this.prefix)}`,
      );
    if (r.bucket !== this.store.bucket)
      mismatch.push(`bucket ${JSON.stringify(r.bucket)} is not ${JSON.stringify(this.store.bucket)}`);
    if (mismatch.length > 0) {
      throw new IngestError('config_invalid', `Session ref ${r.sessionId} belongs elsewhere: ${mismatch.join('; ')}`, {
        details: { issues: mismatch, sessionId: r.sessionId },
      });
    }
    const manifest = await readManifest(this.store, `${runDir}/${MANIFEST_NAME}`);
    if (!manifest) {
      let anything = false;
      for await (const _ of this.store.list(`${runDir}/`)) {
        anything = true;
        break;
      }
      if (anything) {
        throw new IngestError('staging_corrupt', `Staging session ${r.sessionId} has objects but no ${MANIFEST_NAME}`, {
          details: { sessionId: r.sessionId, runId: r.runId },
        });
      }
      throw new IngestError('not_found', `Staging session ${r.sessionId} does not exist (no ${MANIFEST_NAME})`, {
        details: { sessionId: r.sessionId, runId: r.runId },
      });
    }
    assertSameSession(manifest, r);
    return new ObjectStoreStagingSession(this, { ...manifest.ref, ...r, codec: this.codec.id }, manifest, undefined);
  }

  /**
   * Delete landed sessions older than `olderThanMs` and never-landed ones older than `abandonedAfterMs`;
   * `keep(ref)` returning `true` spares a session (e.g. its lease is live).
   * @throws IngestError `config_invalid` for bad options; `aborted` on the signal; `staging_failed` on I/O.
   */
  sweep(opts: SweepOptions): Promise<SweepReport> {
    return sweepObjectStore(this.store, this.prefix, opts);
  }

  /** Run `fn` after every earlier manifest update of the same run directory (in this process). */
  serialize<T>(runDir: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#chains.get(runDir) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.then(
      () => {},
      () => {},
    );
    this.#chains.set(runDir, tail);
    tail.then(() => {
      if (this.#chains.get(runDir) === tail) this.#chains.delete(runDir);
    });
    return run;
  }

  /** The codec that reads a slice written with codec `id`: this provider's, or a built-in one of the codec registry. */
  codecById(id: string, where: string): RecordCodec {
    const codec = id === this.codec.id ? this.codec : builtinCodec(id);
    if (codec) return codec;
    throw new IngestError(
      'staging_failed',
      `${where} was written with codec ${JSON.stringify(id)}, but this provider is configured with ${JSON.stringify(this.codec.id)}`,
      { retryable: false, details: { codec: id } },
    );
  }
}

function assertSameSession(manifest: StagingManifest, ref: ObjectStoreSessionRef): void {
  const m = manifest.ref;
  const diffs: string[] = [];
  for (const k of ['runId', 'workspaceId', 'endpointId', 'unitId', 'runDir'] as const) {
    if (m[k] !== ref[k]) diffs.push(`${k} ${JSON.stringify(m[k])} ≠ ${JSON.stringify(ref[k])}`);
  }
  if (diffs.length > 0) {
    throw new IngestError(
      'staging_corrupt',
      `Staging manifest of ${ref.sessionId} disagrees with the session (${diffs.join('; ')})`,
      { details: { sessionId: ref.sessionId, runId: ref.runId, issues: diffs } },
    );
  }
}

/** One run's session on an object store. Created by {@link ObjectStoreStagingProvider}. */
class ObjectStoreStagingSession implements StagingSession {
  readonly id: string;
  readonly ref: ObjectStoreSessionRef;
  readonly runDir: string;
  readonly store: ObjectStore;
  readonly codec: RecordCodec;
  readonly #provider: ObjectStoreStagingProvider;
  readonly #signal: AbortSignal | undefined;
  readonly #writers = new Set<ObjectStoreSliceWriter>();
  #nextIndex: number;
  #sealed: boolean;
  #closed = false;
  /** Fencing token this session was claimed with (`fence()`); `undefined`: not fenced. */
  #token: number | undefined;

  constructor(
    provider: ObjectStoreStagingProvider,
    ref: ObjectStoreSessionRef,
    manifest: StagingManifest,
    signal?: AbortSignal,
  ) {
    this.#provider = provider;
    this.ref = ref;
    this.id = ref.sessionId;
    this.runDir = ref.runDir;
    this.store = provider.store;
    this.codec = provider.codec;
    this.#signal = signal;
    this.#nextIndex = manifest.slices.reduce((max, s) => Math.max(max, s.index + 1), 0);
    this.#sealed = manifest.sealedAt !== undefined;
  }

  get sessionId(): string {
    return this.id;
  }

  writer(opts: WriterOptions = {}): RecordWriter {
    this.assertWritable('open a writer');
    const slice = opts.slice ?? this.#nextIndex;
    if (!Number.isSafeInteger(slice) || slice < 0) {
      throw new IngestError(
        'config_invalid',
        `Expected \`slice\` to be a non-negative integer, got ${String(opts.slice)}`,
        {
          details: { issues: ['slice: must be a non-negative integer'] },
        },
      );
    }
    for (const w of this.#writers) {
      if (w.index === slice) {
        throw new IngestError(
          'staging_failed',
          `Slice ${slice} of staging session ${this.id} already has an open writer`,
          {
            retryable: false,
            details: { sessionId: this.id, slice },
          },
        );
      }
    }
    this.#nextIndex = Math.max(this.#nextIndex, slice + 1);
    const signal = this.#combine(opts.signal);
    const writer = new ObjectStoreSliceWriter(this, slice, sliceKey(this.runDir, slice, this.codec.extension), {
      schema: opts.schema,
      signal,
    });
    this.#writers.add(writer);
    return writer;
  }

  reader(opts: { slice?: number; signal?: AbortSignal } = {}): RecordReader {
    this.#assertOpen('open a reader');
    return objectStoreReader(this, { ...opts, signal: this.#combine(opts.signal) });
  }

  /** Presence, size and sha256 of every slice and no stranger slice objects, without decoding. @throws IngestError `staging_corrupt` */
  async verify(opts: { signal?: AbortSignal } = {}): Promise<void> {
    this.#assertOpen('verify');
    await verifySession(this, this.#combine(opts.signal));
  }

  async handles(): Promise<StagingHandle[]> {
    const manifest = await this.loadManifest();
    return manifest.slices.map((s) => this.#handleOf(s));
  }

  #handleOf(s: StagingManifestSlice): StagingHandle {
    return {
      bucket: this.store.bucket,
      key: s.key,
      contentType: s.contentType,
      metadata: {
        slice: String(s.index),
        rows: String(s.rows),
        bytes: String(s.bytes),
        sha256: s.sha256,
        codec: s.codec,
      },
    };
  }

  async describe(): Promise<SessionDescription> {
    const manifest = await this.loadManifest();
    const [success, landed, abandoned] = await Promise.all([
      this.#head(`${this.runDir}/${SUCCESS_NAME}`),
      this.#head(`${this.runDir}/${LANDED_NAME}`),
      this.#head(`${this.runDir}/${ABANDONED_NAME}`),
    ]);
    const slices = manifest.slices.map((s) => ({
      index: s.index,
      rows: s.rows,
      bytes: s.bytes,
      sha256: s.sha256,
      codec: s.codec,
      handle: this.#handleOf(s),
    }));
    return {
      ref: this.ref,
      sealed: success,
      landed,
      abandoned,
      slices,
      ...(manifest.schema ? { schema: manifest.schema as RecordSchema } : {}),
      rows: slices.reduce((n, s) => n + s.rows, 0),
      bytes: slices.reduce((n, s) => n + s.bytes, 0),
    };
  }

  /**
   * Record this holder's fencing token in the manifest; manifest changes through a session claimed with a lower
   * token are refused from now on.
   * @throws IngestError `lease_lost` when the session was claimed with a higher token
   */
  async fence(token: number): Promise<void> {
    this.#assertOpen('claim');
    this.#token = token;
    await this.#provider.serialize(this.runDir, async () => {
      const manifest = await this.loadManifest();
      this.#checkFence(manifest, 'claim');
      if (manifest.fence === token) return;
      manifest.fence = token;
      manifest.updatedAt = new Date().toISOString();
      await writeManifest(this.store, `${this.runDir}/${MANIFEST_NAME}`, manifest);
    });
  }

  async seal(opts: SealOptions = {}): Promise<void> {
    this.#assertOpen('seal');
    const open = [...this.#writers].filter((w) => w.active).map((w) => w.index);
    if (open.length > 0) {
      throw new IngestError(
        'staging_failed',
        `Cannot seal staging session ${this.id}: writers of slices ${open.join(', ')} are still open (close or abort them first)`,
        { retryable: false, details: { sessionId: this.id, slices: open } },
      );
    }
    await this.#provider.serialize(this.runDir, async () => {
      const manifest = await this.loadManifest();
      this.#checkFence(manifest, 'seal');
      if (opts.expectedSlices) {
        // Never seal (or delete "orphans") when the manifest is not the plan: another writer changed it.
        const have = manifest.slices.map((s) => s.index).sort((a, b) => a - b);
        const want = [...opts.expectedSlices].sort((a, b) => a - b);
        if (have.length !== want.length || have.some((v, i) => v !== want[i])) {
          throw new IngestError(
            'staging_conflict',
            `Cannot seal staging session ${this.id}: its manifest lists slices [${have.join(', ')}], expected [${want.join(', ')}]`,
            { retryable: true, details: { sessionId: this.id, have, want } },
          );
        }
      }
      // Objects of writers that crashed before recording their slice would read as extra slices: drop them.
      const known = new Set(manifest.slices.map((s) => s.key));
      const orphans: string[] = [];
      for await (const info of this.store.list(`${this.runDir}/`)) {
        const name = info.key.slice(this.runDir.length + 1);
        if (!name.includes('/') && parseSliceName(name) !== undefined && !known.has(info.key)) orphans.push(info.key);
      }
      if (orphans.length > 0) await this.#delete(orphans);
      const now = new Date().toISOString();
      manifest.sealedAt ??= now;
      manifest.updatedAt = now;
      this.#stampFence(manifest);
      await writeManifest(this.store, `${this.runDir}/${MANIFEST_NAME}`, manifest);
      const rows = manifest.slices.reduce((n, s) => n + s.rows, 0);
      await this.#putMarker(SUCCESS_NAME, { sealedAt: manifest.sealedAt, slices: manifest.slices.length, rows });
      this.#sealed = true;
    });
  }

  async markLanded(): Promise<void> {
    this.#assertOpen('mark landed');
    await this.#putMarker(LANDED_NAME, { landedAt: new Date().toISOString() });
  }

  async markAbandoned(): Promise<void> {
    this.#assertOpen('mark abandoned');
    await this.#putMarker(ABANDONED_NAME, { abandonedAt: new Date().toISOString() });
  }

  async destroy(): Promise<void> {
    for (const w of this.#writers) await w.abort();
    await this.#provider.serialize(this.runDir, async () => {
      if (this.#token !== undefined) {
        const manifest = await readManifest(this.store, `${this.runDir}/${MANIFEST_NAME}`).catch(() => undefined);
        if (manifest) this.#checkFence(manifest, 'destroy');
      }
      const keys: string[] = [];
      try {
        for await (const info of this.store.list(`${this.runDir}/`)) keys.push(info.key);
      } catch (err) {
        throw IngestError.wrap(err, 'staging_failed', `Could not list staging session ${this.id}`, {
          sessionId: this.id,
        });
      }
      // The manifest goes last, so a destroy cut short still leaves a session sweep can find.
      keys.sort((a, b) => Number(a.endsWith(`/${MANIFEST_NAME}`)) - Number(b.endsWith(`/${MANIFEST_NAME}`)));
      await this.#delete(keys);
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(
      [...this.#writers].map((w) => w.abort(new IngestError('aborted', `Staging session ${this.id} was closed`))),
    );
  }

  // --- used by writers and readers ---------------------------------------------------------------------

  assertWritable(what: string): void {
    this.#assertOpen(what);
    if (this.#sealed) {
      throw new IngestError('staging_failed', `Cannot ${what}: staging session ${this.id} is sealed`, {
        retryable: false,
        details: { sessionId: this.id },
      });
    }
  }

  release(writer: ObjectStoreSliceWriter): void {
    this.#writers.delete(writer);
  }

  recordSlice(entry: StagingManifestSlice): Promise<void> {
    return this.#provider.serialize(this.runDir, async () => {
      const manifest = await this.loadManifest();
      // A holder paused past its lease must not rewrite the manifest (its object may be the new holder's too).
      this.#checkFence(manifest, `finish slice ${entry.index}`);
      if (manifest.sealedAt !== undefined) {
        this.#sealed = true;
        if (!manifest.slices.some((s) => s.index === entry.index)) await this.#delete([entry.key]).catch(() => {});
        throw new IngestError(
          'staging_failed',
          `Cannot finish slice ${entry.index}: staging session ${this.id} was sealed meanwhile`,
          { retryable: false, details: { sessionId: this.id, slice: entry.index } },
        );
      }
      const previous = manifest.slices.find((s) => s.index === entry.index);
      manifest.slices = manifest.slices.filter((s) => s.index !== entry.index);
      manifest.slices.push(entry);
      if (!manifest.schema && entry.schema) manifest.schema = entry.schema;
      manifest.updatedAt = new Date().toISOString();
      this.#stampFence(manifest);
      await writeManifest(this.store, `${this.runDir}/${MANIFEST_NAME}`, manifest);
      if (previous && previous.key !== entry.key) await this.#delete([previous.key]);
    });
  }

  async loadManifest(signal?: AbortSignal): Promise<StagingManifest> {
    const manifest = await readManifest(this.store, `${this.runDir}/${MANIFEST_NAME}`, signal);
    if (!manifest) {
      throw new IngestError(
        'staging_corrupt',
        `Staging session ${this.id} (run ${this.ref.runId}) has lost its ${MANIFEST_NAME}`,
        {
          details: { sessionId: this.id, runId: this.ref.runId },
        },
      );
    }
    assertSameSession(manifest, this.ref);
    return manifest;
  }

  codecFor(slice: StagingManifestSlice): RecordCodec {
    return this.#provider.codecById(slice.codec, `Slice ${slice.index} of staging session ${this.id}`);
  }

  // --- internals ------------------------------------------------------------------------------------------

  /** Refuse when a holder with a higher token claimed the session. @throws IngestError `lease_lost` */
  #checkFence(manifest: StagingManifest, what: string): void {
    if (this.#token === undefined || manifest.fence === undefined || manifest.fence <= this.#token) return;
    throw new IngestError(
      'lease_lost',
      `Cannot ${what}: staging session ${this.id} (run ${this.ref.runId}) was claimed by a newer lease holder (token ${manifest.fence} > ${this.#token}); this writer is fenced off`,
      { retryable: true, details: { sessionId: this.id, token: this.#token, fence: manifest.fence } },
    );
  }

  /** Keep the highest claim in every manifest this session writes (a racing stale write cannot lower it for long). */
  #stampFence(manifest: StagingManifest): void {
    if (this.#token !== undefined && (manifest.fence === undefined || manifest.fence < this.#token)) {
      manifest.fence = this.#token;
    }
  }

  async #putMarker(name: string, body: Record<string, unknown>): Promise<void> {
    try {
      await this.store.put(`${this.runDir}/${name}`, Buffer.from(`${JSON.stringify(body)}\n`, 'utf8'), {
        contentType: 'application/json',
      });
    } catch (err) {
      throw IngestError.wrap(err, 'staging_failed', `Could not write ${name} of staging session ${this.id}`, {
        sessionId: this.id,
      });
    }
  }

  async #head(key: string): Promise<boolean> {
    try {
      return (await this.store.head(key)) !== undefined;
    } catch (err) {
      throw IngestError.wrap(err, 'staging_failed', `Could not read ${key}`, { sessionId: this.id });
    }
  }

  async #delete(keys: string[]): Promise<void> {
    try {
      for (let i = 0; i < keys.length; i += 1000) await this.store.delete(keys.slice(i, i + 1000));
    } catch (err) {
      throw IngestError.wrap(err, 'staging_failed', `Could not delete objects of staging session ${this.id}`, {
        sessionId: this.id,
      });
    }
  }

  /** The caller's signal together with the one of the context that allocated the session. */
  #combine(signal: AbortSignal | undefined): AbortSignal | undefined {
    return signal && this.#signal ? AbortSignal.any([signal, this.#signal]) : (signal ?? this.#signal);
  }

  #assertOpen(what: string): void {
    if (this.#closed) {
      throw new IngestError('staging_failed', `Cannot ${what}: staging session ${this.id} is already closed`, {
        retryable: false,
        details: { sessionId: this.id },
      });
    }
  }
}
