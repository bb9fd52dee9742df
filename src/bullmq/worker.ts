import { type ConnectionOptions, WaitingError, Worker, type WorkerOptions } from 'bullmq';
import { z } from 'zod';
import { configInvalid } from '../errors/config-invalid.js';
import { toLogger } from '../util/logger.js';
import type { IngestionJobData } from './job-data.js';
import {
  checkLeaseFitsLock,
  createIngestionProcessor,
  type IngestionJobResult,
  type IngestionProcessorOptions,
  LOCK_LOST_REASON,
  SHUTDOWN_REASON,
} from './processor.js';

/** Options of {@link createIngestionWorker}. @public */
export interface IngestionWorkerOptions extends Omit<IngestionProcessorOptions, 'lockDurationMs'> {
  /** Queue name (the producer's). */
  queueName: string;
  /** Redis connection options or an ioredis instance (BullMQ needs `maxRetriesPerRequest: null` on it). */
  connection: ConnectionOptions;
  /** Redis key prefix of the queue. @defaultValue 'bull' */
  prefix?: string;
  /** Units this worker runs at once. @defaultValue 1 */
  concurrency?: number;
  /**
   * BullMQ job lock, renewed every half of it while a job runs. Also the default lease TTL of the runs (which may
   * not be longer). A dead worker's job is picked up again between `lockDurationMs` and
   * `lockDurationMs + stalledIntervalMs` after it died. @defaultValue 30000
   */
  lockDurationMs?: number;
  /** How often this worker looks for stalled jobs (jobs whose lock expired). @defaultValue `lockDurationMs` */
  stalledIntervalMs?: number;
  /** How many times a job may stall (its worker died) before BullMQ fails it. @defaultValue 2 */
  maxStalledCount?: number;
  /** Other BullMQ worker options (e.g. `limiter`, `removeOnComplete`, `name`). */
  workerOptions?: Omit<
    WorkerOptions,
    'connection' | 'prefix' | 'concurrency' | 'lockDuration' | 'stalledInterval' | 'maxStalledCount'
  >;
  /**
   * Close the worker gracefully on these process signals (once): running runs are stopped and their jobs handed
   * back to the queue. `false` leaves signals to the host. @defaultValue false
   */
  handleSignals?: NodeJS.Signals[] | false;
}

/** A running ingestion worker. @public */
export interface IngestionWorker {
  /** The BullMQ worker (events: `completed`, `failed`, `progress`, `stalled`, …). */
  readonly worker: Worker<IngestionJobData, IngestionJobResult>;
  /** The lock duration in effect (ms). */
  readonly lockDurationMs: number;
  /**
   * Graceful shutdown: stop every running run (within one batch; lease released, staged data kept), hand its
   * job back to the queue for another worker, then close the BullMQ worker. Idempotent.
   */
  close(): Promise<void>;
  /** `await using w = createIngestionWorker(…)`: {@link IngestionWorker.close} at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void>;
  /**
   * Cancel one running job: its run stops and is left resumable, the job fails without retry
   * (`[aborted] … cancelled`). Returns false when this worker does not run that job.
   */
  cancel(jobId: string, reason?: string): boolean;
}

const workerSchema = z.object({
  queueName: z.string({ error: 'Expected `queueName` to be a string' }).min(1),
  connection: z.custom((v) => v != null && typeof v === 'object', {
    error: 'Expected `connection` to be Redis connection options or an ioredis instance',
  }),
  prefix: z.string().min(1).optional(),
  concurrency: z.number().int().positive().optional(),
  lockDurationMs: z.number().int().min(1000, { error: 'Expected `lockDurationMs` to be at least 1000' }).optional(),
  stalledIntervalMs: z.number().int().positive().optional(),
  maxStalledCount: z.number().int().nonnegative().optional(),
  handleSignals: z.union([z.literal(false), z.array(z.string())]).optional(),
});

/**
 * Start a BullMQ worker that runs ingestion jobs (see {@link createIngestionProcessor}) with the lock and the lease
 * sized together: the lease TTL defaults to the lock duration and may not exceed it, both are renewed while a long
 * slice imports (BullMQ every `lockDurationMs / 2`, the lease every third of its TTL), and a job whose lock
 * could not be renewed has its run stopped, because BullMQ will hand it to another worker.
 *
 * @example
 * ```ts
 * import { createIngestionWorker } from '@nucleus/ingestion/bullmq';
 *
 * const ingestion = createIngestionWorker({
 *   queueName: 'ingestion',
 *   connection: { host: '127.0.0.1', port: 6379, maxRetriesPerRequest: null },
 *   registry, staging, kv, endpoints, defaultSinkId: 'lake',
 *   lockDurationMs: 30_000,
 *   handleSignals: ['SIGTERM', 'SIGINT'],
 * });
 * ingestion.worker.on('failed', (job, err) => console.error(job?.id, err.message));
 * ```
 * @throws IngestError `config_invalid` for malformed options or a lease longer than the lock
 * @public
 */
export function createIngestionWorker(options: IngestionWorkerOptions): IngestionWorker {
  const parsed = workerSchema.safeParse(options);
  if (!parsed.success) throw configInvalid('Invalid createIngestionWorker options', parsed.error.issues);
  const lockDurationMs = options.lockDurationMs ?? 30_000;
  if (options.policy?.leaseTtlMs !== undefined) {
    checkLeaseFitsLock(options.policy.leaseTtlMs, lockDurationMs, 'Invalid createIngestionWorker options');
  }
  const logger = toLogger(options.logger);
  const run = createIngestionProcessor({ ...options, lockDurationMs });
  let closing: Promise<void> | undefined;
  // A job fetched while the worker is closing goes straight back to the queue.
  const processor: typeof run = async (job, token, signal) => {
    if (closing) {
      await job.moveToWait(token);
      throw new WaitingError();
    }
    return run(job, token, signal);
  };
  const worker = new Worker<IngestionJobData, IngestionJobResult>(options.queueName, processor, {
    ...options.workerOptions,
    connection: options.connection,
    ...(options.prefix ? { prefix: options.prefix } : {}),
    concurrency: options.concurrency ?? 1,
    lockDuration: lockDurationMs,
    stalledInterval: options.stalledIntervalMs ?? lockDurationMs,
    maxStalledCount: options.maxStalledCount ?? 2,
  });
  // A lock BullMQ could not renew is gone: the stalled checker will give the job to another worker. Stop our run
  // now, so its lease is released for that worker instead of lapsing a TTL later.
  worker.on('lockRenewalFailed', (jobIds: string[]) => {
    for (const id of jobIds) {
      if (worker.cancelJob(id, LOCK_LOST_REASON)) logger.warn('job lock lost; stopping its run', { jobId: id });
    }
  });
  worker.on('error', (err) => logger.error('bullmq worker error', { error: String(err?.message ?? err) }));

  const close = () => {
    closing ??= (async () => {
      worker.cancelAllJobs(SHUTDOWN_REASON);
      await worker.close();
    })();
    return closing;
  };
  if (options.handleSignals) {
    for (const sig of options.handleSignals) {
      process.once(sig, () => {
        logger.info(`received ${sig}: stopping the running runs and closing the worker`);
        void close();
      });
    }
  }
  return {
    worker,
    lockDurationMs,
    close,
    [Symbol.asyncDispose]: close,
    cancel: (jobId, reason) => worker.cancelJob(jobId, reason ?? 'cancelled'),
  };
}
