import { Context } from '@temporalio/activity';
import { z } from 'zod';
import { configInvalid } from '../errors/config-invalid.js';
import { IngestError } from '../errors/ingest-error.js';
import { resolveEndpoint } from '../host/endpoints.js';
import type { IngestionHeartbeatDetails } from '../host/heartbeat.js';
import { checkHostOptions, hostOptionsShape, mergePolicy } from '../host/host-options.js';
import { type HostedKind, runHostedUnit } from '../host/run-hosted-unit.js';
import { temporalRunId } from '../host/run-id.js';
import { checkpointKey } from '../pipeline/keys.js';
import { jsonEqual } from '../util/deep-equal.js';
import type { IngestionActivities, IngestionActivitiesOptions, IngestionActivityInput } from './activity-types.js';
import { toActivityFailure } from './to-failure.js';

const optionsSchema = z.object({
  ...hostOptionsShape,
  heartbeatIntervalMs: z
    .number({ error: 'Expected `heartbeatIntervalMs` to be a positive integer' })
    .int({ error: 'Expected `heartbeatIntervalMs` to be a positive integer' })
    .positive({ error: 'Expected `heartbeatIntervalMs` to be a positive integer' })
    .optional(),
});

const inputSchema = z.object({
  endpointId: z.string({ error: 'Expected `endpointId` to be a string' }).min(1),
  unitId: z.string({ error: 'Expected `unitId` to be a string' }).min(1),
  sinkId: z.string().min(1).optional(),
  checkpoint: z.unknown().optional(),
  stagingProviderId: z.string().min(1).optional(),
  policy: z.record(z.string(), z.unknown()).optional(),
  workspaceId: z.string().min(1).optional(),
  vendor: z.string().min(1).optional(),
  mode: z.enum(['full', 'incremental']).optional(),
  disposition: z.enum(['append', 'replace', 'merge']).optional(),
  primaryKey: z.array(z.string().min(1)).optional(),
  runId: z.string().min(1).optional(),
  sessionRef: z.object({ provider: z.string(), sessionId: z.string(), runId: z.string() }).passthrough().optional(),
  stagingHandles: z.array(z.object({ bucket: z.string(), key: z.string() }).passthrough()).optional(),
});

/**
 * Temporal activities that run the ingestion pipeline: `runIngestionUnit` (export → import → commit),
 * or `exportIngestionUnit` and `importIngestionUnit` for workflows that split the phases.
 *
 * - endpoints are created through the `registry` from configs resolved on the worker (`resolveEndpoint` or
 *   `endpoints`), so workflow history carries ids, never secrets;
 * - progress (phase, slice, rows) is sent with `heartbeat()`, at most every `heartbeatIntervalMs`, at once on a
 *   phase change, and as a keep-alive while a batch takes long;
 * - cancelling the activity aborts the run (checkpoint untouched, staging resumable);
 * - the ingestion `runId` is derived from the workflow run id and the activity id, so a retried activity resumes
 *   the same run from the KvStore run state (heartbeat details are only logged);
 * - an `IngestError` becomes an `ApplicationFailure` whose `type` is the error code, non-retryable when the
 *   code is (`config_invalid`, `staging_corrupt`, …).
 *
 * @example
 * ```ts
 * import { EndpointRegistry, MemoryStagingProvider } from '@nucleus/ingestion';
 * import { createIngestionActivities } from '@nucleus/ingestion/temporal';
 * import { Worker } from '@temporalio/worker';
 *
 * const activities = createIngestionActivities({
 *   registry, staging, kv,
 *   resolveEndpoint: async (id) => db.endpointConfig(id), // → { endpointId: 'postgres', config: {…} }
 * });
 * await Worker.create({ taskQueue: 'ingestion', activities, workflowsPath: require.resolve('./workflows') });
 * ```
 * @throws IngestError `config_invalid` when the options are malformed (listing every issue)
 * @public
 */
export function createIngestionActivities(options: IngestionActivitiesOptions): IngestionActivities {
  const { pickStaging, logger } = checkHostOptions(optionsSchema, options, 'createIngestionActivities');
  const intervalMs = options.heartbeatIntervalMs ?? 1000;

  async function execute(kind: HostedKind, rawInput: IngestionActivityInput): Promise<any> {
    const actx = Context.current();
    const info = actx.info;
    const signal = actx.cancellationSignal;
    try {
      const res = inputSchema.safeParse(rawInput);
      if (!res.success) throw configInvalid(`Invalid ${activityName(kind)} input`, res.error.issues);
      const input = rawInput;
      const sinkId = input.sinkId ?? options.defaultSinkId;
      if (kind !== 'export' && !sinkId) {
        throw new IngestError(
          'config_invalid',
          `Invalid ${activityName(kind)} input: sinkId: Expected a sink id (or defaultSinkId)`,
        );
      }
      // The key's vendor defaults to the source's descriptor id; an import takes it from the exported session.
      const sourceRef = kind === 'import' ? undefined : await resolveEndpoint(options, input.endpointId, 'source');
      const vendor =
        input.vendor ??
        (kind === 'import' ? input.sessionRef?.vendor : undefined) ??
        (sourceRef ?? (await resolveEndpoint(options, input.endpointId, 'source'))).endpointId;
      const workspaceId = input.workspaceId ?? options.workspaceId ?? 'default';
      const unit = { workspaceId, vendor, endpointId: input.endpointId, unitId: input.unitId, sinkId };
      const staging = pickStaging(
        input.stagingProviderId ?? input.sessionRef?.provider,
        `Invalid ${activityName(kind)} input`,
      );
      const runId =
        input.runId ??
        (kind === 'import'
          ? input.sessionRef?.runId
          : temporalRunId({
              workflowRunId: info.workflowExecution?.runId ?? info.activityRunId ?? '',
              activityId: info.activityId,
            }));

      if (info.attempt > 1) {
        const hint = info.heartbeatDetails as Partial<IngestionHeartbeatDetails> | undefined;
        logger.info(`Retrying ${activityName(kind)} (attempt ${info.attempt}); resuming from the KvStore run state`, {
          runId: runId ?? null,
          unitId: input.unitId,
          lastHeartbeat:
            hint && typeof hint === 'object'
              ? { phase: hint.phase, rowsExported: hint.rowsExported, slice: hint.slice }
              : null,
        });
      }
      if (input.checkpoint !== undefined) await compareCheckpoint(input, unit);

      return await runHostedUnit(kind, {
        wiring: options,
        sourceRef,
        staging,
        kv: options.kv,
        unit,
        mode: input.mode,
        disposition: input.disposition,
        primaryKey: input.primaryKey,
        sessionRef: input.sessionRef,
        stagingHandles: input.stagingHandles,
        runId,
        policy: mergePolicy(options.policy, input.policy),
        signal,
        logger,
        heartbeat: { attempt: info.attempt, intervalMs, send: (d) => actx.heartbeat(d) },
        onEvent: options.onEvent,
      });
    } catch (err) {
      logger.warn(`${activityName(kind)} failed`, {
        unitId: rawInput?.unitId,
        code: IngestError.is(err) ? err.code : undefined,
        message: err instanceof Error ? err.message : String(err),
      });
      throw toActivityFailure(err, signal);
    }
  }

  async function compareCheckpoint(input: IngestionActivityInput, unit: Parameters<typeof checkpointKey>[0]) {
    const stored = await options.kv.get(checkpointKey(unit));
    if (!jsonEqual(stored?.value ?? null, input.checkpoint ?? null)) {
      logger.warn('The checkpoint passed by the workflow differs from the KvStore; the KvStore wins', {
        unitId: input.unitId,
        storedVersion: stored?.version ?? null,
      });
    }
  }

  return {
    runIngestionUnit: (input) => execute('run', input),
    exportIngestionUnit: (input) => execute('export', input),
    importIngestionUnit: (input) => execute('import', input),
  };
}

function activityName(kind: HostedKind): string {
  return kind === 'run' ? 'runIngestionUnit' : kind === 'export' ? 'exportIngestionUnit' : 'importIngestionUnit';
}
