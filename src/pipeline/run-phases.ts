import type { Disposition, ImportResult, SinkEndpoint } from '../contracts/sink-endpoint.js';
import type { SourceEndpoint } from '../contracts/source-endpoint.js';
import type { StagingSession } from '../contracts/staging.js';
import type { Json } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { withSpan } from '../telemetry/tracing.js';
import { sleep } from '../util/abort.js';
import { backoffDelay, isRetryable, markRetried } from '../util/retry.js';
import { exportPhase } from './export-phase.js';
import { importPhase } from './import-phase.js';
import { OverlappedImport } from './overlapped-import.js';
import { assertSlices, retryEvent, stagingStep } from './phase-support.js';
import type { RunContext } from './run-context.js';
import { nextStep, type StepName, sameJson } from './run-policy.js';
import type { RunState } from './run-state.js';
import { readSchemaHistory, recordSchema, SchemaGate, versionSchema } from './schema-history.js';

/*
 * The steps of a run: the one function that moves a run out of each pending phase (the table that says which step
 * a phase has, and where it may go, is `RUN_PHASES` in run-policy.ts; docs/decisions/0004-run-phases.md).
 *
 * Modelled on dlt's load-package job states (new → started → completed/failed, a package dropped as a whole) and
 * Kafka Connect's split of `put` (hand records to the sink, idempotently) from `preCommit` (only then move the
 * offset). Every step ends with one run-state write through `RunStateStore`, which checks the move against the table.
 */

/**
 * One call's run, as the steps see it; owned by the `drive()` call that made it. `state` changes only through
 * `RunStateStore` (its one writer); `session` is the session the run holds now (the export may replace it).
 * @internal
 */
export interface RunCall {
  readonly rc: RunContext;
  readonly state: RunState;
  session: StagingSession;
  readonly source?: SourceEndpoint<any>;
  readonly sink?: SinkEndpoint;
  readonly resumed: boolean;
  /** How the sink imports (the recorded one, or the call's). */
  readonly disposition: Disposition;
  readonly primaryKey?: string[];
  /** `runUnit`: an incremental run with nothing new ends at once, leaving the checkpoint untouched. */
  readonly skipEmpty: boolean;
  /** Set when the session was destroyed (an empty run). */
  sessionGone?: boolean;
  /** Import attempts an overlapped import already spent of the phase's retry budget (ADR 0017). */
  importAttemptsUsed?: number;
}

/** The function behind each step name of the table. */
const STEPS: Readonly<Record<StepName, (call: RunCall) => Promise<void>>> = {
  export: exportStep,
  import: importStep,
  commit: commitStep,
};

/**
 * Move the run forward until it is finished (`committed`), or — for `exportUnit` — until its export is done.
 * @throws IngestError whatever a step throws
 */
export async function advance(call: RunCall, until: 'exported' | 'committed'): Promise<void> {
  for (;;) {
    const phase = call.state.phase;
    const step = nextStep(phase, until);
    if (!step) return;
    await STEPS[step](call);
    if (call.state.phase === phase) {
      throw new IngestError('internal', `Step of phase ${phase} did not move run ${call.state.runId}`);
    }
  }
}

/**
 * exporting → exported (sealed), or → committed when an incremental run found nothing new. An overlapped run
 * (ADR 0018) moves to `streaming` once its plan is known and hands each staged slice to the sink at once; once sealed
 * and imported it moves straight to `imported` — or, when its import failed, to `importing`, whose step imports again
 * from the sealed session (the sink's ledger skips what it committed).
 */
async function exportStep(call: RunCall): Promise<void> {
  const { rc } = call;
  // the unit's schema contract: compared with the schema history before anything is staged (schema-history.ts)
  const gate = new SchemaGate(rc, rc.opts.schemaContract, call.disposition);
  // read the history before the source holds a connection: a source sharing a pool of one with the KvStore would
  // otherwise wait on its own connection for the first batch's decision
  await gate.prime();
  const overlap = OverlappedImport.of(call);
  try {
    await exportAndSeal(call, gate, overlap);
  } catch (err) {
    // no sink transaction outlives a failed export
    await overlap?.cancel(err);
    throw err;
  }
}

async function exportAndSeal(call: RunCall, gate: SchemaGate, overlap: OverlappedImport | undefined): Promise<void> {
  const { rc, state } = call;
  const out = await exportPhase(
    rc,
    gate.wrap(call.source!),
    call.session,
    state,
    call.resumed,
    (plan) =>
      rc.stateStore.save(state, 'exporting', {
        plan: plan.slices,
        plannedCheckpoint: (plan.checkpoint ?? null) as Json | null,
        ...(plan.schema ? { schema: plan.schema } : {}),
      }),
    overlap?.hooks,
  );
  call.session = out.session;
  const session = out.session;
  rc.throwIfAborted('Export');
  const staged = await stagingStep(rc, 'export', () => session.describe(), 'describing the session');

  if (
    call.skipEmpty &&
    state.mode === 'incremental' &&
    call.disposition !== 'replace' &&
    staged.rows === 0 &&
    out.rowsRejected === 0
  ) {
    // the empty slices an overlapped import was handed hold no row; let it finish before the session goes
    if (overlap?.started) await overlap.finish();
    // Nothing new: stage nothing, write no checkpoint. The run is finished, so its id keeps its result.
    await stagingStep(rc, 'export', () => session.destroy(), 'removing the empty session');
    call.sessionGone = true;
    await rc.stateStore.finishCommitted(state, {
      empty: true,
      rowsExported: 0,
      rowsImported: 0,
      slices: 0,
      bytesStaged: 0,
      committedCheckpoint: rc.checkpoint.value,
    });
    rc.emit({ type: 'export.completed', rowsExported: 0, slices: 0, bytesStaged: 0 });
    rc.logger.info('nothing new since the checkpoint; nothing staged, checkpoint left as it was', {
      runId: state.runId,
    });
    await confirmUpstream(rc, call.source, rc.checkpoint.value);
    return;
  }

  // Fencing: a holder paused past its lease stops here, before it seals (renewing is a compare-and-set).
  await rc.lease.renew();
  await stagingStep(rc, 'export', () => session.seal({ expectedSlices: out.expectedSlices }), 'sealing the session');
  const desc = await stagingStep(rc, 'export', () => session.describe(), 'describing the session');
  assertSlices(rc, desc, out.expectedSlices, 'sealed');
  rc.emit({ type: 'export.completed', rowsExported: desc.rows, slices: desc.slices.length, bytesStaged: desc.bytes });
  const sealed: Partial<RunState> = {
    plannedCheckpoint: state.plan ? (state.plannedCheckpoint ?? null) : out.plannedCheckpoint,
    rowsExported: desc.rows,
    slices: desc.slices.length,
    bytesStaged: desc.bytes,
    sealedSlices: desc.slices.map((s) => ({ index: s.index, rows: s.rows, ...(s.sha256 ? { sha256: s.sha256 } : {}) })),
    ...(out.rowsRejected > 0 ? { rowsRejected: out.rowsRejected } : {}),
  };
  if (overlap?.started) {
    let imported: ImportResult;
    try {
      imported = await overlap.finish();
    } catch (err) {
      // The sink may hold some slices: the import step imports again from the sealed session, verifying it whole,
      // as the second attempt of the phase's one retry budget (ADR 0017) — or the run fails and resumes there.
      await rc.stateStore.save(state, 'importing', sealed);
      if (!isRetryable(err) || rc.signal.aborted || rc.policy.retry.maxAttempts <= 1) {
        if (isRetryable(err) && rc.policy.retry.maxAttempts > 1) markRetried(err, 'phase', 1);
        throw err;
      }
      const delayMs = backoffDelay(1, rc.policy.retry);
      retryEvent(rc, 'import', { attempt: 1, delayMs, error: err });
      await sleep(delayMs, rc.signal);
      call.importAttemptsUsed = 1;
      return;
    }
    await rc.stateStore.save(state, 'imported', { ...sealed, rowsImported: imported.rowsImported });
    return;
  }
  // a run that streamed before (resumed without overlap): the sink may hold some of it
  await rc.stateStore.save(state, state.phase === 'streaming' ? 'importing' : 'exported', sealed);
}

/** exported | importing → imported: the sink takes the sealed slices (idempotent per run and slice). */
async function importStep(call: RunCall): Promise<void> {
  const { rc, state } = call;
  await rc.stateStore.save(state, 'importing', {
    disposition: call.disposition,
    ...(call.primaryKey ? { primaryKey: call.primaryKey } : {}),
  });
  const history = await readSchemaHistory(rc.opts.kv, rc.cpKey);
  const imported = await importPhase(rc, call.sink!, call.session, {
    ...(history ? { previousSchema: versionSchema(history.current) } : {}),
    disposition: call.disposition,
    ...(call.primaryKey ? { primaryKey: call.primaryKey } : {}),
    ...(state.sealedSlices ? { sealedSlices: state.sealedSlices } : {}),
    ...(state.schema ? { schema: state.schema } : {}),
    ...(call.importAttemptsUsed ? { attemptsUsed: call.importAttemptsUsed } : {}),
  });
  await rc.stateStore.save(state, 'imported', {
    rowsImported: imported.result.rowsImported,
    rowsExported: imported.rowsStaged,
    slices: imported.slices,
    bytesStaged: imported.bytesStaged,
  });
}

/** imported → committed: renew the lease (fencing), write the checkpoint, then the receipt and run state. */
async function commitStep(call: RunCall): Promise<void> {
  const { rc, state, session } = call;
  await withSpan('ingestion.commit', rc.attrs(), async () => {
    rc.throwIfAborted('Commit');
    // Fencing: renewing the lease is a compare-and-set on our token; a stale holder stops here.
    await rc.lease.renew();
    let staged = state.schema;
    if (state.sealedSlices) {
      const desc = await stagingStep(rc, 'commit', () => session.describe(), 'describing the session');
      assertSlices(rc, desc, state.sealedSlices, 'imported');
      staged = desc.schema ?? staged;
    }
    const planned = state.plannedCheckpoint ?? null;
    let checkpoint: Json | null = rc.checkpoint.value;
    let version = rc.checkpoint.version ?? 0;
    if (planned !== null && !(rc.checkpoint.version !== null && sameJson(planned, rc.checkpoint.value))) {
      try {
        const entry = await rc.opts.kv.put(rc.cpKey, planned, { expectedVersion: rc.checkpoint.version });
        checkpoint = planned;
        version = entry.version;
      } catch (err) {
        if (IngestError.is(err, 'kv_conflict')) {
          throw new IngestError(
            'lease_lost',
            `Checkpoint of ${rc.where()} moved under this run; its commit is fenced off`,
            { cause: err },
          );
        }
        throw IngestError.wrap(err, 'kv_failed', `Could not write the checkpoint (${rc.where()})`);
      }
    }
    await rc.stateStore.finishCommitted(state, { committedCheckpoint: checkpoint });
    rc.emit({ type: 'checkpoint.committed', checkpoint, version });
    // the schema the sink now holds becomes the unit's recorded one (best effort: a miss re-detects the change)
    if (staged?.fields.length)
      await recordSchema(rc.opts.kv, rc.cpKey, staged, rc.runId).catch((err) =>
        rc.logger.warn('could not record the schema history; the next run compares with the older one', {
          error: String(err),
        }),
      );
    await markLanded(rc, session);
    await confirmUpstream(rc, call.source, checkpoint);
  });
}

/**
 * Tell the source that everything up to `checkpoint` is durable in the sink and in the KvStore
 * ({@link SourceEndpoint.confirm}). The run has committed: a failure is logged, and the source confirms again at the
 * start of its next run.
 * @internal
 */
export async function confirmUpstream(
  rc: RunContext,
  source: SourceEndpoint<any> | undefined,
  checkpoint: Json | null,
): Promise<void> {
  if (!source?.confirm) return;
  try {
    await source.confirm({ unitId: rc.unitId, checkpoint }, rc.ctx());
  } catch (err) {
    rc.logger.warn('the source could not confirm the committed checkpoint upstream; its next run confirms it', {
      error: String(err),
    });
  }
}

/**
 * Write `_LANDED` on a committed run's session. The run is committed: a `_LANDED` that still cannot be written only
 * leaves the session to the sweep's abandon rule.
 * @internal
 */
export async function markLanded(rc: RunContext, session: StagingSession): Promise<void> {
  await stagingStep(rc, 'commit', () => session.markLanded(), 'writing _LANDED').catch((err) =>
    rc.logger.warn('could not write _LANDED (the sweep will treat the run as abandoned)', { error: String(err) }),
  );
}
