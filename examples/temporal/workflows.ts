/**
 * The seed's `ingestionRunWorkflow`: startIngestionRun → runIngestionUnit → completeIngestionRun / failIngestionRun.
 *
 * Workflow code runs in Temporal's deterministic sandbox: it imports only types from '@nucleus/ingestion'
 * (erased at compile time) and talks to the data plane through activities. Only ids, checkpoints and staging
 * handles travel through workflow history — never rows, never secrets.
 */
import type { IngestionActivities, IngestionActivityInput, IngestionActivityResult } from '@nucleus/ingestion/temporal';
import { ActivityFailure, ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { HostActivities } from './activities.js';
import { nonRetryableErrorTypes } from './non-retryable.js';

const host = proxyActivities<HostActivities>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 5 },
});

const ingestion = proxyActivities<IngestionActivities>({
  // A whole unit may take long; the heartbeat timeout catches a dead worker within seconds.
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '30 seconds',
  retry: {
    initialInterval: '5 seconds',
    backoffCoefficient: 2,
    maximumInterval: '5 minutes',
    maximumAttempts: 10,
    nonRetryableErrorTypes,
  },
});

/** Input of {@link ingestionRunWorkflow}. */
export interface IngestionRunWorkflowInput {
  workspaceId?: string;
  endpointId: string;
  unitId: string;
  sinkId?: string;
  stagingProviderId?: string;
}

/** One ingestion run of one unit, with the host's bookkeeping around it. */
export async function ingestionRunWorkflow(input: IngestionRunWorkflowInput): Promise<IngestionActivityResult> {
  const start = await host.startIngestionRun(input);
  const request: IngestionActivityInput = {
    workspaceId: input.workspaceId,
    endpointId: input.endpointId,
    unitId: input.unitId,
    sinkId: start.sinkId,
    checkpoint: start.checkpoint,
    stagingProviderId: start.stagingProviderId,
    policy: start.policy,
  };
  try {
    const result = await ingestion.runIngestionUnit(request);
    await host.completeIngestionRun({ ...input, result });
    return result;
  } catch (err) {
    // The activity's ApplicationFailure (type = IngestError code) arrives wrapped in an ActivityFailure.
    const failure = err instanceof ActivityFailure ? err.cause : err;
    const code = failure instanceof ApplicationFailure ? (failure.type ?? 'unknown') : 'unknown';
    const message = failure instanceof Error ? failure.message : String(failure);
    await host.failIngestionRun({ ...input, code, message });
    throw err;
  }
}
