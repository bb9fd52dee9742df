import type { IngestionEvent } from '../contracts/context.js';
import type { Disposition } from '../contracts/sink-endpoint.js';
import type { StagingHandle, StagingSessionRef } from '../contracts/staging.js';
import type { Json } from '../contracts/values.js';
import type { IngestionHostOptions } from '../host/host-options.js';
import type { ExportResult, RunPolicy, RunUnitResult } from '../pipeline/options.js';

/**
 * Options of {@link createIngestionActivities}: the host's ({@link IngestionHostOptions}) plus heartbeats.
 * @public
 */
export interface IngestionActivitiesOptions extends IngestionHostOptions {
  /** Minimum gap between heartbeats (phase changes heartbeat at once). Keep it well below the heartbeat timeout. @defaultValue 1000 */
  heartbeatIntervalMs?: number;
  /** Receives every pipeline event (after the heartbeat saw it). */
  onEvent?: (event: IngestionEvent) => void;
}

/**
 * Input of the ingestion activities — the seed's `{ endpointId, unitId, checkpoint, sinkId?, stagingProviderId?, policy? }`
 * plus handles. Only ids and JSON travel through workflow history; endpoint configs are resolved on the worker.
 * @public
 */
export interface IngestionActivityInput {
  /** Source endpoint instance id (also part of the checkpoint key). */
  endpointId: string;
  unitId: string;
  /** Sink endpoint instance id. @defaultValue `defaultSinkId` */
  sinkId?: string;
  /**
   * The checkpoint the workflow believes is current (seed compatibility). The KvStore is the truth: a different
   * value is logged as a warning and ignored.
   */
  checkpoint?: Json | null;
  stagingProviderId?: string;
  policy?: RunPolicy;
  workspaceId?: string;
  /** Connector vendor in the checkpoint key. @defaultValue the source's descriptor id */
  vendor?: string;
  mode?: 'full' | 'incremental';
  disposition?: Disposition;
  primaryKey?: string[];
  /** Explicit ingestion run id. @defaultValue derived from the workflow run id and activity id */
  runId?: string;
  /** `importIngestionUnit`: the session returned by `exportIngestionUnit`. @defaultValue the one in the run state */
  sessionRef?: StagingSessionRef;
  /** `importIngestionUnit`: handles returned by `exportIngestionUnit`, checked against the session. */
  stagingHandles?: StagingHandle[];
}

/**
 * Result of `runIngestionUnit` and `importIngestionUnit`: the seed's shape
 * (`newCheckpoint`, `stats { rowsExported, slices, startedAt, completedAt, … }`, `stagingHandles`) plus `runId`.
 * @public
 */
export type IngestionActivityResult = RunUnitResult;

/** Result of `exportIngestionUnit`: the session to hand to `importIngestionUnit`. @public */
export type ExportActivityResult = ExportResult;

/**
 * The activities returned by {@link createIngestionActivities}; register them on a Temporal `Worker`.
 * @public
 */
export interface IngestionActivities {
  /** Export, import and commit one unit in one activity. */
  runIngestionUnit(input: IngestionActivityInput): Promise<IngestionActivityResult>;
  /** Export only; returns the session ref and handles for `importIngestionUnit`. */
  exportIngestionUnit(input: IngestionActivityInput): Promise<ExportActivityResult>;
  /** Import a staged session and commit the checkpoint. */
  importIngestionUnit(input: IngestionActivityInput): Promise<IngestionActivityResult>;
}
