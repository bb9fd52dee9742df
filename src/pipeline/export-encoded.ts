import type { ReadRequest, SliceSpec, SourceEndpoint } from '../contracts/source-endpoint.js';
import type { StagingSession } from '../contracts/staging.js';
import type { RecordSchema } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { recordRows, withSpan } from '../telemetry/tracing.js';
import { raceAbort } from '../util/abort.js';
import { logFailure } from '../util/best-effort.js';
import { LineSizeCheck } from '../util/line-size-check.js';
import type { LiveHooks, LiveTap } from './live-slice.js';
import { closingIteration, stagingCall } from './phase-support.js';
import type { RunContext } from './run-context.js';

/** Counters shared with the concurrent slice exports of the export phase. */
interface Progress {
  rowsExported: number;
  slicesStaged: number;
  slicesPlanned?: number;
  schema?: RecordSchema;
}

/**
 * Pass-through export of one planned slice (docs/decisions/0006-postgres-pass-through-and-pipelining.md): when the
 * staging writer takes bytes of its codec unchanged ({@link RecordWriter.writeEncoded}) and the source can produce
 * those bytes itself ({@link SourceEndpoint.readEncoded}, e.g. PostgreSQL COPY text for `pg-copy`), the bytes go
 * from the source to the staged object without a row object in between. The writer counts the rows (the codec's
 * row counter), hashes and sizes them as for rows; the run's checkpoint is the plan's, as for any planned slice.
 *
 * `live`: an overlapped import that takes the slice while it is staged (live-slice.ts): the export starts once the
 * sink would take it next (the import is what bounds the run: an export running ahead only competes with it for the
 * cores), the tap is asked at the first chunk, and each chunk goes to it as it goes to staging.
 *
 * Returns `false`, having staged nothing, when the slice must go through rows instead.
 * @internal
 */
export async function exportEncodedSlice(
  rc: RunContext,
  source: SourceEndpoint<any>,
  session: StagingSession,
  req: ReadRequest<any>,
  slice: SliceSpec,
  progress: Progress,
  live?: LiveHooks,
): Promise<boolean> {
  // Dead-lettering single rows needs rows: such a run takes the row path.
  if ((rc.policy as { onRejectedRow?: string }).onRejectedRow === 'dead-letter') return false;
  const writer = session.writer({ slice: slice.index, schema: progress.schema, signal: rc.signal });
  const codec = writer.encoding;
  let batches: AsyncIterable<{ bytes: Uint8Array; schema?: RecordSchema }> | undefined;
  try {
    batches =
      codec && writer.writeEncoded
        ? source.readEncoded?.(
            codec,
            {
              ...req,
              slice,
              hints: { ...req.hints, maxRowBytes: rc.policy.maxRowBytes, batchRows: writer.encodingBatchRows },
            },
            rc.ctx(),
          )
        : undefined;
  } catch (err) {
    await writer.abort?.(err).catch(logFailure(rc.logger, `aborting the writer of slice ${slice.index}`));
    throw IngestError.wrap(err, 'source_failed', `Source failed (${rc.where(slice.index)})`, { slice: slice.index });
  }
  if (!batches) {
    await writer.abort?.().catch(logFailure(rc.logger, `aborting the writer of slice ${slice.index}`));
    return false;
  }
  const encoded = batches;
  if (live) {
    try {
      await raceAbort(live.ready(), rc.signal, `Export (${rc.where(slice.index)})`);
    } catch (err) {
      await writer.abort?.(err).catch(logFailure(rc.logger, `aborting the writer of slice ${slice.index}`));
      throw err;
    }
  }
  const rowSizes = rowSizeCheck(rc, slice.index, writer.encodingRowsAreLines);
  let tap: LiveTap | undefined;
  let tapped = false;
  await withSpan(
    'ingestion.slice',
    { ...rc.attrs(), 'ingestion.slice': slice.index, 'ingestion.codec': codec! },
    async (span) => {
      try {
        // Stopping early (a row too large, a staging failure, an abort) ends the source's read — its COPY, its
        // transaction and its connection — before the slice is retried or the run returns (closingIteration).
        const bytes = closingIteration(rc, encoded, `Export (${rc.where(slice.index)})`, (err) =>
          IngestError.wrap(err, 'source_failed', `Source failed (${rc.where(slice.index)})`, { slice: slice.index }),
        );
        for await (const { bytes: chunk, schema } of bytes) {
          if (schema && !progress.schema) progress.schema = schema;
          rowSizes?.check(chunk);
          if (!tapped) {
            tapped = true;
            tap = live?.tap(codec!);
          }
          const paced = tap?.write(chunk);
          if (paced) await paced;
          await stagingCall(
            rc,
            () => writer.writeEncoded!(chunk, { schema: progress.schema }),
            `writing slice ${slice.index}`,
            slice.index,
          );
        }
        rc.throwIfAborted('Export');
        tap?.complete();
        await stagingCall(rc, () => writer.close(), `finishing slice ${slice.index}`, slice.index);
      } catch (err) {
        tap?.fail(err);
        await writer.abort?.(err).catch(logFailure(rc.logger, `aborting the writer of slice ${slice.index}`));
        throw err;
      }
      const desc = await stagingCall(rc, () => session.describe(), 'describing the session', slice.index);
      const rows = desc.slices.find((s) => s.index === slice.index)?.rows ?? 0;
      progress.rowsExported += rows;
      progress.slicesStaged++;
      recordRows('exported', rows, rc.attrs());
      span.setAttribute('ingestion.rows', rows);
      const { rowsExported, slicesStaged, slicesPlanned } = progress;
      rc.emit({ type: 'export.progress', slice: slice.index, rowsExported, slicesStaged, slicesPlanned });
      rc.emit({ type: 'slice.staged', slice: slice.index, rows, rowsExported, slicesStaged, slicesPlanned });
    },
  );
  return true;
}

/**
 * `policy.maxRowBytes` on encoded bytes of a newline-terminated codec (a row is a line): a row longer than the limit
 * fails the slice with `row_rejected`, as on the row path (where the limit applies to the row's estimated size). For a
 * codec whose rows are not lines (Arrow) the source applies it to its own text (`ReadHints.maxRowBytes`).
 */
function rowSizeCheck(rc: RunContext, slice: number, rowsAreLines: boolean | undefined): LineSizeCheck | undefined {
  if (!rowsAreLines) return undefined;
  const max = rc.policy.maxRowBytes;
  return new LineSizeCheck(
    max,
    (row, bytes) =>
      new IngestError(
        'row_rejected',
        `Row ${row} of slice ${slice} is over ${max} bytes as encoded text, over policy.maxRowBytes (${rc.where(slice)})`,
        { details: { slice, row, bytes, maxRowBytes: max } },
      ),
  );
}
