/**
 * Activities of the example worker: the ingestion activities from '@nucleus/ingestion/temporal', plus the
 * host's own bookkeeping around a run (`startIngestionRun`, `completeIngestionRun`, `failIngestionRun`) —
 * in the seed these update Prisma's `IngestionUnitState`; here they log and read the KvStore.
 */
import {
  checkpointKey,
  type EndpointRegistry,
  type Json,
  type KvStore,
  type RunPolicy,
  type StagingProvider,
} from '@nucleus/ingestion';
import {
  createIngestionActivities,
  type EndpointConfigRef,
  type IngestionActivities,
  type IngestionActivityResult,
} from '@nucleus/ingestion/temporal';

/** What `startIngestionRun` hands to the ingestion activity. */
export interface StartIngestionRunResult {
  sinkId: string;
  /** The committed checkpoint, for display; the ingestion activity reads the KvStore itself. */
  checkpoint: Json | null;
  stagingProviderId?: string;
  policy?: RunPolicy;
}

interface UnitInput {
  workspaceId?: string;
  endpointId: string;
  unitId: string;
  sinkId?: string;
}

/** The host activities the workflow calls around the ingestion run. */
export interface HostActivities {
  startIngestionRun(input: UnitInput & { stagingProviderId?: string }): Promise<StartIngestionRunResult>;
  completeIngestionRun(input: UnitInput & { result: IngestionActivityResult }): Promise<void>;
  failIngestionRun(input: UnitInput & { code: string; message: string }): Promise<void>;
}

/** Everything the worker needs to build its activities. */
export interface WorkerDeps {
  registry: EndpointRegistry;
  staging: StagingProvider;
  kv: KvStore;
  /** Endpoint configs by id — in a real host, read from the metadata database (secrets resolved on the worker). */
  endpoints: Record<string, EndpointConfigRef>;
  defaultSinkId: string;
  policy?: RunPolicy;
}

/** Build every activity the example workflow uses. */
export function createActivities(deps: WorkerDeps): IngestionActivities & HostActivities {
  const ingestion = createIngestionActivities({
    registry: deps.registry,
    staging: deps.staging,
    kv: deps.kv,
    endpoints: deps.endpoints,
    defaultSinkId: deps.defaultSinkId,
    policy: deps.policy,
    logger: console,
    heartbeatIntervalMs: 2_000,
  });

  const host: HostActivities = {
    async startIngestionRun(input) {
      const sinkId = input.sinkId ?? deps.defaultSinkId;
      const source = deps.endpoints[input.endpointId];
      if (!source) throw new Error(`Unknown endpoint ${input.endpointId}`);
      // the ingestion activities default the key's vendor to the source's descriptor id
      const key = checkpointKey({
        workspaceId: input.workspaceId,
        vendor: source.endpointId,
        endpointId: input.endpointId,
        unitId: input.unitId,
        sinkId,
      });
      const entry = await deps.kv.get(key);
      console.info(`ingestion of ${input.unitId} starting from`, entry?.value ?? 'the beginning');
      return {
        sinkId,
        checkpoint: entry?.value ?? null,
        stagingProviderId: input.stagingProviderId,
        policy: deps.policy,
      };
    },
    async completeIngestionRun({ unitId, result }) {
      console.info(`ingestion of ${unitId} done`, {
        runId: result.runId,
        rows: result.stats.rowsImported,
        checkpoint: result.newCheckpoint,
      });
    },
    async failIngestionRun({ unitId, code, message }) {
      console.error(`ingestion of ${unitId} failed [${code}]: ${message}`);
    },
  };

  return { ...ingestion, ...host };
}
