/**
 * `@nucleus/ingestion/bullmq` — run units on many workers through a BullMQ queue: a producer (one job per unit,
 * schedules, fan-out of an endpoint's units) and a worker whose job lock and unit lease agree, that hands its jobs
 * back on shutdown and whose crashed runs resume on another worker from their staged data.
 * Needs the optional peer dependencies `bullmq` and `ioredis`.
 * @packageDocumentation
 */

export type { EndpointConfigRef, EndpointResolver, EndpointWiring } from '../host/endpoints.js';
export type { IngestionHostOptions } from '../host/host-options.js';
export { type IngestionJobData, ingestionJobDataSchema, ingestionJobId } from './job-data.js';
export {
  createIngestionProcessor,
  type IngestionJobProgress,
  type IngestionJobResult,
  type IngestionProcessor,
  type IngestionProcessorOptions,
  LOCK_LOST_REASON,
  SHUTDOWN_REASON,
} from './processor.js';
export {
  type EnqueueEndpointOptions,
  type EnqueueResult,
  INGESTION_JOB_NAME,
  IngestionProducer,
  type IngestionProducerOptions,
  type UnitSchedule,
} from './producer.js';
export { createIngestionWorker, type IngestionWorker, type IngestionWorkerOptions } from './worker.js';
