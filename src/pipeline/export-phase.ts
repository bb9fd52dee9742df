import type {
  ExportPlan,
  ReadRequest,
  SliceSpec,
  SourceBatch,
  SourceEndpoint,
  SourceRejection,
} from '../contracts/source-endpoint.js';
import type { RecordWriter, StagedSlice, StagingSession } from '../contracts/staging.js';
import type { Json, RecordSchema, Row } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { recordRows, withSpan } from '../telemetry/tracing.js';
import { logFailure } from '../util/best-effort.js';
import { runBounded } from '../util/concurrency.js';
import { withRetry } from '../util/retry.js';
import { estimateRowBytes } from '../util/rows.js';
import { exportEncodedSlice } from './export-encoded.js';
import type { LiveHooks, LiveTap } from './live-slice.js';
import type { DeadLetterSink, RejectedRow } from './options.js';
import { closingIteration, retryEvent, stagingCall, stagingStep } from './phase-support.js';
import type { RunContext } from './run-context.js';
import type { RunState } from './run-state.js';

/** Counters shared by concurrent slice exports. */
interface ExportProgress {
  rowsExported: number;
  rejected: RejectedRows;
  slicesStaged: number;
  slicesPlanned?: number;
  estimatedRows?: number;
  schema?: RecordSchema;
}

/** What the export phase hands back to the export step (`run-phases.ts`), which seals and records it. */
export interface ExportOutcome {
  session: StagingSession;
  plannedCheckpoint: Json | null;
  /** The slice indices the export finished: the plan's, or the ones this stream wrote. */
  expectedSlices: number[];
  rowsExported: number;
  rowsRejected: number;
}

/**
 * What an overlapped run (ADR 0018) learns from a planned export as it goes: the plan, before any slice of it is
 * read (with the slices the session already holds), and each slice once it is staged.
 * @internal
 */
export interface ExportHooks {
  /** `estimatedRows`: the planner's estimate, when this call planned. */
  planned(plan: readonly SliceSpec[], staged: readonly StagedSlice[], estimatedRows?: number): Promise<void>;
  staged(index: number): Promise<void>;
  /**
   * A pass-through export of slice `index` is about to start: resolves once the sink would take it live (it waits for
   * it next), or will never (live-slice.ts).
   */
  ready?(index: number): Promise<void>;
  /** Where the sink takes slice `index` while it is staged, if it can now (a pass-through export; live-slice.ts). */
  live?(index: number, codec: string): LiveTap | undefined;
}

/**
 * Export: read the source into the session, slice by slice (not sealed here: the phase table seals).
 * Planned sources export their slices concurrently (bounded by `exportConcurrency`), keeping finished
 * slices on resume; unplanned sources stream and are cut by `sliceMaxRows` / `sliceMaxBytes`, and are
 * re-read from the start (into an emptied session) when retried or resumed. `recordPlan` saves a new plan in
 * the run state before any slice is read.
 * @internal
 */
export async function exportPhase(
  rc: RunContext,
  source: SourceEndpoint<any>,
  session: StagingSession,
  state: RunState,
  resumed: boolean,
  recordPlan: (plan: ExportPlan<Json>) => Promise<void>,
  hooks?: ExportHooks,
): Promise<ExportOutcome> {
  return withSpan('ingestion.export', rc.attrs(), async (span) => {
    const req: ReadRequest<any> = {
      unitId: rc.unitId,
      mode: state.mode,
      checkpoint: state.mode === 'incremental' ? rc.checkpoint.value : null,
      hints: {
        chunkSize: rc.policy.chunkSize,
        sliceMaxRows: rc.policy.sliceMaxRows,
        exportConcurrency: rc.policy.exportConcurrency,
        maxRowBytes: rc.policy.maxRowBytes,
      },
    };
    const progress: ExportProgress = { rowsExported: 0, slicesStaged: 0, rejected: new RejectedRows(rc) };
    let plannedCheckpoint: Json | null;
    let expectedSlices: number[];

    let plan = state.plan ?? null;
    // A recorded plan the source can no longer export (it was planned on something the source holds no more: an
    // exported snapshot) is void: the session is emptied and the run plans again. Only while exporting: nothing of the
    // run has reached the sink (a source that can void its plans is never overlapped).
    if (plan && source.planValid && state.phase === 'exporting') {
      const slices = plan;
      const valid = await withRetry(
        () =>
          callSource(
            rc,
            () =>
              source.planValid!(
                { unitId: rc.unitId, slices, checkpoint: (state.plannedCheckpoint ?? null) as Json | null },
                rc.ctx(),
              ),
            'checking the recorded plan',
          ),
        rc.policy.retry,
        { signal: rc.signal, onRetry: (r) => retryEvent(rc, 'export', r) },
      );
      if (!valid) {
        rc.logger.warn(
          'the recorded plan is void (the source no longer holds what it was planned on); emptying the session and planning again',
          {
            runId: rc.runId,
            slices: plan.length,
          },
        );
        await rc.stateStore.save(state, state.phase, { plan: null, plannedCheckpoint: undefined });
        await stagingStep(rc, 'export', () => session.destroy(), 'emptying the session');
        session = await allocateAgain(rc, session);
        plan = null;
      }
    }
    // Plan unless a plan was recorded before (a run killed before it recorded its plan plans again).
    if (!plan && source.plan) {
      const p = await withRetry(() => callSource(rc, () => source.plan!(req, rc.ctx()), 'planning'), rc.policy.retry, {
        signal: rc.signal,
        onRetry: (r) => retryEvent(rc, 'export', r),
      });
      if (p) {
        plan = p.slices;
        progress.schema = p.schema;
        progress.estimatedRows = p.estimatedRows;
        await recordPlan(p as ExportPlan<Json>);
      }
    }

    if (plan) {
      plannedCheckpoint = state.plannedCheckpoint ?? null;
      const desc = await stagingStep(rc, 'export', () => session.describe(), 'describing the session');
      const done = new Set(desc.slices.map((s) => s.index));
      progress.slicesPlanned = plan.length;
      progress.slicesStaged = done.size;
      const todo = plan.filter((s) => !done.has(s.index));
      await hooks?.planned(plan, desc.slices, progress.estimatedRows);
      await runBounded(
        todo,
        rc.policy.exportConcurrency,
        async (slice) => {
          const live: LiveHooks | undefined = hooks?.live
            ? {
                ready: () => hooks.ready?.(slice.index) ?? Promise.resolve(),
                tap: (codec) => hooks.live!(slice.index, codec),
              }
            : undefined;
          await withRetry(() => exportPlannedSlice(rc, source, session, req, slice, progress, live), rc.policy.retry, {
            signal: rc.signal,
            onRetry: (r) => retryEvent(rc, 'export', r, slice.index),
          });
          await hooks?.staged(slice.index);
        },
        { signal: rc.signal },
      );
      expectedSlices = plan.map((s) => s.index);
    } else {
      if (resumed) await stagingStep(rc, 'export', () => session.destroy(), 'emptying the session');
      let attemptSession = resumed ? await allocateAgain(rc, session) : session;
      let written: number[] = [];
      plannedCheckpoint = await withRetry(
        async (attempt) => {
          if (attempt > 1) {
            await stagingCall(rc, () => attemptSession.destroy(), 'emptying the session');
            attemptSession = await allocateAgain(rc, attemptSession);
            progress.rowsExported = 0;
            progress.slicesStaged = 0;
            progress.rejected.reset();
          }
          written = [];
          return exportStream(rc, source, attemptSession, req, progress, written);
        },
        rc.policy.retry,
        { signal: rc.signal, onRetry: (r) => retryEvent(rc, 'export', r) },
      );
      session = attemptSession;
      expectedSlices = written;
    }

    rc.throwIfAborted('Export');
    span.setAttribute('ingestion.rows', progress.rowsExported);
    return {
      session,
      plannedCheckpoint,
      expectedSlices,
      rowsExported: progress.rowsExported,
      rowsRejected: progress.rejected.count,
    };
  });
}

async function allocateAgain(rc: RunContext, session: StagingSession): Promise<StagingSession> {
  await session.close();
  const fresh = await stagingCall(rc, () => rc.opts.staging.allocateSession(rc.ctx()), 'allocating the session');
  if (fresh.fence) await stagingStep(rc, 'export', () => fresh.fence!(rc.lease.epoch), 'claiming the session');
  return fresh;
}

/** One planned slice into one staged slice (never split: planners size their slices). */
async function exportPlannedSlice(
  rc: RunContext,
  source: SourceEndpoint<any>,
  session: StagingSession,
  req: ReadRequest<any>,
  slice: SliceSpec,
  progress: ExportProgress,
  live?: LiveHooks,
): Promise<void> {
  // pass-through: a source that produces the staging codec's own bytes stages them unchanged (export-encoded.ts)
  if (source.readEncoded && (await exportEncodedSlice(rc, source, session, req, slice, progress, live))) return;
  await withSpan('ingestion.slice', { ...rc.attrs(), 'ingestion.slice': slice.index }, async (span) => {
    let writer: RecordWriter | undefined;
    let rows = 0;
    let read = 0;
    const rejectedBefore = progress.rejected.count;
    try {
      for await (const batch of readSource(rc, source, { ...req, slice })) {
        if (batch.schema && !progress.schema) progress.schema = batch.schema;
        if (batch.rejected?.length) await progress.rejected.fromSource(batch.rejected, slice.index, read);
        const kept = await progress.rejected.filter(batch.rows, slice.index, read);
        read += batch.rows.length;
        writer ??= session.writer({ slice: slice.index, schema: progress.schema, signal: rc.signal });
        if (kept.length > 0) {
          await stagingCall(rc, () => writer!.writeBatch(kept), `writing slice ${slice.index}`, slice.index);
        }
        rows += kept.length;
        progress.rowsExported += kept.length;
        recordRows('exported', kept.length, rc.attrs());
        rc.emit({
          type: 'export.progress',
          slice: slice.index,
          rowsExported: progress.rowsExported,
          slicesStaged: progress.slicesStaged,
          slicesPlanned: progress.slicesPlanned,
          estimatedRows: progress.estimatedRows,
        });
      }
      rc.throwIfAborted('Export');
      writer ??= session.writer({ slice: slice.index, schema: progress.schema, signal: rc.signal });
      await stagingCall(rc, () => writer!.close(), `finishing slice ${slice.index}`, slice.index);
    } catch (err) {
      await writer?.abort?.(err).catch(logFailure(rc.logger, `aborting the writer of slice ${slice.index}`));
      // A retried slice reads (and rejects) its rows again.
      progress.rowsExported -= rows;
      progress.rejected.count = rejectedBefore;
      throw err;
    }
    span.setAttribute('ingestion.rows', rows);
    progress.slicesStaged++;
    const { rowsExported, slicesStaged, slicesPlanned } = progress;
    rc.emit({ type: 'slice.staged', slice: slice.index, rows, rowsExported, slicesStaged, slicesPlanned });
  });
}

/** An unplanned read, cut into slices by rows and estimated bytes. Returns the last batch checkpoint. */
async function exportStream(
  rc: RunContext,
  source: SourceEndpoint<any>,
  session: StagingSession,
  req: ReadRequest<any>,
  progress: ExportProgress,
  written: number[],
): Promise<Json | null> {
  const { sliceMaxRows, sliceMaxBytes, maxRowBytes } = rc.policy;
  let checkpoint: Json | null = rc.checkpoint.value;
  let index = 0;
  let writer: RecordWriter | undefined;
  let sliceRows = 0;
  let sliceBytes = 0;
  let read = 0;

  const closeSlice = async () => {
    const w = writer!;
    writer = undefined;
    await stagingCall(rc, () => w.close(), `finishing slice ${index}`, index);
    written.push(index);
    progress.slicesStaged++;
    rc.emit({
      type: 'slice.staged',
      slice: index,
      rows: sliceRows,
      rowsExported: progress.rowsExported,
      slicesStaged: progress.slicesStaged,
    });
    index++;
    sliceRows = 0;
    sliceBytes = 0;
  };

  try {
    for await (const batch of readSource(rc, source, req)) {
      if (batch.schema && !progress.schema) progress.schema = batch.schema;
      if (batch.rejected?.length) await progress.rejected.fromSource(batch.rejected, index, read);
      // The slicing below measures every row and refuses one over maxRowBytes; only dead-lettering filters first.
      const rows =
        rc.policy.onRejectedRow === 'dead-letter'
          ? await progress.rejected.filter(batch.rows, index, read)
          : batch.rows;
      read += batch.rows.length;
      let from = 0;
      while (from < rows.length) {
        // Take rows while the slice has room; every slice takes at least one row.
        let to = from;
        let bytes = 0;
        while (to < rows.length && sliceRows + (to - from) < sliceMaxRows) {
          const b = estimateRowBytes(rows[to]);
          if (b > maxRowBytes) throw rowTooLarge(rc, index, read - batch.rows.length + to, b);
          if (sliceRows + (to - from) > 0 && sliceBytes + bytes + b > sliceMaxBytes) break;
          bytes += b;
          to++;
        }
        if (to > from) {
          writer ??= session.writer({ slice: index, schema: progress.schema, signal: rc.signal });
          const part = from === 0 && to === rows.length ? rows : rows.slice(from, to);
          await stagingCall(rc, () => writer!.writeBatch(part), `writing slice ${index}`, index);
          sliceRows += to - from;
          sliceBytes += bytes;
          progress.rowsExported += to - from;
          recordRows('exported', to - from, rc.attrs());
          from = to;
        }
        if (sliceRows >= sliceMaxRows || (to < rows.length && sliceRows > 0)) await closeSlice();
      }
      if (batch.checkpoint !== undefined) checkpoint = batch.checkpoint as Json;
      rc.emit({
        type: 'export.progress',
        slice: index,
        rowsExported: progress.rowsExported,
        slicesStaged: progress.slicesStaged,
      });
    }
    rc.throwIfAborted('Export');
    if (writer) await closeSlice();
  } catch (err) {
    await writer?.abort?.(err).catch(logFailure(rc.logger, 'aborting the slice writer'));
    throw err;
  }
  return checkpoint;
}

/**
 * Iterate a source read, stopping within one batch on abort; source errors become `source_failed`. Every exit
 * other than the read's end closes the source's iterator and waits for it (`closingIteration`), so its connection
 * is released before the slice or the stream is retried, and before the run returns.
 */
async function* readSource(
  rc: RunContext,
  source: SourceEndpoint<any>,
  req: ReadRequest<any> & { slice?: SliceSpec },
): AsyncGenerator<SourceBatch<any>> {
  const slice = req.slice?.index;
  let iterable: AsyncIterable<SourceBatch<any>>;
  try {
    iterable = source.read(req, rc.ctx());
  } catch (err) {
    throw sourceError(rc, err, slice);
  }
  for await (const batch of closingIteration(rc, iterable, `Export (${rc.where(slice)})`, (err) =>
    sourceError(rc, err, slice),
  )) {
    if (!batch || !Array.isArray(batch.rows)) {
      throw new IngestError('source_failed', `Source yielded a batch without a rows array (${rc.where(slice)})`, {
        retryable: false,
      });
    }
    yield batch;
  }
}

/**
 * Rows over `policy.maxRowBytes`: refused with `row_rejected` (the default), or — with
 * `policy.onRejectedRow: 'dead-letter'` — handed to the dead-letter sink with their index and reason, and left out.
 */
class RejectedRows {
  count = 0;
  constructor(private readonly rc: RunContext) {}

  reset(): void {
    this.count = 0;
  }

  /** The rows to stage; `first` is the index (within the slice's read) of `rows[0]`. */
  async filter(rows: Row[], slice: number, first: number): Promise<Row[]> {
    const { rc } = this;
    const max = rc.policy.maxRowBytes;
    const deadLetter = rc.policy.onRejectedRow === 'dead-letter' ? rc.opts.deadLetter : undefined;
    let kept: Row[] | undefined;
    let entries: RejectedRow[] | undefined;
    for (let i = 0; i < rows.length; i++) {
      const b = estimateRowBytes(rows[i]);
      if (b <= max) {
        kept?.push(rows[i]);
        continue;
      }
      if (!deadLetter) throw rowTooLarge(rc, slice, first + i, b);
      kept ??= rows.slice(0, i);
      (entries ??= []).push({
        runId: rc.runId,
        unitId: rc.unitId,
        slice,
        row: first + i,
        code: 'row_rejected',
        reason: `Row is about ${b} bytes, over policy.maxRowBytes ${max}`,
        details: { bytes: b, maxRowBytes: max },
      });
    }
    if (!entries) return rows;
    await this.#deliver(deadLetter!, entries, slice, 'rows over maxRowBytes sent to the dead-letter sink');
    return kept!;
  }

  /**
   * Records the source could not turn into rows (`SourceBatch.rejected`): `row_rejected`, or — with
   * `policy.onRejectedRow: 'dead-letter'` — handed to the dead-letter sink with the source's position.
   */
  async fromSource(rejected: SourceRejection[], slice: number, first: number): Promise<void> {
    const { rc } = this;
    const deadLetter = rc.policy.onRejectedRow === 'dead-letter' ? rc.opts.deadLetter : undefined;
    if (!deadLetter) {
      const r = rejected[0];
      throw new IngestError('row_rejected', `Source record rejected: ${r.reason} (${rc.where(slice)})`, {
        details: { slice, position: r.position ?? null, rejected: rejected.length },
      });
    }
    const max = rc.policy.maxRowBytes;
    const entries: RejectedRow[] = rejected.map((r) => ({
      runId: rc.runId,
      unitId: rc.unitId,
      slice,
      row: first,
      code: 'row_rejected',
      reason: r.reason,
      ...(r.bytes !== undefined ? { details: { bytes: r.bytes, maxRowBytes: max } } : {}),
      ...(r.position !== undefined ? { position: r.position } : {}),
    }));
    await this.#deliver(deadLetter, entries, slice, 'source records rejected, sent to the dead-letter sink');
  }

  async #deliver(deadLetter: DeadLetterSink, entries: RejectedRow[], slice: number, what: string): Promise<void> {
    const { rc } = this;
    try {
      await deadLetter.write(entries, rc.ctx());
    } catch (err) {
      throw IngestError.wrap(err, 'sink_failed', `Dead-letter sink failed (${rc.where(slice)})`, { slice });
    }
    this.count += entries.length;
    rc.logger.warn(what, { slice, rows: entries.length });
  }
}

function rowTooLarge(rc: RunContext, slice: number, row: number, bytes: number): IngestError {
  return new IngestError(
    'row_rejected',
    `Row ${row} of a source batch is about ${bytes} bytes, over policy.maxRowBytes ${rc.policy.maxRowBytes} (${rc.where(slice)})`,
    { details: { slice, row, bytes, maxRowBytes: rc.policy.maxRowBytes } },
  );
}

function sourceError(rc: RunContext, err: unknown, slice?: number): IngestError {
  return IngestError.wrap(err, 'source_failed', `Source failed (${rc.where(slice)})`, { slice: slice ?? null });
}

async function callSource<T>(rc: RunContext, fn: () => Promise<T>, what: string): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw IngestError.wrap(err, 'source_failed', `Source failed while ${what} (${rc.where()})`);
  }
}
