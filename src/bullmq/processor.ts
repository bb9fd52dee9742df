import { DelayedError, type Job, UnrecoverableError, WaitingError } from 'bullmq';
import { z } from 'zod';
import type { IngestionEvent, Logger } from '../contracts/context.js';
import type { Json } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { redact } from '../errors/redact.js';
import { resolveEndpoint } from '../host/endpoints.js';
import type { IngestionHeartbeatDetails } from '../host/heartbeat.js';
import { checkHostOptions, hostOptionsShape, type IngestionHostOptions, mergePolicy } from '../host/host-options.js';
import { runHostedUnit } from '../host/run-hosted-unit.js';
import { jobRunId } from '../host/run-id.js';
import type { LeaseValue } from '../pipeline/lease.js';
import type { RunUnitResult } from '../pipeline/options.js';
import { type IngestionJobData, parseJobData } from './job-data.js';

/**
 * The abort reason {@link IngestionWorker.close} gives the runs it stops: the processor hands such a job back to
 * the queue (`wait`) instead of failing it, so another worker resumes the run at once, without spending an attempt.
 * @public
 */
export const SHUTDOWN_REASON = 'nucleus-ingestion:worker-shutdown';

/**
 * The abort reason used when BullMQ could not renew a job's lock: the job will be handed to another worker by the
 * stalled checker, so this worker stops its run (releasing the lease for the next holder).
 * @public
 */
export const LOCK_LOST_REASON = 'nucleus-ingestion:job-lock-lost';

/** Progress a job reports through `job.updateProgress` (BullMQ's `progress` event, dashboards). @public */
export type IngestionJobProgress = IngestionHeartbeatDetails;

/**
 * What a job returns (BullMQ stores it as the job's return value).
 * `skipped`: a job of a job scheduler found the unit's lease held by another run (that run covers the tick).
 * @public
 */
export interface IngestionJobResult {
  status: 'committed' | 'skipped';
  runId?: string;
  newCheckpoint?: Json | null;
  /** True when the run picked up staged data of an earlier attempt (a crashed or stopped worker). */
  resumed?: boolean;
  /** Counters of the run (as in {@link RunUnitResult}). */
  stats?: RunUnitResult['stats'];
  /** Why a job was skipped. */
  reason?: string;
}

/** Options of {@link createIngestionProcessor}. @public */
export interface IngestionProcessorOptions extends IngestionHostOptions {
  /**
   * The `lockDuration` of the BullMQ Worker that runs this processor, in ms. A job's lease TTL
   * (`policy.leaseTtlMs`) defaults to it and may not exceed it: when a worker dies, BullMQ gives its job to another
   * worker once the lock expired (after `lockDuration`, at the next stalled check); a lease that outlived the lock
   * would make that worker wait for it.
   */
  lockDurationMs: number;
  /** Minimum gap between two `job.updateProgress` calls (a phase change reports at once). @defaultValue 1000 */
  progressIntervalMs?: number;
  /** Margin added to a held lease's expiry before a job that found it held runs again. @defaultValue 250 */
  leaseWaitMarginMs?: number;
  /** Identifies this worker in leases. @defaultValue `<hostname>:<pid>` */
  workerId?: string;
  /** Every pipeline event of every job (e.g. for metrics). */
  onEvent?: (event: IngestionEvent, job: Job<IngestionJobData>) => void;
}

/**
 * A BullMQ processor function: `(job, token, signal)`. It declares the third parameter, so BullMQ creates an
 * AbortSignal per job (`worker.cancelJob`).
 * @public
 */
export type IngestionProcessor = (
  job: Job<IngestionJobData, IngestionJobResult>,
  token: string | undefined,
  signal: AbortSignal | undefined,
) => Promise<IngestionJobResult>;

const optionsSchema = z.object({
  ...hostOptionsShape,
  lockDurationMs: z
    .number({ error: "Expected `lockDurationMs` to be a number of milliseconds (the Worker's lockDuration)" })
    .int({ error: 'Expected `lockDurationMs` to be an integer' })
    .min(1000, { error: 'Expected `lockDurationMs` to be at least 1000' }),
  progressIntervalMs: z.number().int().positive().optional(),
  leaseWaitMarginMs: z.number().int().nonnegative().optional(),
  policy: z.object({ leaseTtlMs: z.number().int().positive().optional() }).passthrough().optional(),
});

/**
 * Check that a lease TTL fits the worker's lock duration.
 * @throws IngestError `config_invalid` when `leaseTtlMs` exceeds `lockDurationMs`
 * @internal
 */
export function checkLeaseFitsLock(leaseTtlMs: number, lockDurationMs: number, where: string): void {
  if (leaseTtlMs > lockDurationMs) {
    throw new IngestError(
      'config_invalid',
      `${where}: policy.leaseTtlMs (${leaseTtlMs}) exceeds the worker's lockDuration (${lockDurationMs}). ` +
        'When a worker dies BullMQ hands its job to another worker after the lock expires; a longer lease would make that worker wait for it. Use leaseTtlMs <= lockDuration (default: equal).',
      { details: { leaseTtlMs, lockDurationMs } },
    );
  }
}

/**
 * Build the BullMQ processor that runs one unit per job with `runUnit`.
 *
 * - Job data is ids only ({@link IngestionJobData}, validated); endpoints come from the `registry` and the host's
 *   `resolveEndpoint`/`endpoints`, staging and KvStore from the options — nothing secret goes through Redis.
 * - The run id is derived from the job (id + creation time): every attempt of a job, and the attempt that picks up
 *   a stalled job, resumes the same run from the KvStore run state — after the export, from the staged data without
 *   reading the source again.
 * - Progress (phase, slice, rows) goes to `job.updateProgress`, at most every `progressIntervalMs` and at once on a
 *   phase change.
 * - A retryable `IngestError` fails the attempt (BullMQ retries it with the job's `attempts`/`backoff`); a
 *   non-retryable one throws BullMQ's `UnrecoverableError` (no retry).
 * - `lease_held`: a scheduler tick is skipped (the other run covers it); any other job is delayed until the lease
 *   expires, without spending an attempt — the holder may be a worker that died, whose lease lapses.
 * - Abort: `worker.cancelJob(id)` ends the job as failed without retry; {@link SHUTDOWN_REASON} (from
 *   {@link IngestionWorker.close}) puts it back in `wait` for another worker. Either way the run stops within one
 *   batch, its lease is released and its staged data stays resumable.
 *
 * Prefer {@link createIngestionWorker}, which also sizes the lock and wires shutdown and lock loss.
 * @example
 * ```ts
 * import { Worker } from 'bullmq';
 * import { createIngestionProcessor } from '@nucleus/ingestion/bullmq';
 *
 * const processor = createIngestionProcessor({ registry, staging, kv, endpoints, lockDurationMs: 30_000 });
 * const worker = new Worker('ingestion', processor, { connection, lockDuration: 30_000 });
 * ```
 * @throws IngestError `config_invalid` for malformed options (listing every issue) or a lease longer than the lock
 * @public
 */
export function createIngestionProcessor(options: IngestionProcessorOptions): IngestionProcessor {
  const { pickStaging, logger } = checkHostOptions(optionsSchema, options, 'createIngestionProcessor');
  const lockMs = options.lockDurationMs;
  if (options.policy?.leaseTtlMs !== undefined) {
    checkLeaseFitsLock(options.policy.leaseTtlMs, lockMs, 'Invalid createIngestionProcessor options');
  }
  const intervalMs = options.progressIntervalMs ?? 1000;
  const margin = options.leaseWaitMarginMs ?? 250;

  // Three declared parameters: BullMQ passes an AbortSignal only to processors whose length is >= 3.
  return async (job, token, signal) => {
    let updates: Promise<unknown> = Promise.resolve();
    try {
      const data = parseJobData(job.data, `data of job ${job.id}`);
      const sinkId = data.sinkId ?? options.defaultSinkId;
      if (!sinkId)
        throw new IngestError('config_invalid', `Job ${job.id} names no sinkId and the worker has no defaultSinkId`);
      const sourceRef = await resolveEndpoint(options, data.endpointId, 'source');
      const sinkRef = await resolveEndpoint(options, sinkId, 'sink');
      const policy = mergePolicy(options.policy, data.policy);
      policy.leaseTtlMs ??= lockMs;
      checkLeaseFitsLock(policy.leaseTtlMs, lockMs, `Job ${job.id}`);
      const result = await runHostedUnit('run', {
        wiring: options,
        sourceRef,
        sinkRef,
        staging: pickStaging(data.stagingProviderId, `Job ${job.id}`),
        kv: options.kv,
        unit: {
          workspaceId: data.workspaceId ?? options.workspaceId ?? 'default',
          vendor: data.vendor ?? sourceRef.endpointId,
          endpointId: data.endpointId,
          unitId: data.unitId,
          sinkId,
        },
        mode: data.mode,
        disposition: data.disposition,
        primaryKey: data.primaryKey,
        runId: jobRunId(String(job.id), job.timestamp),
        policy,
        signal,
        logger,
        workerId: options.workerId,
        heartbeat: {
          attempt: job.attemptsMade + 1,
          intervalMs,
          send: (details) => {
            updates = updates.then(() =>
              job
                .updateProgress(details as unknown as object)
                .catch((err: unknown) =>
                  logger.warn('could not update job progress', { jobId: job.id, error: String(err) }),
                ),
            );
          },
        },
        onEvent: options.onEvent && ((event) => options.onEvent!(event, job)),
      });
      return {
        status: 'committed',
        runId: result.runId,
        newCheckpoint: result.newCheckpoint,
        resumed: result.resumed ?? false,
        stats: result.stats,
      };
    } catch (err) {
      return await settleFailure(err, job, token, signal, logger, margin);
    } finally {
      await updates;
    }
  };
}

/** Turn a failed run into what BullMQ should do with the job: retry, fail for good, wait, or delay. */
async function settleFailure(
  err: unknown,
  job: Job<IngestionJobData, IngestionJobResult>,
  token: string | undefined,
  signal: AbortSignal | undefined,
  logger: Logger,
  marginMs: number,
): Promise<IngestionJobResult> {
  const e = IngestError.is(err) ? err : undefined;
  if (signal?.aborted && (e === undefined || e.code === 'aborted')) {
    const reason = signal.reason;
    if (reason === SHUTDOWN_REASON) {
      // Back to `wait` without spending an attempt: the next worker resumes the run from its staged data.
      logger.info('worker shutting down: job handed back to the queue, run left resumable', { jobId: job.id });
      await job.moveToWait(token);
      throw new WaitingError();
    }
    if (reason === LOCK_LOST_REASON) {
      throw new Error(`Job ${job.id} lost its lock; its run was stopped and another worker will resume it`);
    }
    throw new UnrecoverableError(
      `[aborted] Job ${job.id} was cancelled${reason === undefined ? '' : `: ${redact(String(reason))}`}; its run is left resumable`,
    );
  }
  if (e?.code === 'lease_held') {
    if (job.repeatJobKey) {
      logger.info('unit is run by another job; scheduler tick skipped', { jobId: job.id });
      return { status: 'skipped', reason: e.message };
    }
    const holder = (e.details as { holder?: LeaseValue | null } | undefined)?.holder;
    const expires = holder ? Date.parse(holder.expiresAt) : Number.NaN;
    const until = Math.max(Date.now(), Number.isFinite(expires) ? expires : Date.now()) + marginMs;
    logger.info('unit lease held; job delayed until it expires', {
      jobId: job.id,
      until: new Date(until).toISOString(),
    });
    await job.moveToDelayed(until, token);
    throw new DelayedError();
  }
  if (e) {
    const message = `[${e.code}] ${e.message}`;
    if (!e.retryable) throw new UnrecoverableError(message);
    const retry = new Error(message);
    retry.name = `IngestError:${e.code}`;
    throw retry;
  }
  const message = redact(err instanceof Error ? err.message : String(err));
  throw new Error(`[internal] ${message}`);
}
