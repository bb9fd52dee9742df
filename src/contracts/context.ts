import type { ResolvedSchemaContract, RowFilter } from '../schema/schema-contract.js';
import type { SchemaDiff } from '../schema/schema-diff.js';
import type { Json } from './values.js';

/**
 * A console- or pino-like logger. Every method takes a message and optional structured fields.
 * `console` satisfies it, and so does a pino logger: every entry point adapts one (fields merged pino-style).
 * @public
 */
export interface Logger {
  /** Detail for troubleshooting (retries, slice boundaries). */
  debug(message: string, fields?: Record<string, unknown>): void;
  /** Milestones of a run (started, resumed, committed). */
  info(message: string, fields?: Record<string, unknown>): void;
  /** Something went wrong and was handled (a retry, a fallback). */
  warn(message: string, fields?: Record<string, unknown>): void;
  /** A failure the run reports (with its code in `fields`). */
  error(message: string, fields?: Record<string, unknown>): void;
}

/** Fields carried by every {@link IngestionEvent}. @public */
export interface EventBase {
  /** ISO-8601 time the event was emitted. */
  at: string;
  runId: string;
  workspaceId: string;
  endpointId: string;
  unitId: string;
  sinkId?: string;
}

/** A run began (fresh or resumed). @public */
export interface RunStartedEvent extends EventBase {
  type: 'run.started';
  mode: 'full' | 'incremental';
  /** Checkpoint the run starts from (`null` for a first or full run). */
  checkpoint: Json | null;
  /** Estimated rows, when the source planner can tell. */
  estimatedRows?: number;
}

/** A run picked up state from an earlier attempt instead of starting from the source. @public */
export interface RunResumedEvent extends EventBase {
  type: 'run.resumed';
  /** Phase the earlier attempt reached. */
  phase: RunPhase;
  /** Slices already staged and kept. */
  slicesKept: number;
}

/** One slice is durably staged. @public */
export interface SliceStagedEvent extends EventBase {
  type: 'slice.staged';
  slice: number;
  rows: number;
  /** Total rows staged so far in this run. */
  rowsExported: number;
  slicesStaged: number;
  slicesPlanned?: number;
}

/** Rows are flowing from the source (emitted at most once per batch). @public */
export interface ExportProgressEvent extends EventBase {
  type: 'export.progress';
  slice: number;
  rowsExported: number;
  slicesStaged: number;
  slicesPlanned?: number;
  estimatedRows?: number;
}

/** Export finished: the session is sealed (`_SUCCESS`). @public */
export interface ExportCompletedEvent extends EventBase {
  type: 'export.completed';
  rowsExported: number;
  slices: number;
  bytesStaged: number;
}

/** Rows are flowing into the sink. @public */
export interface ImportProgressEvent extends EventBase {
  type: 'import.progress';
  rowsImported: number;
  /** Rows in the session, the denominator of a progress bar. */
  rowsTotal: number;
  slice?: number;
}

/** The checkpoint moved (after the sink returned). @public */
export interface CheckpointCommittedEvent extends EventBase {
  type: 'checkpoint.committed';
  checkpoint: Json | null;
  /** Version of the checkpoint entry in the KvStore. */
  version: number;
}

/** A retryable failure is being retried after a delay. @public */
export interface RetryScheduledEvent extends EventBase {
  type: 'retry.scheduled';
  phase: 'export' | 'import' | 'commit';
  slice?: number;
  attempt: number;
  delayMs: number;
  code: string;
}

/** The run finished. @public */
export interface RunCompletedEvent extends EventBase {
  type: 'run.completed';
  stats: RunStats;
  newCheckpoint: Json | null;
}

/** The run failed; the checkpoint is unchanged. @public */
export interface RunFailedEvent extends EventBase {
  type: 'run.failed';
  code: string;
  message: string;
  retryable: boolean;
}

/**
 * The unit's source schema differs from the one recorded in its schema history (docs/schema-evolution.md). Emitted
 * once per run, before anything is staged; `discarded` says what the schema contract leaves out.
 * @public
 */
export interface SchemaChangedEvent extends EventBase {
  type: 'schema.changed';
  /** Version of the recorded schema the run compared with. */
  fromVersion: number;
  /** Version the run records when it commits. */
  toVersion: number;
  /** Hash of the schema the run stages. */
  hash: string;
  diff: SchemaDiff;
  contract: ResolvedSchemaContract;
  discarded?: RowFilter;
}

/**
 * A sink changed its target to fit the staged schema: columns added, types widened, NOT NULL dropped, and columns
 * the staged schema no longer has (NULL in every row written from now on).
 * @public
 */
export interface SchemaEvolvedEvent extends EventBase {
  type: 'schema.evolved';
  /** The target, as the sink names it. */
  target: string;
  added: string[];
  widened: Array<{ name: string; from: string; to: string }>;
  /** Columns whose NOT NULL was dropped. */
  nullable: string[];
  /** Target columns absent from the staged schema: NULL in the rows this import writes. */
  absent: string[];
}

/**
 * A source reports a condition that needs an operator's attention but does not fail the run — a replication slot
 * retaining WAL past its threshold, a consumer falling behind. A source emits it through
 * {@link IngestionContext.emit}; the pipeline fills in the time and ids and delivers it to `onEvent` (the CLI's
 * `--json` prints it). The same warning is also logged at `warn` level by the source.
 * @public
 */
export interface SourceWarningEvent extends EventBase {
  type: 'source.warning';
  /** Stable, machine-readable reason, `<area>.<condition>` (e.g. `cdc.retained_wal`); see the source's docs. */
  code: string;
  /** What is wrong and what to do, for a human. */
  message: string;
  /** The figures behind the warning (e.g. `slot`, `retainedBytes`, `thresholdBytes`). */
  details?: Record<string, Json>;
}

/**
 * Typed progress events, delivered to `onEvent` and {@link IngestionContext.emit}.
 * @public
 */
export type IngestionEvent =
  | RunStartedEvent
  | RunResumedEvent
  | SliceStagedEvent
  | ExportProgressEvent
  | ExportCompletedEvent
  | ImportProgressEvent
  | CheckpointCommittedEvent
  | RetryScheduledEvent
  | RunCompletedEvent
  | RunFailedEvent
  | SchemaChangedEvent
  | SchemaEvolvedEvent
  | SourceWarningEvent;

/** Event type names. @public */
export type IngestionEventType = IngestionEvent['type'];

/**
 * Phases a run moves through; kept in the run state at `<checkpoint key>::run`.
 * `exporting` → `exported` (session sealed) → `importing` → `imported` (sink returned) → `committed`; a run whose
 * import overlaps its export (`policy.overlap`, docs/decisions/0018-overlapped-import.md) goes `exporting` →
 * `streaming` (the sink may hold some slices while later ones export) → `imported`.
 * An incremental run that found nothing new goes from `exporting` straight to `committed` (nothing staged,
 * checkpoint untouched); `abandonRun()` moves a pending run to `abandoned` (the checkpoint stays where it was).
 * The allowed transitions are listed in `src/pipeline/run-policy.ts` (docs/architecture.md).
 * @public
 */
export type RunPhase = 'exporting' | 'streaming' | 'exported' | 'importing' | 'imported' | 'committed' | 'abandoned';

/** Counters of one run. @public */
export interface RunStats {
  rowsExported: number;
  /**
   * Rows the source produced that were refused (over `policy.maxRowBytes`) and handed to the dead-letter sink
   * instead of staged; only with `policy.onRejectedRow: 'dead-letter'`. Absent when none were.
   */
  rowsRejected?: number;
  rowsImported: number;
  slices: number;
  bytesStaged: number;
  /** ISO-8601. */
  startedAt: string;
  /** ISO-8601. */
  completedAt: string;
}

/**
 * Passed to every endpoint call: who is running, for which unit, and how to report and stop.
 * @public
 */
export interface IngestionContext {
  workspaceId: string;
  endpointId: string;
  unitId: string;
  sinkId?: string;
  /** Stable across retries and resumes of one run. */
  runId: string;
  vendor: string;
  /** Aborts the run; endpoints stop within one batch. */
  signal: AbortSignal;
  /**
   * The unit lease's fencing token (the lease entry's version when this worker acquired it), set by the pipeline.
   * A staging provider writes it into its manifest (`StagingSession.fence()`); writes under a lower token are
   * refused with `lease_lost`. Absent outside a leased run.
   */
  fencingToken?: number;
  logger: Logger;
  /** Emit a progress event (the pipeline fills in `at` and ids when missing). */
  emit(event: IngestionEvent): void;
}
