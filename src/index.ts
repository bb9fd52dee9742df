/**
 * `@nucleus/ingestion` — sources export rows into staged slices, sinks import them, and the checkpoint moves
 * only after the sink has durably taken every row before it.
 *
 * The root entry loads no heavy dependency: S3, PostgreSQL, Arrow, Parquet and Temporal live in subpaths.
 * @packageDocumentation
 */

export { type BuiltinCodecId, type CodecSpec, resolveCodec } from './codecs/codec-registry.js';
export { type NdjsonCodecOptions, ndjsonCodec } from './codecs/ndjson-codec.js';
export { type NdjsonGzipCodecOptions, ndjsonGzipCodec } from './codecs/ndjson-gzip-codec.js';
// contracts
export type {
  Capability,
  CheckpointCommittedEvent,
  Disposition,
  EncodedBatch,
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
  ImportSlicesRequest,
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
  RowCounter,
  RunCompletedEvent,
  RunFailedEvent,
  RunPhase,
  RunResumedEvent,
  RunStartedEvent,
  RunStats,
  SchemaChangedEvent,
  SchemaEvolvedEvent,
  SessionDescription,
  SinkEndpoint,
  SliceSpec,
  SliceStagedEvent,
  SourceBatch,
  SourceEndpoint,
  SourceRejection,
  SourceWarningEvent,
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
export type { SealOptions } from './contracts/staging.js';
// values (issue 10: exact timestamps and JSON text)
export type { LogicalType, NativeType } from './contracts/values.js';
// errors
export {
  ERROR_CODES,
  IngestError,
  type IngestErrorCode,
  type IngestErrorOptions,
  redact,
  registerSecret,
} from './errors/index.js';
// retries (issue 25): which foreign errors a retry can cure
export { isTransientError } from './errors/transient.js';
// memory implementations
export { MemoryKvStore } from './memory/memory-kv-store.js';
// --- exports appended by area (append with `echo ... >> src/index.ts`; never rewrite this file) ---
export { MemoryObjectStore, type MemoryObjectStoreOptions } from './memory/memory-object-store.js';
// pipeline: run identity, abandon, dead letters, fencing (pipeline engineer)
export { type AbandonRunOptions, type AbandonRunResult, abandonRun } from './pipeline/abandon-run.js';
export { type CheckpointKeyParts, checkpointKey, schemaHistoryKey } from './pipeline/keys.js';
// pipeline
export type {
  BaseRunOptions,
  DeadLetterSink,
  ExportOptions,
  ExportResult,
  ImportOptions,
  RejectedRow,
  ResolvedRunPolicy,
  RunPolicy,
  RunUnitOptions,
  RunUnitResult,
  UnitRef,
} from './pipeline/options.js';
// retention (issue 25): expire receipts and the sinks' ledger rows together
export { type PruneStateOptions, type PruneStateReport, pruneState } from './pipeline/prune-state.js';
export { exportUnit, importUnit, runUnit } from './pipeline/run-unit.js';
export { readSchemaHistory, type SchemaHistory, type SchemaVersion } from './pipeline/schema-history.js';
export { type SweepStagingOptions, sweepStaging } from './pipeline/sweep.js';
// registry
export {
  type EndpointFactory,
  EndpointRegistry,
  type EndpointRequest,
  type EndpointTemplate,
} from './registry/endpoint-registry.js';
export {
  applyContract,
  type ContractDecision,
  type ContractViolation,
  filterRows,
  filtersRows,
  type ResolvedSchemaContract,
  type RowFilter,
  resolveSchemaContract,
  type SchemaContract,
  type SchemaContractMode,
} from './schema/schema-contract.js';
export {
  type ColumnNullabilityChange,
  type ColumnTypeChange,
  diffSchemas,
  hasChanges,
  type SchemaDiff,
  sqlTypeChange,
  type TypeChangeKind,
  typeText,
} from './schema/schema-diff.js';
export {
  type ObjectStorePointer,
  type ObjectStorePointerHistoryChunk,
  type ObjectStorePointerRun,
  ObjectStoreSink,
  type ObjectStoreSinkConfig,
  type ObjectStoreSinkFormat,
  type ObjectStoreSinkOptions,
  type ObjectStoreSinkParquetOptions,
  objectStoreSinkConfigSchema,
  objectStoreSinkDescriptor,
} from './sinks/object-store-sink.js';
export { MemoryStagingProvider } from './staging/memory-staging-provider.js';
export {
  ObjectStoreStagingProvider,
  type ObjectStoreStagingProviderOptions,
} from './staging/object-store-staging-provider.js';
export { newRunId } from './util/ids.js';
export { noopLogger } from './util/logger.js';
// utilities
export { assertValidObjectKey, objectKeyProblem } from './util/object-key.js';
export { DEFAULT_RETRY, type RetryPolicy } from './util/retry.js';
export { JsonText } from './values/json-text.js';
export { Timestamp, type TimestampOptions } from './values/timestamp.js';
