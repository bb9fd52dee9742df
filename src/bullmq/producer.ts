import type { JobSchedulerTemplateOptions, JobsOptions, Queue } from 'bullmq';
import { z } from 'zod';
import type { IngestionContext, Logger } from '../contracts/context.js';
import type { UnitMetadata } from '../contracts/endpoint.js';
import type { SourceEndpoint } from '../contracts/source-endpoint.js';
import { configInvalid } from '../errors/config-invalid.js';
import { IngestError } from '../errors/ingest-error.js';
import { type EndpointWiring, openEndpoint } from '../host/endpoints.js';
import { logFailure } from '../util/best-effort.js';
import { noopLogger, toLogger } from '../util/logger.js';
import { type IngestionJobData, ingestionJobId, parseJobData } from './job-data.js';

/** The BullMQ job name of ingestion jobs. @public */
export const INGESTION_JOB_NAME = 'ingest-unit';

/** Options of {@link IngestionProducer}. @public */
export interface IngestionProducerOptions extends Partial<EndpointWiring> {
  /** The BullMQ queue the workers consume (injected; the producer never closes it). */
  queue: Queue;
  /**
   * Options of every job, over the defaults: `attempts: 5`, exponential `backoff` from 5 s, `removeOnComplete: true`
   * and `removeOnFail: { age: 7 days }`. A unit's job id is always derived from the unit ({@link ingestionJobId}).
   */
  jobOptions?: Omit<JobsOptions, 'jobId'>;
  logger?: Logger | Pick<Console, 'debug' | 'info' | 'warn' | 'error'>;
}

/** How often a unit runs: every `every` ms, or on a cron `pattern` (with optional `tz`). @public */
export interface UnitSchedule {
  /** Interval in milliseconds (exclusive with `pattern`). */
  every?: number;
  /** Cron expression, 5 fields or 6 with leading seconds (exclusive with `every`). */
  pattern?: string;
  /** Time zone of `pattern` (IANA name). */
  tz?: string;
  startDate?: Date | string | number;
  endDate?: Date | string | number;
  /** Stop after this many runs. */
  limit?: number;
  /** With `pattern`: also run once right away. */
  immediately?: boolean;
}

/** Outcome of enqueuing one unit. @public */
export interface EnqueueResult {
  jobId: string;
  unitId: string;
  /** False when the unit already had a waiting, delayed or running job (nothing was added). */
  added: boolean;
  /** State of the job that was already there. */
  state?: string;
}

/** Options of {@link IngestionProducer.enqueueEndpoint}. @public */
export interface EnqueueEndpointOptions extends Omit<IngestionJobData, 'unitId'> {
  /** The source to list units from; defaults to one created through the registry from `endpointId`. */
  source?: SourceEndpoint<any>;
  /**
   * Per unit: `false` skips it, an object adds job fields (e.g. `{ disposition: 'merge', primaryKey: ['id'] }`).
   * @defaultValue every unit, with the shared fields
   */
  forUnit?: (unit: UnitMetadata) => false | Partial<Omit<IngestionJobData, 'endpointId' | 'unitId'>> | undefined;
  /** Schedule every unit instead of enqueuing it once. */
  schedule?: UnitSchedule;
  signal?: AbortSignal;
}

const scheduleSchema = z
  .object({
    every: z.number().int().positive().optional(),
    pattern: z.string().min(1).optional(),
    tz: z.string().min(1).optional(),
    startDate: z.union([z.date(), z.string(), z.number()]).optional(),
    endDate: z.union([z.date(), z.string(), z.number()]).optional(),
    limit: z.number().int().positive().optional(),
    immediately: z.boolean().optional(),
  })
  .strict()
  .refine((s) => (s.every === undefined) !== (s.pattern === undefined), {
    error: 'Expected exactly one of `every` (ms) and `pattern` (cron)',
  });

const DEFAULT_JOB_OPTIONS: JobsOptions = {
  attempts: 5,
  backoff: { type: 'exponential', delay: 5_000 },
  removeOnComplete: true,
  removeOnFail: { age: 7 * 24 * 3600 },
};

/**
 * Puts ingestion units on a BullMQ queue: one job per unit (its id derived from the unit, so a unit is never queued
 * twice at once), repeatable schedules per unit (BullMQ job schedulers: every N ms or cron), and fan-out of every
 * unit of a source endpoint (from its `collectMetadata`). Jobs carry ids only ({@link IngestionJobData}).
 *
 * @example
 * ```ts
 * import { Queue } from 'bullmq';
 * import { IngestionProducer } from '@nucleus/ingestion/bullmq';
 *
 * const producer = new IngestionProducer({ queue: new Queue('ingestion', { connection }) });
 * await producer.enqueueUnit({ endpointId: 'warehouse', unitId: 'public.orders', sinkId: 'lake' });
 * await producer.scheduleUnit({ endpointId: 'warehouse', unitId: 'public.users', sinkId: 'lake' }, { pattern: '0 * * * *' });
 * ```
 * @public
 */
export class IngestionProducer {
  readonly #queue: Queue;
  readonly #jobOptions: JobsOptions;
  readonly #wiring: Partial<EndpointWiring>;
  readonly #logger: Logger;

  /** @throws IngestError `config_invalid` when `queue` is not a BullMQ queue */
  constructor(options: IngestionProducerOptions) {
    const q = options?.queue as Partial<Queue> | undefined;
    if (!q || typeof q.add !== 'function' || typeof q.upsertJobScheduler !== 'function') {
      throw new IngestError('config_invalid', 'Invalid IngestionProducer options: queue: Expected a BullMQ Queue');
    }
    this.#queue = options.queue;
    this.#jobOptions = { ...DEFAULT_JOB_OPTIONS, ...options.jobOptions };
    this.#wiring = options;
    this.#logger = options.logger ? toLogger(options.logger) : noopLogger;
  }

  /**
   * Queue one run of a unit. When the unit already has a job that is waiting, delayed or running, nothing is added
   * (`added: false`); a finished job of the unit still kept by BullMQ is removed first, so the unit runs again.
   * @throws IngestError `config_invalid` for invalid job data (an unknown field, a credential-like value)
   */
  async enqueueUnit(data: IngestionJobData, opts: { priority?: number; delay?: number } = {}): Promise<EnqueueResult> {
    const job = parseJobData(data);
    const jobId = ingestionJobId(job);
    const existing = await this.#queue.getJob(jobId);
    if (existing) {
      const state = await existing.getState();
      if (state !== 'completed' && state !== 'failed' && state !== 'unknown') {
        return { jobId, unitId: job.unitId, added: false, state };
      }
      await existing
        .remove()
        .catch(logFailure(this.#logger, `removing the finished job ${jobId} before enqueueing again`));
    }
    const added = await this.#queue.add(INGESTION_JOB_NAME, job, { ...this.#jobOptions, ...opts, jobId });
    return { jobId: added.id ?? jobId, unitId: job.unitId, added: true };
  }

  /**
   * Run a unit on a schedule (a BullMQ job scheduler named by the unit's job id; calling again updates it).
   * A tick that finds the unit still running is skipped.
   * @throws IngestError `config_invalid` for invalid job data or schedule
   */
  async scheduleUnit(data: IngestionJobData, schedule: UnitSchedule): Promise<{ schedulerId: string }> {
    const job = parseJobData(data);
    const res = scheduleSchema.safeParse(schedule);
    if (!res.success) throw configInvalid('Invalid schedule', res.error.issues);
    const schedulerId = ingestionJobId(job);
    const {
      jobId: _j,
      delay: _d,
      deduplication: _x,
      ...template
    } = this.#jobOptions as JobsOptions & { repeat?: unknown };
    delete (template as { repeat?: unknown }).repeat;
    await this.#queue.upsertJobScheduler(schedulerId, res.data, {
      name: INGESTION_JOB_NAME,
      data: job,
      opts: template as JobSchedulerTemplateOptions,
    });
    return { schedulerId };
  }

  /** Remove a unit's schedule. Returns false when it had none. */
  async unscheduleUnit(
    unit: Pick<IngestionJobData, 'workspaceId' | 'endpointId' | 'unitId' | 'sinkId'>,
  ): Promise<boolean> {
    return this.#queue.removeJobScheduler(ingestionJobId(unit));
  }

  /**
   * Enqueue (or schedule) every unit a source endpoint offers, as listed by its `collectMetadata`.
   * @throws IngestError `unsupported` when the source cannot list its units, `config_invalid` without a source or
   * a registry to create it
   */
  async enqueueEndpoint(options: EnqueueEndpointOptions): Promise<EnqueueResult[]> {
    const { source: given, forUnit, schedule, signal, ...shared } = options;
    let source = given;
    if (!source) {
      const { registry } = this.#wiring;
      if (!registry) {
        throw new IngestError(
          'config_invalid',
          'enqueueEndpoint needs `source`, or a `registry` in the producer options',
        );
      }
      source = await openEndpoint(this.#wiring as EndpointWiring, shared.endpointId, 'source');
    }
    try {
      if (typeof source.collectMetadata !== 'function') {
        throw new IngestError(
          'unsupported',
          `Source endpoint "${shared.endpointId}" cannot list its units (no collectMetadata)`,
        );
      }
      const ctx: IngestionContext = {
        workspaceId: shared.workspaceId ?? 'default',
        endpointId: shared.endpointId,
        unitId: '',
        runId: 'collect-metadata',
        vendor: shared.vendor ?? source.descriptor.id,
        signal: signal ?? new AbortController().signal,
        logger: this.#logger,
        emit: () => {},
      };
      const units = await source.collectMetadata(ctx);
      const out: EnqueueResult[] = [];
      for (const meta of units) {
        const extra = forUnit ? forUnit(meta) : undefined;
        if (extra === false) continue;
        const data: IngestionJobData = { ...shared, ...extra, unitId: meta.unitId };
        if (schedule) {
          const { schedulerId } = await this.scheduleUnit(data, schedule);
          out.push({ jobId: schedulerId, unitId: meta.unitId, added: true });
        } else {
          out.push(await this.enqueueUnit(data));
        }
      }
      return out;
    } finally {
      if (!given) await source.close?.().catch(logFailure(this.#logger, 'closing the source after scheduling'));
    }
  }
}
