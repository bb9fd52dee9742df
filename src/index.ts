/**
 * `@nucleus/ingestion` — sources export rows into staged slices, sinks import them, and the checkpoint moves
 * only after the sink has durably taken every row before it.
 *
 * The root entry loads no heavy dependency: S3, PostgreSQL, Arrow, Parquet and Temporal live in subpaths.
 * @packageDocumentation
 */

// contracts
export type {
  Capability,
  CheckpointCommittedEvent,
  Disposition,
  EndpointDescriptor,
  EventBase,
  ExportCompletedEvent,
  ExportPlan,
  ExportProgressEvent,
  FieldSchema,
  FieldType,
  ImportProgressEvent,
  ImportRequest,
  ImportResult,
  ImportSlice,
  IngestionContext,
  IngestionEvent,
  IngestionEventType,
  Json,
  KvEntry,
  KvKey,
  KvPutOptions,
  KvStore,
  Logger,
  ObjectInfo,
  ObjectStore,
  PutOptions,
  ReadHints,
  ReadRequest,
  RecordCodec,
  RecordReader,
  RecordSchema,
  RecordWriter,
  RetryScheduledEvent,
  Row,
  RunCompletedEvent,
  RunFailedEvent,
  RunPhase,
  RunResumedEvent,
  RunStartedEvent,
  RunStats,
  SessionDescription,
  SinkEndpoint,
  SliceSpec,
  SliceStagedEvent,
  SourceBatch,
  SourceEndpoint,
  StagedSlice,
  StagingHandle,
  StagingProvider,
  StagingSession,
  StagingSessionRef,
  SweepOptions,
  SweepReport,
  UnitMetadata,
  Value,
  WriterOptions,
} from './contracts/index.js';
export { FIELD_TYPES } from './contracts/index.js';

// errors
export { ERROR_CODES, IngestError, type IngestErrorCode, type IngestErrorOptions, redact, registerSecret } from './errors/index.js';

// utilities
export { assertValidObjectKey, objectKeyProblem } from './util/object-key.js';
export { newRunId } from './util/ids.js';
export { noopLogger, toLogger } from './util/logger.js';
export { DEFAULT_RETRY, type RetryPolicy } from './util/retry.js';

// pipeline
export type {
  BaseRunOptions,
  ExportOptions,
  ExportResult,
  ImportOptions,
  ResolvedRunPolicy,
  RunPolicy,
  RunUnitOptions,
  RunUnitResult,
  UnitRef,
} from './pipeline/options.js';

// --- exports appended by area (append with `echo ... >> src/index.ts`; never rewrite this file) ---
export { MemoryObjectStore, type MemoryObjectStoreOptions } from './memory/memory-object-store.js';
