import type { SinkEndpoint } from '../contracts/sink-endpoint.js';
import type { SourceEndpoint } from '../contracts/source-endpoint.js';
import type { StagingSession } from '../contracts/staging.js';
import type { Json } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { withSpan } from '../telemetry/tracing.js';
import { jsonEqual } from '../util/deep-equal.js';
import { exportPhase, stagingCall } from './export-phase.js';
import { importPhase } from './import-phase.js';
import {
  type ExportOptions,
  type ExportResult,
  type ImportOptions,
  parseOptions,
  type RunUnitOptions,
  type RunUnitResult,
} from './options.js';
import { RunContext } from './run-context.js';
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
 * @throws IngestError `config_invalid` (before any I/O), `lease_held`, `source_failed`, `staging_failed`,
 * `staging_corrupt`, `sink_failed`, `row_rejected`, `lease_lost`, `aborted`
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

async function drive(opts: AnyOptions, args: DriveArgs): Promise<RunUnitResult | ExportResult> {
  const rc = await RunContext.open(opts);
  let state: RunState | undefined;
  let session: StagingSession | undefined;
  try {
    const out = await withSpan('ingestion.run', rc.attrs(), async (span) => {
      const mode =
        opts.mode ?? (args.source?.descriptor?.capabilities?.includes('ingest.incremental') ? 'incremental' : 'full');
      const loaded = rc.loadedState;

      // A call that repeats a run which already committed (e.g. an orchestrator retrying after a lost reply)
      // gets that run's result instead of a second run.
      const repeatOf = args.sessionRunId ?? opts.runId;
      if (loaded && loaded.phase === 'committed' && repeatOf !== undefined && loaded.runId === repeatOf) {
        rc.runId = loaded.runId;
        session = await stagingCall(
          rc,
          () => opts.staging.openSession(loaded.sessionRef),
          'reopening the session',
        ).catch(() => undefined);
        return result(rc, loaded, session, args.until, true);
      }

      const resumable = await classify(rc, loaded, mode, opts.staging.id);
      if (args.source === undefined && !resumable) {
        throw new IngestError(
          'run_state_invalid',
          `No exported run to import for ${rc.where()}: run exportUnit first`,
          {
            details: { phase: loaded?.phase ?? null },
          },
        );
      }
      let st: RunState;
      if (resumable) {
        st = resumable;
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
        rc.runId = st.runId;
        await rc.lease.setRunId(st.runId);
        st.attempts++;
        session = await stagingCall(rc, () => opts.staging.openSession(st.sessionRef), 'reopening the session').catch(
          async (err) => {
            // A run killed while it re-created its session (unplanned export restart) may leave no session behind;
            // nothing was imported from it yet, so export into a fresh one under the same run id.
            if (st.phase !== 'exporting' || !IngestError.is(err, 'not_found')) throw err;
            rc.logger.warn('pending export has no staging session left; exporting again', { runId: st.runId });
            return stagingCall(rc, () => opts.staging.allocateSession(rc.ctx()), 'allocating the session');
          },
        );
      } else {
        session = await stagingCall(rc, () => opts.staging.allocateSession(rc.ctx()), 'allocating the session');
        const now = new Date().toISOString();
        st = {
          runId: rc.runId,
          phase: 'exporting',
          mode,
          stagingProvider: opts.staging.id,
          sessionRef: session.ref,
          baseCheckpointVersion: rc.checkpoint.version,
          startedAt: now,
          updatedAt: now,
          attempts: 1,
        };
      }
      state = st;
      await rc.stateStore.save(st);
      span.setAttribute('ingestion.run_id', rc.runId);
      rc.emit({ type: 'run.started', mode: st.mode, checkpoint: rc.checkpoint.value });
      if (resumable) {
        const kept = (await stagingCall(rc, () => session!.describe(), 'describing the session')).slices.length;
        rc.emit({ type: 'run.resumed', phase: st.phase, slicesKept: kept });
        rc.logger.info('resuming run from staged data', { runId: rc.runId, phase: st.phase, slicesKept: kept });
      }

      if (st.phase === 'exporting') {
        const exported = await exportPhase(rc, args.source!, session, st, !!resumable);
        session = exported.session;
        const desc = await stagingCall(rc, () => session!.describe(), 'describing the session');
        st.phase = 'exported';
        st.plannedCheckpoint = exported.plannedCheckpoint;
        st.rowsExported = desc.rows;
        st.slices = desc.slices.length;
        st.bytesStaged = desc.bytes;
        await rc.stateStore.save(st);
      }
      if (args.until === 'exported') return result(rc, st, session, 'exported', !!resumable);

      if (st.phase === 'exported' || st.phase === 'importing') {
        st.phase = 'importing';
        await rc.stateStore.save(st);
        const imported = await importPhase(rc, args.sink!, session, {
          disposition: (opts as RunUnitOptions).disposition ?? 'append',
          primaryKey: (opts as RunUnitOptions).primaryKey,
        });
        st.phase = 'imported';
        st.rowsImported = imported.result.rowsImported;
        st.rowsExported = imported.rowsStaged;
        st.slices = imported.slices;
        st.bytesStaged = imported.bytesStaged;
        await rc.stateStore.save(st);
      }
      if (st.phase === 'imported') await commit(rc, st, session);
      return result(rc, st, session, 'committed', !!resumable);
    });
    await rc.close(true);
    return out;
  } catch (err) {
    const e = toRunError(rc, err);
    const pending = state as RunState | undefined;
    if (pending && e.code !== 'lease_lost') {
      pending.lastError = { code: e.code, message: e.message, at: new Date().toISOString() };
      await rc.stateStore.save(pending).catch(() => {});
    }
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
 * Decide whether the unit's run state is a pending run to resume. A run whose checkpoint base moved is
 * stale — unless it is our own commit that crashed before the run state said so; then finish it.
 */
async function classify(
  rc: RunContext,
  loaded: RunState | undefined,
  mode: 'full' | 'incremental',
  stagingId: string,
): Promise<RunState | undefined> {
  if (!loaded || loaded.phase === 'committed') return undefined;
  if (loaded.baseCheckpointVersion !== rc.checkpoint.version) {
    if (loaded.phase === 'imported' && jsonEqual(loaded.plannedCheckpoint ?? null, rc.checkpoint.value)) {
      const session = await rc.opts.staging.openSession(loaded.sessionRef).catch(() => undefined);
      await session?.markLanded().catch(() => {});
      await session?.close().catch(() => {});
      loaded.phase = 'committed';
      await rc.stateStore.save(loaded);
      rc.logger.info('finished the landing of a run that committed before it crashed', { runId: loaded.runId });
    }
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

async function commit(rc: RunContext, state: RunState, session: StagingSession): Promise<void> {
  await withSpan('ingestion.commit', rc.attrs(), async () => {
    rc.throwIfAborted('Commit');
    // Fencing: renewing the lease is a compare-and-set on our token; a stale holder stops here.
    await rc.lease.renew();
    const planned = state.plannedCheckpoint ?? null;
    let checkpoint: Json | null = rc.checkpoint.value;
    let version = rc.checkpoint.version ?? 0;
    if (planned !== null && !(rc.checkpoint.version !== null && jsonEqual(planned, rc.checkpoint.value))) {
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
    rc.checkpoint = { value: checkpoint, version };
    state.phase = 'committed';
    state.lastError = null;
    await rc.stateStore.save(state);
    rc.emit({ type: 'checkpoint.committed', checkpoint, version });
    await session
      .markLanded()
      .catch((err) =>
        rc.logger.warn('could not write _LANDED (the sweep will treat the run as abandoned)', { error: String(err) }),
      );
  });
}

async function result(
  rc: RunContext,
  state: RunState,
  session: StagingSession | undefined,
  until: 'exported' | 'committed',
  resumed: boolean,
): Promise<RunUnitResult | ExportResult> {
  const handles = session ? await session.handles().catch(() => []) : [];
  const completedAt = new Date().toISOString();
  if (until === 'exported') {
    return {
      runId: state.runId,
      sessionRef: state.sessionRef,
      stagingHandles: handles,
      plannedCheckpoint: state.plannedCheckpoint ?? null,
      stats: {
        rowsExported: state.rowsExported ?? 0,
        slices: state.slices ?? 0,
        bytesStaged: state.bytesStaged ?? 0,
        startedAt: state.startedAt,
        completedAt,
      },
    };
  }
  const out: RunUnitResult = {
    runId: state.runId,
    newCheckpoint: rc.checkpoint.value,
    stats: {
      rowsExported: state.rowsExported ?? 0,
      rowsImported: state.rowsImported ?? 0,
      slices: state.slices ?? 0,
      bytesStaged: state.bytesStaged ?? 0,
      startedAt: state.startedAt,
      completedAt,
    },
    stagingHandles: handles,
    resumed,
  };
  if (!rc.policy.keepStaging && session) await session.destroy().catch(() => {});
  rc.emit({ type: 'run.completed', stats: out.stats, newCheckpoint: out.newCheckpoint });
  return out;
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
