import type { IngestionEvent, Logger } from '../contracts/context.js';
import type { KvStore } from '../contracts/kv-store.js';
import type { Disposition } from '../contracts/sink-endpoint.js';
import type { StagingHandle, StagingProvider, StagingSessionRef } from '../contracts/staging.js';
import type { Json } from '../contracts/values.js';
import type { ExportResult, RunPolicy, RunUnitResult } from '../pipeline/options.js';
import type { EndpointRegistry } from '../registry/endpoint-registry.js';

/**
 * A configured endpoint, as the registry creates it: the descriptor id (e.g. `'postgres'`) and its config.
 * The config is validated by the descriptor's zod schema when the endpoint is created.
 * @public
 */
export interface EndpointConfigRef {
  /** Descriptor id registered in the {@link EndpointRegistry}. */
  endpointId: string;
  config: unknown;
}

/**
 * Looks up the configuration of an endpoint instance (the `endpointId` / `sinkId` of an activity input), e.g.
 * from the host's metadata database. Secrets should be resolved here, on the worker, never passed through
 * workflow history.
 * @public
 */
export type EndpointResolver = (id: string, role: 'source' | 'sink') => Promise<EndpointConfigRef> | EndpointConfigRef;

/**
 * Options of {@link createIngestionActivities}.
 * @public
 */
export interface IngestionActivitiesOptions {
  /** Creates source and sink endpoints from their configs. */
  registry: EndpointRegistry;
  /** One staging provider, or several by id (chosen per call with `stagingProviderId`). */
  staging: StagingProvider | Record<string, StagingProvider>;
  /** Holds checkpoints, run state and leases; must be shared by every worker (e.g. `PostgresKvStore`). */
  kv: KvStore;
  /** Provider used when the input names none. @defaultValue the only provider, else `'default'` */
  defaultStagingProviderId?: string;
  /** Policy merged under each input's `policy` (the input wins field by field). */
  policy?: RunPolicy;
  /** Console- or pino-like logger. @defaultValue no logging */
  logger?: Logger | Pick<Console, 'debug' | 'info' | 'warn' | 'error'>;
  /** Minimum gap between heartbeats (phase changes heartbeat at once). Keep it well below the heartbeat timeout. @defaultValue 1000 */
  heartbeatIntervalMs?: number;
  /** Resolves endpoint ids to configs. Takes precedence over `endpoints`. */
  resolveEndpoint?: EndpointResolver;
  /** Static endpoint configs by id, for workers with a fixed set of endpoints. */
  endpoints?: Record<string, EndpointConfigRef>;
  /** Sink used when an input has no `sinkId`. */
  defaultSinkId?: string;
  /** Workspace used when an input has none. @defaultValue 'default' */
  workspaceId?: string;
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
