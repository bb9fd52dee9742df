import type { SchemaDiff } from '../schema/schema-diff.js';
import type { IngestionContext } from './context.js';
import type { EndpointDescriptor } from './endpoint.js';
import type { RecordReader, StagingHandle } from './staging.js';
import type { Json, RecordSchema } from './values.js';

/** How imported rows combine with what the target holds. @public */
export type Disposition = 'append' | 'replace' | 'merge';

/**
 * One staged slice handed to a sink, for sinks that commit per slice.
 * @public
 */
export interface ImportSlice {
  index: number;
  /** Rows recorded in the manifest for this slice. */
  rows: number;
  reader: RecordReader;
  handle?: StagingHandle;
  /** Id of the codec the slice was staged with, when the staging provider records one (e.g. `'pg-copy'`). */
  codec?: string;
}

/**
 * What a sink imports. `ctx.runId` plus the slice indices identify the data exactly: a sink that records
 * `(runId, slice)` with its rows makes a re-import after a crash a no-op.
 * @public
 */
export interface ImportRequest {
  unitId: string;
  /** Every slice in order — enough for simple sinks. */
  reader: RecordReader;
  /** Per-slice readers, for per-slice commits. */
  slices: ImportSlice[];
  handles: StagingHandle[];
  schema?: RecordSchema;
  /**
   * How `schema` differs from the unit's recorded schema (absent when it does not, or none is recorded): a sink
   * that keeps a typed target widens the columns listed in `widened` and relaxes those in `nullabilityChanged`
   * (docs/schema-evolution.md).
   */
  schemaDiff?: SchemaDiff;
  disposition: Disposition;
  primaryKey?: string[];
}

/**
 * What a sink that streams slices imports ({@link SinkEndpoint.importSlices}): the request of
 * {@link SinkEndpoint.import} without the whole-session reader and handles, its slices arriving while the export is
 * still staging later ones (docs/decisions/0018-overlapped-import.md).
 * @public
 */
export interface ImportSlicesRequest extends Omit<ImportRequest, 'reader' | 'slices' | 'handles'> {
  /**
   * The staged slices, each as soon as it is finished, verified by its reader while it is read. For `merge` and
   * `replace` they arrive in index order; for `append` in the order they were staged. The iteration ends once the
   * session is sealed, or throws when the export failed (the sink then rolls back what it has not committed).
   */
  slices: AsyncIterable<ImportSlice>;
  /** The indices of every slice the run will hand over, in the order they arrive for `merge` and `replace`. */
  sliceIndices: number[];
  /** Rows the run expects to import, when known (for progress events). */
  rowsTotal?: number;
}

/** What a sink reports. @public */
export interface ImportResult {
  rowsImported: number;
  provenance?: Json;
}

/**
 * A sink connector. `import` must be idempotent per `(ctx.runId, slice index)` to give effectively-once delivery.
 * @public
 */
export interface SinkEndpoint {
  readonly descriptor: EndpointDescriptor;
  /**
   * Import every staged row of `req` durably; idempotent per `(ctx.runId, slice index)`. The checkpoint moves only
   * after this resolves.
   * @throws IngestError `sink_failed` (retryable or not), `row_rejected`, `unsupported`
   */
  import(req: ImportRequest, ctx: IngestionContext): Promise<ImportResult>;
  /**
   * Optional: import slices as they are staged, so a run overlaps its export and its import (ADR 0018). Same
   * guarantees as {@link SinkEndpoint.import} — idempotent per `(ctx.runId, slice index)`, nothing of a slice
   * committed unless its reader verified it to the end. `runUnit` uses it for a planned export when
   * `policy.overlap` is not `false`; a resumed or imported-alone run still calls `import`.
   * @throws IngestError as {@link SinkEndpoint.import}, or the error the slice iteration threw
   */
  importSlices?(req: ImportSlicesRequest, ctx: IngestionContext): Promise<ImportResult>;
  /** Release connections. Optional. */
  close?(): Promise<void>;
  /**
   * Forget what the sink's ledger holds of these runs of a unit (`pruneState` calls it before it deletes their
   * receipts, so a run id is never reusable while the ledger would still skip its slices). Optional: a sink without a
   * ledger has nothing to forget.
   */
  forgetRuns?(req: { unitId: string; runIds: string[] }): Promise<void>;
}
