import { Context } from '@temporalio/activity';
import { z } from 'zod';
import type { IngestionEvent, Logger } from '../contracts/context.js';
import type { SinkEndpoint } from '../contracts/sink-endpoint.js';
import type { SourceEndpoint } from '../contracts/source-endpoint.js';
import type { StagingProvider } from '../contracts/staging.js';
import { configInvalid } from '../errors/config-invalid.js';
import { IngestError } from '../errors/ingest-error.js';
import { exportUnit } from '../pipeline/export-unit.js';
import { importUnit } from '../pipeline/import-unit.js';
import { checkpointKey } from '../pipeline/keys.js';
import type { RunPolicy } from '../pipeline/options.js';
import { runUnit } from '../pipeline/run-unit.js';
import { jsonEqual } from '../util/deep-equal.js';
import { toLogger } from '../util/logger.js';
import type {
  EndpointConfigRef,
  IngestionActivities,
  IngestionActivitiesOptions,
  IngestionActivityInput,
} from './activity-types.js';
import { HeartbeatThrottle, type IngestionHeartbeatDetails } from './heartbeat.js';
import { temporalRunId } from './run-id.js';
import { toActivityFailure } from './to-failure.js';

const optionsSchema = z.object({
  registry: z.custom(
    (v) => v != null && typeof (v as any).createSource === 'function' && typeof (v as any).createSink === 'function',
    {
      error: 'Expected `registry` to be an EndpointRegistry',
    },
  ),
  staging: z.custom((v) => v != null && typeof v === 'object', {
    error: 'Expected `staging` to be a StagingProvider or a record of them',
  }),
  kv: z.custom((v) => v != null && ['get', 'put', 'delete', 'list'].every((f) => typeof (v as any)[f] === 'function'), {
    error: 'Expected `kv` to implement get(), put(), delete(), list()',
  }),
  defaultStagingProviderId: z.string().min(1).optional(),
  heartbeatIntervalMs: z
    .number({ error: 'Expected `heartbeatIntervalMs` to be a positive integer' })
    .int({ error: 'Expected `heartbeatIntervalMs` to be a positive integer' })
    .positive({ error: 'Expected `heartbeatIntervalMs` to be a positive integer' })
    .optional(),
  resolveEndpoint: z
    .custom((v) => typeof v === 'function', { error: 'Expected `resolveEndpoint` to be a function' })
    .optional(),
  endpoints: z.record(z.string(), z.object({ endpointId: z.string().min(1), config: z.unknown() })).optional(),
  defaultSinkId: z.string().min(1).optional(),
  workspaceId: z.string().min(1).optional(),
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

type Kind = 'run' | 'export' | 'import';

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
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) throw configInvalid('Invalid createIngestionActivities options', parsed.error.issues);
  const providers = normalizeStaging(options.staging, options.defaultStagingProviderId);
  const logger: Logger = toLogger(options.logger);
  const intervalMs = options.heartbeatIntervalMs ?? 1000;

  async function resolve(id: string, role: 'source' | 'sink'): Promise<EndpointConfigRef> {
    const ref = options.resolveEndpoint ? await options.resolveEndpoint(id, role) : options.endpoints?.[id];
    if (!ref) {
      throw new IngestError(
        'config_invalid',
        `Unknown ${role} endpoint "${id}": no resolveEndpoint and no entry in endpoints`,
        {
          details: { endpointId: id, role },
        },
      );
    }
    return ref;
  }

  async function create<T extends SourceEndpoint | SinkEndpoint>(
    id: string,
    ref: EndpointConfigRef,
    role: 'source' | 'sink',
  ): Promise<T> {
    try {
      const spec = { endpointId: ref.endpointId, config: ref.config };
      return (
        role === 'source' ? await options.registry.createSource(spec) : await options.registry.createSink(spec)
      ) as T;
    } catch (err) {
      // The registry reports bad configs as `config_invalid`; anything else comes from the factory (a connection…).
      throw IngestError.wrap(
        err,
        role === 'source' ? 'source_failed' : 'sink_failed',
        `Cannot create ${role} endpoint "${id}" (${ref.endpointId})`,
        { endpointId: id, role },
      );
    }
  }

  async function execute(kind: Kind, rawInput: IngestionActivityInput): Promise<any> {
    const actx = Context.current();
    const info = actx.info;
    const signal = actx.cancellationSignal;
    const opened: Array<SourceEndpoint | SinkEndpoint> = [];
    let throttle: HeartbeatThrottle | undefined;
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
      const sourceRef = kind === 'import' ? undefined : await resolve(input.endpointId, 'source');
      const vendor =
        input.vendor ??
        (kind === 'import' ? input.sessionRef?.vendor : undefined) ??
        (sourceRef ?? (await resolve(input.endpointId, 'source'))).endpointId;
      const workspaceId = input.workspaceId ?? options.workspaceId ?? 'default';
      const unit = { workspaceId, vendor, endpointId: input.endpointId, unitId: input.unitId, sinkId };
      const staging = pickStaging(providers, input.stagingProviderId ?? input.sessionRef?.provider, kind);
      const runId =
        input.runId ??
        (kind === 'import'
          ? input.sessionRef?.runId
          : temporalRunId({
              workflowRunId: info.workflowExecution?.runId ?? info.activityRunId ?? '',
              activityId: info.activityId,
            }));
      const policy = mergePolicy(options.policy, input.policy);

      const log = logger;
      if (info.attempt > 1) {
        const hint = info.heartbeatDetails as Partial<IngestionHeartbeatDetails> | undefined;
        log.info(`Retrying ${activityName(kind)} (attempt ${info.attempt}); resuming from the KvStore run state`, {
          runId: runId ?? null,
          unitId: input.unitId,
          lastHeartbeat:
            hint && typeof hint === 'object'
              ? { phase: hint.phase, rowsExported: hint.rowsExported, slice: hint.slice }
              : null,
        });
      }
      if (input.checkpoint !== undefined) await compareCheckpoint(input, unit, log);

      throttle = new HeartbeatThrottle({
        runId: runId ?? '',
        attempt: info.attempt,
        phase: 'starting',
        intervalMs,
        send: (d) => actx.heartbeat(d),
      });
      throttle.start();
      const t = throttle;
      const onEvent = (event: IngestionEvent) => {
        t.onEvent(event);
        options.onEvent?.(event);
      };
      const common = { staging, kv: options.kv, unit, mode: input.mode, runId, policy, signal, onEvent, logger: log };

      if (kind === 'import') {
        const sink = await create<SinkEndpoint>(sinkId!, await resolve(sinkId!, 'sink'), 'sink');
        opened.push(sink);
        return await importUnit({
          ...common,
          sink,
          sessionRef: input.sessionRef,
          stagingHandles: input.stagingHandles,
          disposition: input.disposition,
          primaryKey: input.primaryKey,
        });
      }
      const source = await create<SourceEndpoint>(input.endpointId, sourceRef!, 'source');
      opened.push(source);
      if (kind === 'export') return await exportUnit({ ...common, source });
      const sink = await create<SinkEndpoint>(sinkId!, await resolve(sinkId!, 'sink'), 'sink');
      opened.push(sink);
      return await runUnit({ ...common, source, sink, disposition: input.disposition, primaryKey: input.primaryKey });
    } catch (err) {
      logger.warn(`${activityName(kind)} failed`, {
        unitId: rawInput?.unitId,
        code: IngestError.is(err) ? err.code : undefined,
        message: err instanceof Error ? err.message : String(err),
      });
      throw toActivityFailure(err, signal);
    } finally {
      throttle?.stop();
      await Promise.all(opened.map((e) => e.close?.().catch(() => {})));
    }
  }

  async function compareCheckpoint(
    input: IngestionActivityInput,
    unit: Parameters<typeof checkpointKey>[0],
    log: Logger,
  ) {
    const stored = await options.kv.get(checkpointKey(unit));
    if (!jsonEqual(stored?.value ?? null, input.checkpoint ?? null)) {
      log.warn('The checkpoint passed by the workflow differs from the KvStore; the KvStore wins', {
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

function activityName(kind: Kind): string {
  return kind === 'run' ? 'runIngestionUnit' : kind === 'export' ? 'exportIngestionUnit' : 'importIngestionUnit';
}

function isProvider(v: unknown): v is StagingProvider {
  return (
    v != null &&
    typeof (v as StagingProvider).allocateSession === 'function' &&
    typeof (v as StagingProvider).openSession === 'function'
  );
}

interface Providers {
  byId: Map<string, StagingProvider>;
  defaultId: string | undefined;
}

function normalizeStaging(staging: IngestionActivitiesOptions['staging'], defaultId: string | undefined): Providers {
  const byId = new Map<string, StagingProvider>();
  if (isProvider(staging)) {
    byId.set(staging.id, staging);
    return { byId, defaultId: defaultId ?? staging.id };
  }
  const entries = Object.entries(staging);
  const bad = entries.filter(([, p]) => !isProvider(p)).map(([k]) => k);
  if (entries.length === 0 || bad.length > 0) {
    throw new IngestError(
      'config_invalid',
      entries.length === 0
        ? 'Invalid createIngestionActivities options: staging: Expected at least one StagingProvider'
        : `Invalid createIngestionActivities options: staging: ${bad.map((k) => `"${k}"`).join(', ')} is not a StagingProvider`,
    );
  }
  for (const [key, p] of entries) {
    byId.set(key, p);
    if (!byId.has(p.id)) byId.set(p.id, p);
  }
  const fallback = entries.length === 1 ? entries[0][0] : 'default';
  const chosen = defaultId ?? fallback;
  if (defaultId !== undefined && !byId.has(defaultId)) {
    throw new IngestError(
      'config_invalid',
      `Invalid createIngestionActivities options: defaultStagingProviderId: "${defaultId}" is not a configured provider`,
    );
  }
  return { byId, defaultId: byId.has(chosen) ? chosen : undefined };
}

function pickStaging(providers: Providers, id: string | undefined, kind: Kind): StagingProvider {
  const key = id ?? providers.defaultId;
  const p = key === undefined ? undefined : providers.byId.get(key);
  if (!p) {
    throw new IngestError(
      'config_invalid',
      `Invalid ${activityName(kind)} input: stagingProviderId: unknown staging provider "${key ?? '(none)'}" (known: ${[...providers.byId.keys()].join(', ')})`,
    );
  }
  return p;
}

function mergePolicy(base: RunPolicy | undefined, override: RunPolicy | undefined): RunPolicy | undefined {
  if (!base) return override;
  if (!override) return base;
  return {
    ...base,
    ...override,
    retry: base.retry || override.retry ? { ...base.retry, ...override.retry } : undefined,
  };
}
