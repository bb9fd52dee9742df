import type { Span } from '@opentelemetry/api';
import type { SinkEndpoint } from '../contracts/sink-endpoint.js';
import type { SourceEndpoint } from '../contracts/source-endpoint.js';
import type { StagingSession } from '../contracts/staging.js';
import type { Json } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { withSpan } from '../telemetry/tracing.js';
import { logFailure } from '../util/best-effort.js';
import {
  type ExportOptions,
  type ExportResult,
  type ImportOptions,
  parseOptions,
  type RunUnitOptions,
  type RunUnitResult,
} from './options.js';
import { stagingStep } from './phase-support.js';
import { lostProcessLocalRun, PROCESS_ID } from './process-local.js';
import { RunContext } from './run-context.js';
import { advance, confirmUpstream, markLanded, type RunCall } from './run-phases.js';
import {
  type CallFacts,
  decide,
  FIRST_PHASE,
  type Refusal,
  RUN_PHASES,
  receiptNeeded,
  type Start,
} from './run-policy.js';
import type { RunState } from './run-state.js';

/**
 * Run one unit end to end: export from the source into a staging session, import into the sink, then
 * move the checkpoint — only after the sink returned. A run that failed or crashed after its export is
 * resumed from its staged data (on any worker) by the next call for the same unit.
 *
 * @example
 * ```ts
 * import { MemoryKvStore, MemoryStagingProvider, runUnit } from '@nucleus/ingestion';
 * import { MemorySink, MemorySource } from '@nucleus/ingestion/testing';
 *
 * const result = await runUnit({
 *   source: new MemorySource({ units: { users: { rows: [{ id: 1 }], cursorField: 'id' } } }),
 *   sink: new MemorySink(),
 *   staging: new MemoryStagingProvider(),
 *   kv: new MemoryKvStore(),
 *   unit: { endpointId: 'demo', unitId: 'users' },
 * });
 * console.log(result.stats.rowsImported, result.newCheckpoint);
 * ```
 *
 * Run identity: a call whose `runId` names a run that already committed returns that run's recorded result
 * (`repeated: true`; nothing is read, imported or committed); one that names an abandoned or superseded run is
 * refused with `run_state_invalid`. A run that fails before it staged a row leaves no run state and no staging
 * behind; an incremental run that finds nothing new stages nothing and leaves the checkpoint entry untouched.
 * @throws IngestError `config_invalid` (before any I/O; also for a unit the source does not have, before any
 * state is written), `lease_held`, `source_failed`, `staging_failed`, `staging_corrupt`, `sink_failed`,
 * `row_rejected`, `lease_lost`, `aborted`, `run_state_invalid` (a reused run id; a resume that asks for another
 * disposition or primary key than the pending run recorded)
 * @public
 */
export async function runUnit(opts: RunUnitOptions): Promise<RunUnitResult> {
  parseOptions('run', opts);
  return drive(opts, { source: opts.source, sink: opts.sink, until: 'committed' }) as Promise<RunUnitResult>;
}

/**
 * Export only: read the source into a sealed staging session and record it in the run state, so
 * {@link importUnit} (in another process, on another worker) can import and commit it.
 * @throws IngestError as {@link runUnit}
 * @public
 */
export async function exportUnit(opts: ExportOptions): Promise<ExportResult> {
  parseOptions('export', opts);
  return drive(opts, { source: opts.source, until: 'exported' }) as Promise<ExportResult>;
}

/**
 * Import and commit a session exported by {@link exportUnit} (taken from the unit's run state, or the
 * given `sessionRef`). Calling it again after it committed returns the same result without importing twice.
 * @throws IngestError `run_state_invalid` when there is no finished export to import, and as {@link runUnit}
 * @public
 */
export async function importUnit(opts: ImportOptions): Promise<RunUnitResult> {
  parseOptions('import', opts);
  return drive(opts, {
    sink: opts.sink,
    until: 'committed',
    sessionRunId: opts.sessionRef?.runId ?? runIdOfHandles(opts),
  }) as Promise<RunUnitResult>;
}

interface DriveArgs {
  source?: SourceEndpoint<any>;
  sink?: SinkEndpoint;
  until: 'exported' | 'committed';
  /** importUnit: the run the caller means. */
  sessionRunId?: string;
}

type AnyOptions = RunUnitOptions | ExportOptions | ImportOptions;

/** What one call holds, owned by its `drive()`: the context (it adopts the run's id), the session, the run. */
interface Attempt {
  rc: RunContext;
  session?: StagingSession;
  call?: RunCall;
  /** This call started the run (the failure path may remove it), and saved its run state. */
  fresh: boolean;
  saved: boolean;
}

/** Load (lease, checkpoint, run state, a receipt), decide (`decide()`, no I/O), act. */
async function drive(opts: AnyOptions, args: DriveArgs): Promise<RunUnitResult | ExportResult> {
  const unchecked = RunContext.create(opts);
  // An unknown unit is refused before the lease is taken or any state is written.
  if (args.source) await checkUnit(unchecked, args.source);
  const run: Attempt = { rc: await unchecked.acquire(), fresh: false, saved: false };
  try {
    const out = await withSpan('ingestion.run', run.rc.attrs(), async (span) => {
      const { checkpoint, stateStore } = run.rc;
      const loadedState = await discardLostProcessLocal(run.rc);
      const facts = callFacts(opts, args);
      const named = receiptNeeded(loadedState, facts);
      const receipt = named === undefined ? undefined : await stateStore.receipt(named);
      const start = decide({ state: loadedState, receipt }, checkpoint, facts);
      return act(run, start, args, facts, span);
    });
    await run.rc.close(true);
    return out;
  } catch (err) {
    throw await failed(run, err);
  } finally {
    await heldSession(run)?.close().catch(logFailure(run.rc.logger, 'closing the staging session'));
  }
}

function callFacts(opts: AnyOptions, args: DriveArgs): CallFacts {
  const { disposition, primaryKey } = opts as RunUnitOptions;
  const incremental = args.source?.descriptor?.capabilities?.includes('ingest.incremental');
  return {
    runId: opts.runId,
    sessionRunId: args.sessionRunId,
    mode: opts.mode ?? (incremental ? 'incremental' : 'full'),
    stagingProvider: opts.staging.id,
    exports: args.source !== undefined,
    imports: args.sink !== undefined,
    disposition,
    primaryKey,
  };
}

/**
 * A pending run whose staging lived in another process's memory cannot resume (its rows are gone): forget it when
 * nothing reached the sink, retire its run id (`superseded` receipt) when some may have; either way the call goes on
 * as if there were no pending run. Returns the run state `decide()` should see.
 */
async function discardLostProcessLocal(rc: RunContext): Promise<RunState | undefined> {
  const loaded = rc.loadedState;
  const how = lostProcessLocalRun(loaded);
  if (!how || !loaded) return loaded;
  if (how === 'supersede') await rc.stateStore.writeReceipt(loaded, 'superseded');
  rc.logger.warn(
    how === 'drop'
      ? "a pending run staged in another process's memory was dropped (nothing of it reached the sink); starting afresh"
      : "a pending run staged in another process's memory was superseded: the sink may hold some of its rows, which the next run imports again under a new run id",
    { runId: loaded.runId, phase: loaded.phase, stagingProvider: loaded.stagingProvider },
  );
  return undefined;
}

/** Act on what `decide()` said: settle the loaded run, refuse, repeat a result, or open the run and advance it. */
async function act(
  run: Attempt,
  start: Start<RunState>,
  args: DriveArgs,
  facts: CallFacts,
  span: Span,
): Promise<RunUnitResult | ExportResult> {
  const imp = run.rc.opts as RunUnitOptions;
  if (start.settle) await settle(run.rc, run.rc.loadedState!, start.settle, args.source);
  if (start.kind === 'refuse') throw refusal(run.rc, start.refusal, start.state, imp);
  if (start.kind === 'repeat') {
    const rc = (run.rc = run.rc.forRun(start.state.runId));
    run.session = await openSession(rc, start.state).catch(() => undefined);
    return result(rc, start.state, run.session, !args.sink, { resumed: true, repeated: true });
  }
  const resumed = start.kind === 'resume';
  let state: RunState;
  if (resumed) {
    run.rc = run.rc.forRun(start.state.runId);
    await run.rc.lease.setRunId(run.rc.runId);
    run.session = await reopen(run.rc, start.state);
    state = start.state;
  } else {
    run.session = await freshSession(run);
    run.fresh = true;
    state = newRunState(run.rc, run.session, facts.mode, args.sink ? imp : undefined);
  }
  const { rc } = run;
  const primaryKey = imp.primaryKey ?? state.primaryKey;
  const call: RunCall = (run.call = {
    rc,
    state,
    session: run.session,
    ...(args.source ? { source: args.source } : {}),
    ...(args.sink ? { sink: args.sink } : {}),
    resumed,
    disposition: imp.disposition ?? state.disposition ?? 'append',
    ...(primaryKey ? { primaryKey } : {}),
    skipEmpty: args.source !== undefined && args.sink !== undefined,
  });
  await rc.stateStore.save(state, state.phase, resumed ? { attempts: state.attempts + 1 } : {});
  run.saved = true;
  span.setAttribute('ingestion.run_id', rc.runId);
  rc.emit({ type: 'run.started', mode: state.mode, checkpoint: rc.checkpoint.value });
  if (resumed) {
    const kept = (await stagingStep(rc, 'export', () => call.session.describe(), 'describing the session')).slices;
    rc.emit({ type: 'run.resumed', phase: state.phase, slicesKept: kept.length });
    rc.logger.info('resuming run from staged data', { runId: rc.runId, phase: state.phase, slicesKept: kept.length });
  }
  await advance(call, args.until);
  return result(rc, state, heldSession(run), !args.sink, { resumed });
}

/**
 * The failure path: the error to report (`lease_lost` when the run was fenced meanwhile); a fresh run that staged
 * nothing is removed, any other records the error in its run state; the lease is released unless fenced.
 */
async function failed(run: Attempt, err: unknown): Promise<IngestError> {
  const { rc } = run;
  const e = await fencedOrSelf(rc, toRunError(rc, err));
  if (e.code !== 'lease_lost') await leaveNothingOrRecord(run, e);
  rc.emit({ type: 'run.failed', code: e.code, message: e.message, retryable: e.retryable });
  rc.logger.error('run failed', { runId: rc.runId, code: e.code, retryable: e.retryable });
  // A failed run releases its lease at once; a fenced one leaves the new holder's lease alone.
  await rc.close(e.code !== 'lease_lost');
  return e;
}

/** The session the call holds now (an empty run destroyed its own). */
function heldSession(run: Attempt): StagingSession | undefined {
  return run.call ? (run.call.sessionGone ? undefined : run.call.session) : run.session;
}

/** A new run's state, in the first phase of the table; a call that imports records how. */
function newRunState(
  rc: RunContext,
  session: StagingSession,
  mode: 'full' | 'incremental',
  imp: RunUnitOptions | undefined,
): RunState {
  const now = new Date().toISOString();
  return {
    runId: rc.runId,
    phase: FIRST_PHASE,
    mode,
    stagingProvider: rc.opts.staging.id,
    sessionRef: session.ref,
    baseCheckpointVersion: rc.checkpoint.version,
    ...(rc.opts.staging.processLocal ? { stagingProcess: PROCESS_ID } : {}),
    ...(imp ? { disposition: imp.disposition ?? 'append' } : {}),
    ...(imp?.primaryKey ? { primaryKey: imp.primaryKey } : {}),
    startedAt: now,
    updatedAt: now,
    attempts: 1,
  };
}

/**
 * A fresh run's session, claimed. A session that already holds slices or markers means the run id was used before
 * (by a store that lost its receipt): refused, and that session is left alone.
 * @throws IngestError `run_state_invalid`, `staging_failed`
 */
async function freshSession(run: Attempt): Promise<StagingSession> {
  const { rc } = run;
  const session = (run.session = await allocate(rc));
  await claim(rc, session);
  const held = await stagingStep(rc, 'export', () => session.describe(), 'describing the session');
  if (held.slices.length === 0 && !held.sealed && !held.landed) return session;
  run.session = undefined;
  await session.close().catch(logFailure(rc.logger, 'closing the refused session'));
  throw new IngestError(
    'run_state_invalid',
    `Run id ${rc.runId} was used before: staging already holds its session (${held.slices.length} slices); use a new run id (${rc.where()})`,
    { details: { runId: rc.runId, slices: held.slices.length, sealed: held.sealed, landed: held.landed } },
  );
}

/**
 * The pending run's session, claimed. A run killed while it re-created its session (unplanned export restart) may
 * leave none behind; where the table says so (nothing was imported from it yet), it exports into a new one.
 */
async function reopen(rc: RunContext, state: RunState): Promise<StagingSession> {
  const session = await openSession(rc, state).catch((err) => {
    if (IngestError.is(err, 'not_found') && RUN_PHASES[state.phase].sessionGone === 'fail')
      throw sessionLost(rc, state, err);
    if (RUN_PHASES[state.phase].sessionGone !== 'export again' || !IngestError.is(err, 'not_found')) throw err;
    rc.logger.warn('pending export has no staging session left; exporting again', { runId: state.runId });
    return allocate(rc);
  });
  await claim(rc, session);
  return session;
}

/**
 * The pending run's staged data is gone (swept, deleted, or kept in another process's memory): it can never resume.
 * The error names the way out — abandon the run — so the unit is not stuck failing the same way for ever.
 */
function sessionLost(rc: RunContext, state: RunState, cause: IngestError): IngestError {
  const unit = JSON.stringify(rc.unitId);
  return new IngestError(
    'not_found',
    `Run ${state.runId} of ${rc.where()} is pending in phase ${state.phase}, but its staging session ${state.sessionRef.sessionId} is gone (${cause.message}); it can never resume. Abandon it — \`abandonRun({ staging, kv, unit })\` or \`nucleus-ingest abandon <pipeline-file> ${unit}\` — then run the unit again: the next run reads the source from the unchanged checkpoint`,
    {
      cause,
      retryable: false,
      details: { runId: state.runId, phase: state.phase, sessionId: state.sessionRef.sessionId, remedy: 'abandonRun' },
    },
  );
}

function openSession(rc: RunContext, state: RunState): Promise<StagingSession> {
  return stagingStep(rc, 'export', () => rc.opts.staging.openSession(state.sessionRef), 'reopening the session');
}

function allocate(rc: RunContext): Promise<StagingSession> {
  return stagingStep(rc, 'export', () => rc.opts.staging.allocateSession(rc.ctx()), 'allocating the session');
}

/**
 * After a failure: a fresh run that staged nothing leaves nothing behind (its session is deleted and the run state
 * it replaced is put back), so the next call starts afresh instead of "resuming" an empty run. Any other pending
 * run records the error and stays resumable.
 */
async function leaveNothingOrRecord(run: Attempt, e: IngestError): Promise<void> {
  const { rc, call } = run;
  const session = heldSession(run);
  if (run.fresh && session && (!call || call.state.phase === FIRST_PHASE)) {
    const staged = await session
      .describe()
      .then((d) => d.slices.length)
      .catch(() => -1);
    if (staged === 0) {
      try {
        await session.destroy();
        if (call && run.saved) await rc.stateStore.rollback(call.state, rc.loadedState);
        rc.logger.info('run failed before it staged a row; nothing left behind', { runId: rc.runId, code: e.code });
        return;
      } catch (cleanup) {
        rc.logger.warn('could not remove the empty run; the next call resumes it', { error: String(cleanup) });
      }
    }
  }
  if (call && run.saved) await rc.stateStore.recordFailure(call.state, e, rc.logger);
}

/** Finish the loaded run as `decide()` said: land it (it committed before it crashed), or retire its id. */
async function settle(
  rc: RunContext,
  loaded: RunState,
  how: 'land' | 'supersede',
  source: SourceEndpoint<any> | undefined,
): Promise<void> {
  if (how === 'supersede') {
    await rc.stateStore.writeReceipt(loaded, 'superseded');
    rc.logger.warn('a pending run was superseded: the checkpoint moved under it', {
      runId: loaded.runId,
      phase: loaded.phase,
    });
    return;
  }
  await rc.stateStore.finishCommitted(loaded, { committedCheckpoint: rc.checkpoint.value });
  const session = await rc.opts.staging.openSession(loaded.sessionRef).catch((err) => {
    logFailure(rc.logger, "reopening the landed run's session to write _LANDED (the sweep treats it as abandoned)", {
      runId: loaded.runId,
    })(err);
    return undefined;
  });
  if (session) {
    await markLanded(rc, session).finally(() =>
      session.close().catch(logFailure(rc.logger, "closing the landed run's session")),
    );
  }
  rc.logger.info('finished the landing of a run that committed before it crashed', { runId: loaded.runId });
  await confirmUpstream(rc, source, rc.checkpoint.value);
}

/** The error a refused call throws (`run_state_invalid`); `state` is the run `decide()` refused over. */
function refusal(rc: RunContext, r: Refusal, state: RunState | undefined, opts: RunUnitOptions): IngestError {
  const st = state!;
  const refuse = (message: string, details?: Record<string, Json>) =>
    new IngestError('run_state_invalid', message, { ...(details ? { details } : {}) });
  const pk = (k: string[] | null | undefined) => (k ? JSON.stringify(k) : 'none');
  switch (r.why) {
    case 'run-id-used':
      return refuse(
        `Run id ${r.runId} names a run that was ${r.outcome} (endpoint ${rc.endpointId}, unit ${rc.unitId}); a run id is used by one run only — start a new run with a new id`,
        { runId: r.runId, outcome: r.outcome },
      );
    case 'other-staging':
      return refuse(
        `Run ${st.runId} of ${rc.where()} is pending in staging provider "${st.stagingProvider}", but this call uses "${rc.opts.staging.id}"; finish it with that provider`,
        { phase: st.phase },
      );
    case 'other-run':
      return refuse(`Session of run ${r.sessionRunId} is not the unit's pending run ${st.runId}`);
    case 'still-exporting':
      return refuse(`Run ${st.runId} has not finished exporting; run exportUnit again to finish it`);
    case 'nothing-exported':
      return refuse(`No exported run to import for ${rc.where()}: run exportUnit first`, {
        phase: rc.loadedState?.phase ?? null,
      });
    case 'import-differs': {
      // Another disposition or primary key could skip slices the sink never loaded that way.
      const issues = r.differs.map((d) =>
        d === 'disposition'
          ? `disposition ${opts.disposition} (the run recorded ${st.disposition})`
          : `primaryKey ${pk(opts.primaryKey)} (the run recorded ${pk(st.primaryKey)})`,
      );
      const { runId, phase, disposition = null, primaryKey = null } = st;
      return refuse(
        `Pending run ${runId} of ${rc.where()} cannot be resumed with ${issues.join(' and ')}; resume it as it was, or drop it with abandonRun()`,
        { runId, phase, disposition, primaryKey },
      );
    }
  }
}

/** Claim the session with this holder's fencing token (a stale holder's later manifest writes are refused). */
async function claim(rc: RunContext, session: StagingSession): Promise<void> {
  if (session.fence) await stagingStep(rc, 'export', () => session.fence!(rc.lease.epoch), 'claiming the session');
}

/**
 * Refuse a unit the source does not have, before any state is written: the source's `checkUnit`, else its
 * `collectMetadata`, else no check. A refused call reports `run.failed` and lets go of the caller's signal.
 * @throws IngestError `config_invalid` for an unknown unit; `source_failed` when the source cannot tell
 */
async function checkUnit(rc: RunContext, source: SourceEndpoint<any>): Promise<void> {
  try {
    if (source.checkUnit) {
      await source.checkUnit(rc.unitId, rc.ctx());
    } else if (source.collectMetadata) {
      const units = await source.collectMetadata(rc.ctx());
      if (!units.some((u) => u.unitId === rc.unitId)) {
        throw new IngestError('not_found', `Source ${rc.endpointId} lists no unit "${rc.unitId}"`);
      }
    }
  } catch (err) {
    const e = toRunError(
      rc,
      IngestError.is(err, 'not_found')
        ? new IngestError(
            'config_invalid',
            `Unknown unit "${rc.unitId}": source ${rc.endpointId} has no such unit (${err.message}); nothing was run or written`,
            { cause: err, details: { endpointId: rc.endpointId, unitId: rc.unitId } },
          )
        : IngestError.wrap(err, 'source_failed', `Source failed while checking unit "${rc.unitId}" (${rc.where()})`),
    );
    rc.emit({ type: 'run.failed', code: e.code, message: e.message, retryable: e.retryable });
    rc.dispose();
    throw e;
  }
}

/** The call's result: an export's (exportUnit) or a run's, which ends the run (`run.completed`). */
async function result(
  rc: RunContext,
  state: RunState,
  session: StagingSession | undefined,
  exportOnly: boolean,
  how: { resumed: boolean; repeated?: boolean },
): Promise<RunUnitResult | ExportResult> {
  const handles = session ? await session.handles().catch(() => []) : [];
  const stats = {
    rowsExported: state.rowsExported ?? 0,
    ...(exportOnly ? {} : { rowsImported: state.rowsImported ?? 0 }),
    ...(state.rowsRejected ? { rowsRejected: state.rowsRejected } : {}),
    slices: state.slices ?? 0,
    bytesStaged: state.bytesStaged ?? 0,
    startedAt: state.startedAt,
    completedAt: new Date().toISOString(),
  };
  if (exportOnly) {
    // a committed run keeps only its committed checkpoint (the planned one, once equal, is dropped)
    const planned =
      state.plannedCheckpoint !== undefined ? state.plannedCheckpoint : (state.committedCheckpoint ?? null);
    return {
      runId: state.runId,
      sessionRef: state.sessionRef,
      stagingHandles: handles,
      plannedCheckpoint: planned,
      stats,
    };
  }
  const out: RunUnitResult = {
    runId: state.runId,
    newCheckpoint: state.committedCheckpoint !== undefined ? state.committedCheckpoint : rc.checkpoint.value,
    stats: stats as RunUnitResult['stats'],
    stagingHandles: handles,
    resumed: how.resumed,
    ...(how.repeated ? { repeated: true } : {}),
  };
  if (!rc.policy.keepStaging && session) {
    await session.destroy().catch(logFailure(rc.logger, 'deleting the landed staging (keepStaging: false)'));
  }
  rc.emit({ type: 'run.completed', stats: out.stats, newCheckpoint: out.newCheckpoint });
  return out;
}

/**
 * A holder whose lease was taken over while it ran sees the new holder's work as failures of its own (a session
 * sealed meanwhile, a fenced manifest). Whatever failed, such a run reports `lease_lost`: the unit is the new
 * holder's, and this run must neither record its error in the run state nor release the new holder's lease.
 */
async function fencedOrSelf(rc: RunContext, e: IngestError): Promise<IngestError> {
  if (e.code === 'lease_lost') return e;
  try {
    await rc.lease.renew();
    return e;
  } catch (err) {
    if (!IngestError.is(err, 'lease_lost')) return e;
    return new IngestError('lease_lost', `${err.message}; meanwhile this run failed: ${e.message}`, {
      cause: e,
      retryable: true,
      details: { ...(err.details ?? {}), failure: e.code },
    });
  }
}

function toRunError(rc: RunContext, err: unknown): IngestError {
  if (rc.signal.aborted) {
    const reason = rc.signal.reason;
    if (IngestError.is(reason)) return reason;
    if (!IngestError.is(err) || err.code !== 'staging_corrupt') {
      return IngestError.is(err, 'aborted')
        ? err
        : new IngestError('aborted', `Run was aborted (${rc.where()})`, { cause: err });
    }
  }
  if (IngestError.is(err)) return err;
  return new IngestError(
    'internal',
    `Unexpected failure (${rc.where()}): ${err instanceof Error ? err.message : String(err)}`,
    { cause: err },
  );
}

function runIdOfHandles(opts: ImportOptions): string | undefined {
  const meta = opts.stagingHandles?.[0]?.metadata;
  return meta && typeof meta.runId === 'string' ? meta.runId : undefined;
}
