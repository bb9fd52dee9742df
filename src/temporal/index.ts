/**
 * `@nucleus/ingestion/temporal` — Temporal activities around the ingestion pipeline.
 * Needs the optional peer dependency `@temporalio/activity`.
 * @packageDocumentation
 */

export type { RunProgress } from '../telemetry/progress.js';
export type {
  EndpointConfigRef,
  EndpointResolver,
  ExportActivityResult,
  IngestionActivities,
  IngestionActivitiesOptions,
  IngestionActivityInput,
  IngestionActivityResult,
} from './activity-types.js';
export { createIngestionActivities } from './create-ingestion-activities.js';
export type { IngestionHeartbeatDetails } from './heartbeat.js';
export { temporalRunId } from './run-id.js';
export { NON_RETRYABLE_ERROR_TYPES, toActivityFailure } from './to-failure.js';
