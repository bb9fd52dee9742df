import type { SinkEndpoint } from '../contracts/sink-endpoint.js';
import type { SourceEndpoint } from '../contracts/source-endpoint.js';
import type { StagingSession } from '../contracts/staging.js';
import { IngestError } from '../errors/ingest-error.js';
import { withSpan } from '../telemetry/tracing.js';
import { jsonEqual } from '../util/deep-equal.js';
import {
  type ExportOptions,
  type ExportResult,
  type ImportOptions,
  parseOptions,
  type RunUnitOptions,
  type RunUnitResult,
} from './options.js';
import { stagingStep } from './phase-support.js';
import { RunContext } from './run-context.js';
import { advance, isPending, type RunCall } from './run-phases.js';
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

/** What a call decided to do before it moves any phase. */
type Start = { kind: 'repeat'; state: RunState } | { kind: 'resume'; state: RunState } | { kind: 'fresh' };

async function drive(opts: AnyOptions, args: DriveArgs): Promise<RunUnitResult | ExportResult> {
  const rc = RunContext.create(opts);
  if (args.source) {
    // An unknown unit is refused before the lease is taken or any state is written.
    try {
      await checkUnit(rc, args.source);
    } catch (err) {
      const e = toRunError(rc, err);
      rc.emit({ type: 'run.failed', code: e.code, message: e.message, retryable: e.retryable });
      rc.dispose();
      throw e;
    }
  }
  await rc.acquire();
  let call: RunCall | undefined;
  let fresh = false;
  let stateSaved = false;
  let session: StagingSession | undefined;
  try {
    const out = await withSpan('ingestion.run', rc.attrs(), async (span) => {
      const mode =
        opts.mode ?? (args.source?.descriptor?.capabilities?.includes('ingest.incremental') ? 'incremental' : 'full');
      const start = await decide(rc, opts, args, mode);
      if (start.kind === 'repeat') {
        rc.runId = start.state.runId;
        session = await stagingStep(
          rc,
          'export',
          () => opts.staging.openSession(start.state.sessionRef),
          'reopening the session',
        ).catch(() => undefined);
        return result(rc, start.state, session, args.until, { resumed: true, repeated: true });
      }

      let st: RunState;
      const imp = opts as RunUnitOptions;
      if (start.kind === 'resume') {
        st = start.state;
        if (args.sessionRunId !== undefined && args.sessionRunId !== st.runId) {
          throw new IngestError(
            'run_state_invalid',
            `Session of run ${args.sessionRunId} is not the unit's pending run ${st.runId}`,
          );
        }
        if (args.source === undefined && st.phase === 'exporting') {
          throw new IngestError(
            'run_state_invalid',
            `Run ${st.runId} has not finished exporting; run exportUnit again to finish it`,
          );
        }
        if (args.sink) assertSameImport(rc, st, imp);
        rc.runId = st.runId;
        await rc.lease.setRunId(st.runId);
        st.attempts++;
        session = await stagingStep(
          rc,
          'export',
          () => opts.staging.openSession(st.sessionRef),
          'reopening the session',
        ).catch(async (err) => {
          // A run killed while it re-created its session (unplanned export restart) may leave no session behind;
          // nothing was imported from it yet, so export into a fresh one under the same run id.
          if (st.phase !== 'exporting' || !IngestError.is(err, 'not_found')) throw err;
          rc.logger.warn('pending export has no staging session left; exporting again', { runId: st.runId });
          return stagingStep(rc, 'export', () => opts.staging.allocateSession(rc.ctx()), 'allocating the session');
        });
        await claim(rc, session);
      } else {
        if (args.source === undefined) {
          throw new IngestError(
            'run_state_invalid',
            `No exported run to import for ${rc.where()}: run exportUnit first`,
            { details: { phase: rc.loadedState?.phase ?? null } },
          );
        }
        session = await stagingStep(
          rc,
          'export',
          () => opts.staging.allocateSession(rc.ctx()),
          'allocating the session',
        );
        await claim(rc, session);
        const held = await stagingStep(rc, 'export', () => session!.describe(), 'describing the session');
        if (held.slices.length > 0 || held.sealed || held.landed) {
          const s = session;
          session = undefined;
          await s.close().catch(() => {});
          throw new IngestError(
            'run_state_invalid',
            `Run id ${rc.runId} was used before: staging already holds its session (${held.slices.length} slices); use a new run id (${rc.where()})`,
            { details: { runId: rc.runId, slices: held.slices.length, sealed: held.sealed, landed: held.landed } },
          );
        }
        fresh = true;
        const now = new Date().toISOString();
        st = {
          runId: rc.runId,
          phase: 'exporting',
          mode,
          stagingProvider: opts.staging.id,
          sessionRef: session.ref,
          baseCheckpointVersion: rc.checkpoint.version,
          ...(args.sink ? { disposition: imp.disposition ?? 'append' } : {}),
          ...(args.sink && imp.primaryKey ? { primaryKey: imp.primaryKey } : {}),
          startedAt: now,
          updatedAt: now,
          attempts: 1,
        };
      }
      call = {
        rc,
        state: st,
        session,
        ...(args.source ? { source: args.source } : {}),
        ...(args.sink ? { sink: args.sink } : {}),
        resumed: start.kind === 'resume',
        disposition: imp.disposition ?? st.disposition ?? 'append',
        ...((imp.primaryKey ?? st.primaryKey) ? { primaryKey: (imp.primaryKey ?? st.primaryKey)! } : {}),
        skipEmpty: args.until === 'committed' && args.source !== undefined,
      };
      await rc.stateStore.save(st);
      stateSaved = true;
      span.setAttribute('ingestion.run_id', rc.runId);
      rc.emit({ type: 'run.started', mode: st.mode, checkpoint: rc.checkpoint.value });
      if (call.resumed) {
        const kept = (await stagingStep(rc, 'export', () => session!.describe(), 'describing the session')).slices
          .length;
        rc.emit({ type: 'run.resumed', phase: st.phase, slicesKept: kept });
        rc.logger.info('resuming run from staged data', { runId: rc.runId, phase: st.phase, slicesKept: kept });
      }

      await advance(call, args.until);
      session = call.sessionGone ? undefined : call.session;
      return result(rc, st, session, st.phase === 'committed' ? 'committed' : 'exported', {
        resumed: call.resumed,
      });
    });
    await rc.close(true);
    return out;
  } catch (err) {
    const e = await fencedOrSelf(rc, toRunError(rc, err));
    if (call) session = call.sessionGone ? undefined : call.session;
    if (e.code !== 'lease_lost') await leaveNothingOrRecord(rc, call, session, { fresh, stateSaved }, e);
    rc.emit({ type: 'run.failed', code: e.code, message: e.message, retryable: e.retryable });
    rc.logger.error('run failed', { runId: rc.runId, code: e.code, retryable: e.retryable });
    // A failed run releases its lease at once; a fenced one leaves the new holder's lease alone.
    await rc.close(e.code !== 'lease_lost');
    throw e;
  } finally {
    await session?.close().catch(() => {});
  }
}

/**
 * After a failure: a fresh run that staged nothing leaves nothing behind (its session is deleted and the run state
 * it replaced is put back), so the next call starts afresh instead of "resuming" an empty run. Any other pending
 * run records the error and stays resumable.
 */
async function leaveNothingOrRecord(
  rc: RunContext,
  call: RunCall | undefined,
  session: StagingSession | undefined,
  how: { fresh: boolean; stateSaved: boolean },
  e: IngestError,
): Promise<void> {
  if (how.fresh && session && (!call || call.state.phase === 'exporting')) {
    const staged = await session
      .describe()
      .then((d) => d.slices.length)
      .catch(() => -1);
    if (staged === 0) {
      try {
        await session.destroy();
        if (call && how.stateSaved) await rc.stateStore.rollback(call.state, rc.loadedState);
        rc.logger.info('run failed before it staged a row; nothing left behind', { runId: rc.runId, code: e.code });
        return;
      } catch (cleanup) {
        rc.logger.warn('could not remove the empty run; the next call resumes it', { error: String(cleanup) });
      }
    }
  }
  if (call && how.stateSaved) await rc.stateStore.recordFailure(call.state, e);
}

/**
 * What this call does: repeat a finished run's result, resume the unit's pending run, or start a fresh run.
 * @throws IngestError `run_state_invalid` for a run id that was abandoned or superseded, or a pending run in
 * another staging provider
 */
async function decide(rc: RunContext, opts: AnyOptions, args: DriveArgs, mode: 'full' | 'incremental'): Promise<Start> {
  const loaded = rc.loadedState;
  const resumable = await classify(rc, loaded, mode, opts.staging.id);
  const named = args.sessionRunId ?? opts.runId;
  if (named === undefined || resumable?.runId === named) {
    return resumable ? { kind: 'resume', state: resumable } : { kind: 'fresh' };
  }
  // The call names a run: if that run finished, it is never run again.
  if (loaded && loaded.runId === named && !isPending(loaded.phase)) {
    if (loaded.phase === 'committed') return { kind: 'repeat', state: loaded };
    throw runIdUsed(rc, named, loaded.phase);
  }
  const receipt = await rc.stateStore.receipt(named);
  if (receipt) {
    if (receipt.outcome === 'committed') return { kind: 'repeat', state: receipt.state as unknown as RunState };
    throw runIdUsed(rc, named, receipt.outcome);
  }
  return resumable ? { kind: 'resume', state: resumable } : { kind: 'fresh' };
}

function runIdUsed(rc: RunContext, runId: string, outcome: string): IngestError {
  return new IngestError(
    'run_state_invalid',
    `Run id ${runId} names a run that was ${outcome} (endpoint ${rc.endpointId}, unit ${rc.unitId}); a run id is used by one run only — start a new run with a new id`,
    { details: { runId, outcome } },
  );
}

/**
 * A resume must import the way the pending run recorded: another disposition or primary key could skip slices
 * the sink never loaded that way.
 * @throws IngestError `run_state_invalid`
 */
function assertSameImport(rc: RunContext, st: RunState, opts: RunUnitOptions): void {
  const issues: string[] = [];
  if (st.disposition !== undefined && opts.disposition !== undefined && opts.disposition !== st.disposition) {
    issues.push(`disposition ${opts.disposition} (the run recorded ${st.disposition})`);
  }
  if (
    st.disposition !== undefined &&
    opts.primaryKey !== undefined &&
    !jsonEqual(opts.primaryKey, st.primaryKey ?? null)
  ) {
    issues.push(
      `primaryKey ${JSON.stringify(opts.primaryKey)} (the run recorded ${st.primaryKey ? JSON.stringify(st.primaryKey) : 'none'})`,
    );
  }
  if (issues.length === 0) return;
  throw new IngestError(
    'run_state_invalid',
    `Pending run ${st.runId} of ${rc.where()} cannot be resumed with ${issues.join(' and ')}; resume it as it was, or drop it with abandonRun()`,
    {
      details: {
        runId: st.runId,
        phase: st.phase,
        disposition: st.disposition ?? null,
        primaryKey: st.primaryKey ?? null,
      },
    },
  );
}

/** Claim the session with this holder's fencing token (a stale holder's later manifest writes are refused). */
async function claim(rc: RunContext, session: StagingSession): Promise<void> {
  if (session.fence) await stagingStep(rc, 'export', () => session.fence!(rc.lease.epoch), 'claiming the session');
}

/**
 * Refuse a unit the source does not have, before any state is written: the source's `checkUnit`, else its
 * `collectMetadata`, else no check.
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
    if (IngestError.is(err, 'not_found')) {
      throw new IngestError(
        'config_invalid',
        `Unknown unit "${rc.unitId}": source ${rc.endpointId} has no such unit (${err.message}); nothing was run or written`,
        { cause: err, details: { endpointId: rc.endpointId, unitId: rc.unitId } },
      );
    }
    throw IngestError.wrap(err, 'source_failed', `Source failed while checking unit "${rc.unitId}" (${rc.where()})`);
  }
}

/**
 * Decide whether the unit's run state is a pending run to resume. A run whose checkpoint base moved is
 * stale — unless it is our own commit that crashed before the run state said so; then finish it. A stale run
 * that may have imported slices gets a `superseded` receipt, so its id is never run again.
 */
async function classify(
  rc: RunContext,
  loaded: RunState | undefined,
  mode: 'full' | 'incremental',
  stagingId: string,
): Promise<RunState | undefined> {
  if (!loaded || !isPending(loaded.phase)) return undefined;
  if (loaded.baseCheckpointVersion !== rc.checkpoint.version) {
    if (loaded.phase === 'imported' && jsonEqual(loaded.plannedCheckpoint ?? null, rc.checkpoint.value)) {
      const session = await rc.opts.staging.openSession(loaded.sessionRef).catch(() => undefined);
      await session?.markLanded().catch(() => {});
      await session?.close().catch(() => {});
      const done: Partial<RunState> = { committedCheckpoint: rc.checkpoint.value, lastError: null };
      await rc.stateStore.writeReceipt({ ...loaded, ...done, phase: 'committed' }, 'committed');
      await rc.stateStore.save(loaded, 'committed', done);
      rc.logger.info('finished the landing of a run that committed before it crashed', { runId: loaded.runId });
      return undefined;
    }
    await supersede(rc, loaded);
    return undefined;
  }
  if (loaded.stagingProvider !== stagingId) {
    if (loaded.phase === 'exporting') return undefined;
    throw new IngestError(
      'run_state_invalid',
      `Run ${loaded.runId} of ${rc.where()} is pending in staging provider "${loaded.stagingProvider}", but this call uses "${stagingId}"; finish it with that provider`,
      { details: { phase: loaded.phase } },
    );
  }
  if (loaded.phase === 'exporting' && loaded.mode !== mode) return undefined;
  return loaded;
}

/** A pending run that will never finish: if the sink may hold slices of it, its run id is retired. */
async function supersede(rc: RunContext, loaded: RunState): Promise<void> {
  if (loaded.phase === 'exporting') return;
  await rc.stateStore.writeReceipt(loaded, 'superseded');
  rc.logger.warn('a pending run was superseded: the checkpoint moved under it', {
    runId: loaded.runId,
    phase: loaded.phase,
  });
}

async function result(
  rc: RunContext,
  state: RunState,
  session: StagingSession | undefined,
  until: 'exported' | 'committed',
  how: { resumed: boolean; repeated?: boolean },
): Promise<RunUnitResult | ExportResult> {
  const handles = session ? await session.handles().catch(() => []) : [];
  const completedAt = new Date().toISOString();
  const rejected = state.rowsRejected ? { rowsRejected: state.rowsRejected } : {};
  if (until === 'exported') {
    return {
      runId: state.runId,
      sessionRef: state.sessionRef,
      stagingHandles: handles,
      plannedCheckpoint: state.plannedCheckpoint ?? null,
      stats: {
        rowsExported: state.rowsExported ?? 0,
        ...rejected,
        slices: state.slices ?? 0,
        bytesStaged: state.bytesStaged ?? 0,
        startedAt: state.startedAt,
        completedAt,
      },
    };
  }
  const out: RunUnitResult = {
    runId: state.runId,
    newCheckpoint: state.committedCheckpoint !== undefined ? state.committedCheckpoint : rc.checkpoint.value,
    stats: {
      rowsExported: state.rowsExported ?? 0,
      rowsImported: state.rowsImported ?? 0,
      ...rejected,
      slices: state.slices ?? 0,
      bytesStaged: state.bytesStaged ?? 0,
      startedAt: state.startedAt,
      completedAt,
    },
    stagingHandles: handles,
    resumed: how.resumed,
    ...(how.repeated ? { repeated: true } : {}),
  };
  if (!rc.policy.keepStaging && session) await session.destroy().catch(() => {});
  rc.emit({ type: 'run.completed', stats: out.stats, newCheckpoint: out.newCheckpoint });
  return out;
}

/**
 * A holder whose lease was taken over while it ran sees the new holder's work as failures of its own (a session
 * sealed meanwhile, a fenced manifest). Whatever failed, such a run reports `lease_lost`: the unit is the new
 * holder's, and this run must neither record its error in the run state nor release the new holder's lease.
 */
async function fencedOrSelf(rc: RunContext, e: IngestError): Promise<IngestError> {
  if (e.code === 'lease_lost' || !rc.lease) return e;
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
