/**
 * `@nucleus/ingestion/temporal` — Temporal activities around the ingestion pipeline.
 * Needs the optional peer dependency `@temporalio/activity`.
 * @packageDocumentation
 */

export type { EndpointConfigRef, EndpointResolver } from '../host/endpoints.js';
export type { IngestionHeartbeatDetails } from '../host/heartbeat.js';
export { temporalRunId } from '../host/run-id.js';
export type { RunProgress } from '../telemetry/progress.js';
export type {
  ExportActivityResult,
  IngestionActivities,
  IngestionActivitiesOptions,
  IngestionActivityInput,
  IngestionActivityResult,
} from './activity-types.js';
export { createIngestionActivities } from './create-ingestion-activities.js';
export { NON_RETRYABLE_ERROR_TYPES, toActivityFailure } from './to-failure.js';
