import type { IngestionContext } from './context.js';
import type { Json, RecordSchema, Row } from './values.js';

/**
 * The address of staged bytes. Workflows pass handles, never payloads.
 * @public
 */
export interface StagingHandle {
  bucket: string;
  key: string;
  contentType?: string;
  metadata?: Record<string, string>;
}

/**
 * JSON that reopens a session anywhere (another process, another worker).
 * `provider` is the {@link StagingProvider.id} that made it.
 * @public
 */
export interface StagingSessionRef {
  provider: string;
  sessionId: string;
  runId: string;
  workspaceId: string;
  endpointId: string;
  unitId: string;
  sinkId?: string;
  vendor?: string;
  [extra: string]: Json | undefined;
}

/** One finished slice of a session, as recorded in its manifest. @public */
export interface StagedSlice {
  index: number;
  rows: number;
  bytes: number;
  /** Hex sha256 of the slice object, where the provider computes one. */
  sha256?: string;
  codec?: string;
  handle?: StagingHandle;
}

/** What a session holds. @public */
export interface SessionDescription {
  ref: StagingSessionRef;
  /** `seal()` happened: `_SUCCESS` exists. */
  sealed: boolean;
  /** `markLanded()` happened: `_LANDED` exists. */
  landed: boolean;
  /** `markAbandoned()` happened (the run was abandoned; the sweep may delete the session). */
  abandoned?: boolean;
  /** Finished slices, by index. */
  slices: StagedSlice[];
  schema?: RecordSchema;
  rows: number;
  bytes: number;
}

/** Result of a TTL sweep. @public */
export interface SweepReport {
  sessionsScanned: number;
  sessionsDeleted: number;
  sessionsKept: number;
  objectsDeleted: number;
  deleted: StagingSessionRef[];
}

/** Options of {@link StagingProvider.sweep}. @public */
export interface SweepOptions {
  /** Landed (or abandoned) sessions older than this are deleted. */
  olderThanMs: number;
  /** Sessions never landed are deleted only past this age. @defaultValue `7 * olderThanMs` */
  abandonedAfterMs?: number;
  /** Veto: return `true` to keep a session (e.g. its lease is live). */
  keep?: (ref: StagingSessionRef) => boolean | Promise<boolean>;
  /** Stop early. */
  signal?: AbortSignal;
}

/**
 * Where staged rows live between export and import.
 * @public
 */
export interface StagingProvider {
  readonly id: string;
  /**
   * `true` when sessions live in this process only (`MemoryStagingProvider`): a run left pending by another process
   * cannot resume from them, so the next run discards it (drops it, or supersedes it when the sink may hold some of
   * its rows) instead of failing `not_found` for ever.
   */
  readonly processLocal?: boolean;
  /** A new session for `ctx.runId` (same run id, same location). */
  allocateSession(ctx: IngestionContext): Promise<StagingSession>;
  /** Reopen a session from its ref — resume on another process or worker. */
  openSession(ref: StagingSessionRef): Promise<StagingSession>;
  /** TTL cleanup. */
  sweep(opts: SweepOptions): Promise<SweepReport>;
}

/**
 * Options of {@link StagingSession.seal}.
 * @public
 */
export interface SealOptions {
  /**
   * The slice indices the session must hold, exactly (e.g. the planned slices). When the manifest lists other
   * slices (one missing, one extra — another writer changed it), `seal()` refuses with `staging_conflict`
   * (retryable) and deletes nothing.
   */
  expectedSlices?: readonly number[];
}

/** Options of {@link StagingSession.writer}. @public */
export interface WriterOptions {
  /** Slice index; writing an existing index replaces that slice. @defaultValue next free index */
  slice?: number;
  /** Schema of the rows, when known (required by columnar codecs, recorded in the manifest). */
  schema?: RecordSchema;
  signal?: AbortSignal;
}

/**
 * One run's staged data.
 * @public
 */
export interface StagingSession {
  readonly id: string;
  readonly ref: StagingSessionRef;
  /** A writer for one slice; the slice is finished (manifest entry written) when the writer closes. */
  writer(opts?: WriterOptions): RecordWriter;
  /** One slice, or all finished slices in index order. Verifies what it reads. */
  reader(opts?: { slice?: number; signal?: AbortSignal }): RecordReader;
  /** Handles of the finished slices, in index order. */
  handles(): Promise<StagingHandle[]>;
  /** What the session holds now (finished slices, markers). */
  describe(): Promise<SessionDescription>;
  /**
   * Check every finished slice against the manifest without decoding it: presence, size and checksum, and no
   * slice object the manifest does not list. The pipeline calls it before handing a session to a sink, so a
   * damaged session fails with `staging_corrupt` before the sink commits anything. Optional: without it, the
   * reader's own checks still keep the rows of a damaged slice from the sink.
   * @throws IngestError `staging_corrupt`
   */
  verify?(opts?: { signal?: AbortSignal }): Promise<void>;
  /**
   * Claim the session for a lease holder: record `token` (the unit lease's fencing token, see
   * `IngestionContext.fencingToken`) in the session, so that from now on every manifest change — a finished slice,
   * `seal()`, `destroy()` — made through a session opened with a lower token is refused with `lease_lost`.
   * A holder paused past its lease therefore cannot rewrite the manifest after the new holder took over.
   * Optional: without it a provider gives no fencing of its own (the pipeline still fences the checkpoint).
   * @throws IngestError `lease_lost` when the session was already claimed with a higher token
   */
  fence?(token: number): Promise<void>;
  /**
   * Export done: manifest + `_SUCCESS`; no more writers. With `expectedSlices`, the manifest must list exactly
   * those slices.
   * @throws IngestError `staging_conflict` (retryable) when the manifest disagrees with `expectedSlices`;
   * `lease_lost` when a holder with a higher fencing token claimed the session
   */
  seal(opts?: SealOptions): Promise<void>;
  /** Sink committed: `_LANDED`. */
  markLanded(): Promise<void>;
  /**
   * The run was abandoned (`abandonRun()`): mark the session so `sweep` deletes it like a landed one (after
   * `olderThanMs`, not `abandonedAfterMs`). Optional; idempotent.
   */
  markAbandoned?(): Promise<void>;
  /**
   * Delete every staged object of the session. Idempotent.
   * @throws IngestError `lease_lost` when a holder with a higher fencing token claimed the session
   */
  destroy(): Promise<void>;
  /** Releases resources, deletes nothing; idempotent. */
  close(): Promise<void>;
}

/**
 * Writes one slice. Not safe for concurrent `writeBatch` calls; `close()` finishes the slice.
 * @public
 */
export interface RecordWriter {
  /** Append rows to the slice (with backpressure: wait for it before writing the next batch). */
  writeBatch(batch: Iterable<Row> | AsyncIterable<Row>): Promise<void>;
  /** Finish the slice: flush, record it in the manifest. */
  close(): Promise<void>;
  /** Drop what was written; the slice is not recorded. Idempotent. */
  abort?(reason?: unknown): Promise<void>;
  /**
   * Optional pass-through: the id of the codec whose bytes {@link RecordWriter.writeEncoded} takes unchanged
   * (`undefined` when this writer cannot take encoded bytes). See docs/decisions/0006-postgres-pass-through-and-pipelining.md.
   */
  readonly encoding?: string;
  /**
   * Optional pass-through: the rows per record batch of the codec {@link RecordWriter.encoding}
   * ({@link RecordCodec.batchRows}), for a source that writes that codec's bytes itself (given to it as
   * {@link ReadHints.batchRows}). `undefined` when the codec does not group rows.
   */
  readonly encodingBatchRows?: number;
  /**
   * Optional pass-through: whether each row of the codec {@link RecordWriter.encoding} is one line
   * ({@link RecordCodec.rowsAreLines}).
   */
  readonly encodingRowsAreLines?: boolean;
  /**
   * Optional pass-through: append bytes already encoded with the codec {@link RecordWriter.encoding} (e.g.
   * PostgreSQL `COPY … TO STDOUT` text for `pg-copy`), staged unchanged. The writer counts the rows with the codec's
   * {@link RecordCodec.rowCounter}, hashes and sizes the bytes as it does for rows. A writer takes either rows or
   * encoded bytes, never both. `schema` (first call) is recorded in the manifest when the writer was opened without one.
   * @throws IngestError `staging_failed` (mixing rows and bytes, a codec without a row counter, bytes that do not
   * end with a whole row, upload failure), `aborted`.
   */
  writeEncoded?(chunk: Uint8Array, opts?: { schema?: RecordSchema }): Promise<void>;
}

/**
 * Counts the rows in a codec's bytes without decoding them: `push` every chunk in order, then `end()`.
 * @public
 */
export interface RowCounter {
  /** Feed the next chunk of the object, in order. */
  push(chunk: Uint8Array): void;
  /** Rows counted. @throws when the bytes end inside a row. */
  end(): number;
}

/**
 * Reads rows back in chunks of at most `chunkSize` rows.
 * @public
 */
export interface RecordReader {
  /** The rows in order, in arrays of at most `chunkSize` rows; verifies integrity while reading. */
  iterBatches(chunkSize: number): AsyncIterable<Row[]>;
  /**
   * Optional pass-through (one-slice readers): the slice's bytes exactly as staged, in its codec's encoding (see
   * `ImportSlice.codec`), verified like `iterBatches` — size before reading, sha256, byte and row counts while
   * reading — with the last chunk held back until the checks pass, so a consumer never receives the end of a
   * damaged slice (`staging_corrupt` instead).
   */
  iterEncoded?(): AsyncIterable<Uint8Array>;
}

/**
 * How rows become bytes in an object. Codecs are independent of where their bytes go.
 * @public
 */
export interface RecordCodec {
  /** `'ndjson'`, `'ndjson.gz'`, `'arrow'`. */
  id: string;
  contentType: string;
  /** `'.ndjson'` */
  extension: string;
  /** Rows to bytes, streaming (`schema` when the format needs or can use one). */
  encode(batches: AsyncIterable<Row[]>, schema?: RecordSchema): AsyncIterable<Uint8Array>;
  /** Bytes back to exactly the rows that were encoded, streaming. */
  decode(bytes: AsyncIterable<Uint8Array>, schema?: RecordSchema): AsyncIterable<Row[]>;
  /**
   * Optional: a counter of the rows in this codec's bytes that does not decode them (e.g. one newline per row).
   * Codecs with one can take encoded bytes unchanged ({@link RecordWriter.writeEncoded}) and are verified without decoding.
   */
  rowCounter?(): RowCounter;
  /**
   * Optional: `true` when every row of this codec's bytes is one newline-terminated line (NDJSON, PostgreSQL COPY
   * text, MySQL LOAD DATA text). The pipeline then applies `policy.maxRowBytes` to the encoded lines of a
   * pass-through export; for other codecs the source checks it on its own text.
   * @defaultValue `false`
   */
  readonly rowsAreLines?: boolean;
  /**
   * Optional: rows per record batch, for codecs that group rows (Arrow's `batchRows`). A source that writes this
   * codec's bytes itself ({@link SourceEndpoint.readEncoded}) cuts its batches at the same count.
   */
  readonly batchRows?: number;
}
