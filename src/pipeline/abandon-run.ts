import { z } from 'zod';
import type { Logger, RunPhase } from '../contracts/context.js';
import type { KvStore } from '../contracts/kv-store.js';
import type { StagingProvider, StagingSessionRef } from '../contracts/staging.js';
import type { Json } from '../contracts/values.js';
import { configInvalid } from '../errors/config-invalid.js';
import { IngestError } from '../errors/ingest-error.js';
import { logFailure } from '../util/best-effort.js';
import type { UnitRef } from './options.js';
import { stagingStep } from './phase-support.js';
import { RunContext } from './run-context.js';
import { canMove, isPending, RUN_PHASES } from './run-policy.js';

/** Options of {@link abandonRun}. @public */
export interface AbandonRunOptions {
  kv: KvStore;
  unit: UnitRef;
  /**
   * The staging provider the run staged into: its session is marked `_ABANDONED`, so `sweepStaging` deletes it
   * after `olderThanMs` (like a landed one). Without it, the sweep deletes the session after `abandonedAfterMs`.
   */
  staging?: StagingProvider;
  /** Abandon only if the pending run has this id (refused otherwise). */
  runId?: string;
  /** Why, kept in the run state (no secrets, please). */
  reason?: string;
  /** Identifies this worker in the lease and the run state. @defaultValue `<hostname>:<pid>` */
  workerId?: string;
  /** Lease lifetime while abandoning. @defaultValue 60000 */
  leaseTtlMs?: number;
  signal?: AbortSignal;
  logger?: Logger;
}

/** What {@link abandonRun} dropped. @public */
export interface AbandonRunResult {
  runId: string;
  /** The phase the run was in. */
  phase: RunPhase;
  /** The unit's checkpoint, unchanged. */
  checkpoint: Json | null;
  checkpointVersion: number | null;
  sessionRef: StagingSessionRef;
  /** The staging session was marked for sweeping (`_ABANDONED`). */
  sessionMarked: boolean;
  /**
   * The run was importing: slices the sink committed before it stopped stay in the target (the next run reads the
   * same rows again from the unchanged checkpoint — harmless with `merge`, duplicates with `append`).
   */
  partlyImported: boolean;
}

const schema = z
  .object({
    kv: z.custom<KvStore>(
      (v) => v != null && ['get', 'put', 'delete', 'list'].every((f) => typeof (v as any)[f] === 'function'),
      { error: 'Expected `kv` to implement get(), put(), delete(), list()' },
    ),
    unit: z.object({
      workspaceId: z.string().min(1).optional(),
      vendor: z.string().min(1).optional(),
      endpointId: z.string().min(1, { error: 'Expected `unit.endpointId` to be non-empty' }),
      unitId: z.string().min(1, { error: 'Expected `unit.unitId` to be non-empty' }),
      sinkId: z.string().min(1).optional(),
    }),
    staging: z
      .custom<StagingProvider>((v) => v != null && typeof (v as any).openSession === 'function', {
        error: 'Expected `staging` to implement openSession()',
      })
      .optional(),
    runId: z.string().min(1).max(512).optional(),
    reason: z.string().max(2000).optional(),
    workerId: z.string().min(1).max(256).optional(),
    leaseTtlMs: z.number().int().min(100).optional(),
    signal: z.custom<AbortSignal>((v) => v instanceof AbortSignal).optional(),
    logger: z.any().optional(),
  })
  .strict();

/**
 * Drop a unit's pending run — e.g. one that fails the same way every time (a poisoned row) — so the next call
 * starts a fresh run. The checkpoint stays where it was; the run state becomes `abandoned`; the run id gets an
 * `abandoned` receipt (a call naming it later is refused with `run_state_invalid`); the staging session is
 * marked for sweeping. Takes the unit's lease, so it is refused while a run is live.
 *
 * A run in phase `imported` cannot be abandoned: the sink has all its rows, and committing is all that is left
 * (run the unit again). A run abandoned while `importing` may have left some slices in the target
 * (`partlyImported`).
 *
 * @example
 * ```ts
 * import { abandonRun } from '@nucleus/ingestion';
 * const dropped = await abandonRun({ kv, staging, unit: { endpointId: 'pg-main', unitId: 'public.orders' } });
 * console.log(`abandoned run ${dropped.runId} in phase ${dropped.phase}`);
 * ```
 * @throws IngestError `config_invalid` for bad options; `run_state_invalid` when there is no pending run, the
 * pending run is not `runId`, or it is `imported`; `lease_held` while a run is live; `kv_failed`
 * @public
 */
export async function abandonRun(opts: AbandonRunOptions): Promise<AbandonRunResult> {
  const parsed = schema.safeParse(opts);
  if (!parsed.success) throw configInvalid('Invalid abandonRun options', parsed.error.issues);
  let rc = await RunContext.create({
    kv: opts.kv,
    unit: opts.unit,
    staging: opts.staging as StagingProvider,
    ...(opts.workerId ? { workerId: opts.workerId } : {}),
    ...(opts.leaseTtlMs ? { policy: { leaseTtlMs: opts.leaseTtlMs } } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.logger ? { logger: opts.logger } : {}),
  }).acquire();
  try {
    const st = rc.loadedState;
    const where = `endpoint ${rc.endpointId}, unit ${rc.unitId}`;
    if (!st || !isPending(st.phase)) {
      throw new IngestError(
        'run_state_invalid',
        `No pending run to abandon for ${where}${st ? ` (the last run, ${st.runId}, is ${st.phase})` : ''}`,
        { details: { phase: st?.phase ?? null, runId: st?.runId ?? null } },
      );
    }
    if (opts.runId !== undefined && opts.runId !== st.runId) {
      throw new IngestError(
        'run_state_invalid',
        `The pending run of ${where} is ${st.runId}, not ${opts.runId}; nothing was abandoned`,
        { details: { runId: st.runId, asked: opts.runId } },
      );
    }
    if (!canMove(st.phase, 'abandoned')) {
      throw new IngestError(
        'run_state_invalid',
        `Run ${st.runId} of ${where} is already imported; run the unit again to commit it (abandoning would load its rows twice)`,
        { details: { runId: st.runId, phase: st.phase } },
      );
    }
    rc = rc.forRun(st.runId);
    await rc.lease.setRunId(st.runId);
    const phase = st.phase;
    const abandoned = {
      at: new Date().toISOString(),
      by: rc.workerId,
      ...(opts.reason !== undefined ? { reason: opts.reason } : {}),
    };
    // The receipt first: once it exists the run id is retired, whatever happens next.
    await rc.stateStore.writeReceipt({ ...st, phase: 'abandoned', abandoned }, 'abandoned');
    await rc.stateStore.save(st, 'abandoned', { abandoned });
    const sessionMarked = await markSession(rc, opts.staging, st.sessionRef);
    rc.logger.info('run abandoned; checkpoint left where it was', { runId: st.runId, phase, sessionMarked });
    await rc.close(true);
    return {
      runId: st.runId,
      phase,
      checkpoint: rc.checkpoint.value,
      checkpointVersion: rc.checkpoint.version,
      sessionRef: st.sessionRef,
      sessionMarked,
      partlyImported: RUN_PHASES[phase].inSink === 'some',
    };
  } catch (err) {
    await rc.close(true);
    throw err;
  }
}

/** Mark the run's session `_ABANDONED`; a session that is gone (or a provider without markers) is not an error. */
async function markSession(
  rc: RunContext,
  staging: StagingProvider | undefined,
  ref: StagingSessionRef,
): Promise<boolean> {
  if (!staging || ref.provider !== staging.id) return false;
  try {
    // each step under the default policy.retry, as the run's own staging steps (a transient S3 fault is retried)
    const session = await stagingStep(rc, 'commit', () => staging.openSession(ref), 'opening the session to abandon');
    try {
      if (session.fence) {
        await stagingStep(rc, 'commit', () => session.fence!(rc.lease.epoch), 'claiming the session to abandon');
      }
      if (!session.markAbandoned) return false;
      await stagingStep(rc, 'commit', () => session.markAbandoned!(), 'marking the session _ABANDONED');
      return true;
    } finally {
      await session.close().catch(logFailure(rc.logger, 'closing the abandoned session'));
    }
  } catch (err) {
    if (IngestError.is(err, 'not_found')) return false;
    rc.logger.warn('could not mark the abandoned session for sweeping (the sweep removes it after abandonedAfterMs)', {
      error: err instanceof Error ? err.message : String(err),
    });
    return false;
  }
}
