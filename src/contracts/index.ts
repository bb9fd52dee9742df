export type {
  CheckpointCommittedEvent,
  EventBase,
  ExportCompletedEvent,
  ExportProgressEvent,
  ImportProgressEvent,
  IngestionContext,
  IngestionEvent,
  IngestionEventType,
  Logger,
  RetryScheduledEvent,
  RunCompletedEvent,
  RunFailedEvent,
  RunPhase,
  RunResumedEvent,
  RunStartedEvent,
  RunStats,
  SchemaChangedEvent,
  SchemaEvolvedEvent,
  SliceStagedEvent,
  SourceWarningEvent,
} from './context.js';
export type { Capability, EndpointDescriptor, UnitMetadata } from './endpoint.js';
export type { KvEntry, KvKey, KvPutOptions, KvStore } from './kv-store.js';
export type { ObjectInfo, ObjectStore, PutOptions } from './object-store.js';
export type {
  Disposition,
  ImportRequest,
  ImportResult,
  ImportSlice,
  ImportSlicesRequest,
  SinkEndpoint,
} from './sink-endpoint.js';
export type {
  EncodedBatch,
  ExportPlan,
  ReadHints,
  ReadRequest,
  SliceSpec,
  SourceBatch,
  SourceEndpoint,
  SourceRejection,
} from './source-endpoint.js';
export type {
  RecordCodec,
  RecordReader,
  RecordWriter,
  RowCounter,
  SessionDescription,
  StagedSlice,
  StagingHandle,
  StagingProvider,
  StagingSession,
  StagingSessionRef,
  SweepOptions,
  SweepReport,
  WriterOptions,
} from './staging.js';
export type { FieldSchema, FieldType, Json, LogicalType, NativeType, RecordSchema, Row, Value } from './values.js';
export { FIELD_TYPES } from './values.js';
