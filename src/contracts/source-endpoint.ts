import type { IngestionContext } from './context.js';
import type { EndpointDescriptor, UnitMetadata } from './endpoint.js';
import type { Json, RecordSchema, Row } from './values.js';

/**
 * What to read.
 * @public
 */
export interface ReadRequest<C> {
  unitId: string;
  /** `full` reads everything (and may still report a checkpoint); `incremental` reads strictly after `checkpoint`. */
  mode: 'full' | 'incremental';
  /** Where the previous committed run ended; `null` on the first run. */
  checkpoint: C | null;
  /** Sizing hints from the run policy, for planners. */
  hints?: ReadHints;
}

/** Sizing hints passed to `plan()` and `read()`. @public */
export interface ReadHints {
  /** Rows per batch the pipeline would like. */
  chunkSize?: number;
  /** Upper bound of rows per slice the pipeline will cut. */
  sliceMaxRows?: number;
  /** How many slices the pipeline exports concurrently. */
  exportConcurrency?: number;
  /**
   * `policy.maxRowBytes`, given to {@link SourceEndpoint.readEncoded}: a source that stages encoded bytes of a codec
   * whose rows are not lines (Arrow) refuses a row whose own text is longer with `row_rejected`. (The pipeline checks
   * rows it receives, and the lines of line codecs, itself.)
   */
  maxRowBytes?: number;
  /**
   * Rows per record batch of the staging codec ({@link RecordCodec.batchRows}, e.g. Arrow's `batchRows`), given to
   * {@link SourceEndpoint.readEncoded}: a source that writes that codec's bytes itself cuts its batches at this count.
   */
  batchRows?: number;
}

/**
 * A batch of rows from a source.
 * @public
 */
export interface SourceBatch<C> {
  rows: Row[];
  /** Resume position after these rows (for incremental sources). */
  checkpoint?: C;
  /** Schema of the rows, if the source knows it (the first one reported wins). */
  schema?: RecordSchema;
  /**
   * Records of this batch's span that could not become rows (an undecodable payload, one over `maxRowBytes`): the
   * run fails with `row_rejected`, or — with `policy.onRejectedRow: 'dead-letter'` — hands them to the dead-letter
   * sink and goes on. The batch's `checkpoint` covers them either way.
   */
  rejected?: SourceRejection[];
}

/**
 * A source record that could not become a row ({@link SourceBatch.rejected}).
 * @public
 */
export interface SourceRejection {
  /** Why, naming the record's position. */
  reason: string;
  /** Where the source holds the record, e.g. `{ stream, subject, seq }` for JetStream. */
  position?: Json;
  /** The record's size, when the size was the reason. */
  bytes?: number;
}

/**
 * One planned slice; `bounds` are the planner's own JSON (e.g. a primary-key range).
 * @public
 */
export interface SliceSpec {
  index: number;
  bounds?: Json;
}

/**
 * The result of `plan()`: slices that may be exported concurrently, and the checkpoint that holds once all of them land.
 * @public
 */
export interface ExportPlan<C> {
  slices: SliceSpec[];
  checkpoint: C | null;
  schema?: RecordSchema;
  /** Estimated rows, for progress bars. */
  estimatedRows?: number;
}

/**
 * A source connector. One instance serves many units.
 *
 * @example
 * ```ts
 * import type { SourceEndpoint } from '@nucleus/ingestion';
 * const source: SourceEndpoint = {
 *   descriptor,
 *   async *read(req, ctx) { yield { rows: [{ id: 1 }], checkpoint: { id: 1 } }; },
 * };
 * ```
 * @public
 */
export interface SourceEndpoint<Checkpoint extends Json = Json> {
  readonly descriptor: EndpointDescriptor;
  /** `metadata.collect`: the units this source offers. */
  collectMetadata?(ctx: IngestionContext): Promise<UnitMetadata[]>;
  /** `metadata.preview`: a few rows of one unit. */
  preview?(
    req: { unitId: string; limit: number },
    ctx: IngestionContext,
  ): Promise<{ rows: Row[]; schema?: RecordSchema }>;
  /**
   * Check that this source has the unit, cheaply and without reading rows. The pipeline calls it before it
   * takes the lease or writes any state, so an unknown unit leaves nothing behind. Optional: without it the
   * pipeline looks the unit up in {@link SourceEndpoint.collectMetadata} (when the source has that), else it
   * does not check.
   * @throws IngestError `not_found` when the source has no such unit; other codes (e.g. a retryable
   * `source_failed` when the source cannot be reached) pass through
   */
  checkUnit?(unitId: string, ctx: IngestionContext): Promise<void>;
  /**
   * Optional planner: split the read into slices that can be exported concurrently. Resolves to `undefined` when this
   * read is not planned (the pipeline then streams it with `read`, unsliced), e.g. a change stream after its
   * planned snapshot.
   */
  plan?(req: ReadRequest<Checkpoint>, ctx: IngestionContext): Promise<ExportPlan<Checkpoint> | undefined>;
  /**
   * Optional: whether a plan recorded by an earlier call can still be exported. A source whose plans depend on
   * something only the planning instance holds (PostgreSQL CDC: an exported snapshot, which dies with the replication
   * connection that created it) answers `false` when it does not hold it; the resumed run then declares the plan
   * void: it empties the staging session and plans again. The pipeline asks before a resumed export goes on with a
   * recorded plan; a source with this hook never has its export overlapped with the import (`policy.overlap`,
   * docs/decisions/0018-overlapped-import.md), so no slice of a plan voided later reaches the sink.
   */
  planValid?(
    req: { unitId: string; slices: SliceSpec[]; checkpoint: Checkpoint | null },
    ctx: IngestionContext,
  ): Promise<boolean>;
  /** Stream rows in batches; with `slice`, only that planned slice. Must stop within a batch when `ctx.signal` aborts. */
  read(
    req: ReadRequest<Checkpoint> & { slice?: SliceSpec },
    ctx: IngestionContext,
  ): AsyncIterable<SourceBatch<Checkpoint>>;
  /**
   * Optional pass-through: read one planned slice as bytes already encoded with the staging codec `codec` (e.g.
   * `'pg-copy'`: PostgreSQL `COPY … TO STDOUT` text), staged unchanged — no row objects. Return `undefined` when this
   * request cannot be served that way (another codec, an unplanned slice); the pipeline then calls `read`. The
   * checkpoint of an encoded read is the plan's. Starts no I/O until iterated.
   */
  readEncoded?(
    codec: string,
    req: ReadRequest<Checkpoint> & { slice: SliceSpec },
    ctx: IngestionContext,
  ): AsyncIterable<EncodedBatch> | undefined;
  /**
   * Called by `runUnit` after a run committed: the sink took every slice **and** the checkpoint moved to
   * `checkpoint` (also after an incremental run that found nothing new, with the unchanged checkpoint, and when a
   * run that committed before a crash is landed). A source that holds a position upstream — a replication slot's
   * confirmed flush LSN, a stream consumer's acknowledgements — releases everything up to `checkpoint` here, and
   * never earlier, so a crash before this call re-reads from the upstream and the sink's ledger drops what it
   * already has.
   *
   * Best effort: the run has already committed, so an error here is logged as a warning and does not fail the run.
   * A source must therefore also release up to the stored checkpoint at the start of its next run
   * ({@link ReadRequest.checkpoint} is that checkpoint).
   */
  confirm?(req: { unitId: string; checkpoint: Checkpoint | null }, ctx: IngestionContext): Promise<void>;

  /** Release connections. Optional. */
  close?(): Promise<void>;
}

/**
 * Bytes of a pass-through read ({@link SourceEndpoint.readEncoded}): whole rows or any part of them, in order.
 * @public
 */
export interface EncodedBatch {
  bytes: Uint8Array;
  /** Schema of the rows, if the source knows it (the first one reported wins). */
  schema?: RecordSchema;
}
