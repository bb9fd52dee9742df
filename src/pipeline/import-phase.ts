import type { ImportResult, SinkEndpoint } from '../contracts/sink-endpoint.js';
import type { RecordReader, StagingSession } from '../contracts/staging.js';
import type { RecordSchema, Row } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { diffSchemas, hasChanges } from '../schema/schema-diff.js';
import { recordRows, withSpan } from '../telemetry/tracing.js';
import { abortable } from '../util/abort.js';
import { withRetry } from '../util/retry.js';
import { assertSlices, retryEvent, stagingStep } from './phase-support.js';
import type { RunContext } from './run-context.js';
import type { SealedSliceRecord } from './run-state.js';

/**
 * Import: hand every staged slice to the sink (idempotent per run and slice), retrying retryable failures.
 * Readers verify the staged bytes; a damaged slice fails the import before the sink can commit its rows.
 * @internal
 */
export async function importPhase(
  rc: RunContext,
  sink: SinkEndpoint,
  session: StagingSession,
  opts: {
    disposition: 'append' | 'replace' | 'merge';
    primaryKey?: string[];
    sealedSlices?: SealedSliceRecord[];
    /** The plan's schema, used when staging holds none (nothing was staged). */
    schema?: RecordSchema;
    /** The unit's recorded schema (its history's current version), to tell the sink what changed. */
    previousSchema?: RecordSchema;
    /** Attempts an overlapped import already spent of the phase's retry budget (ADR 0017, ADR 0018). */
    attemptsUsed?: number;
  },
): Promise<{ result: ImportResult; rowsStaged: number; slices: number; bytesStaged: number }> {
  return withSpan('ingestion.import', rc.attrs(), async (span) => {
    const desc = await stagingStep(rc, 'import', () => session.describe(), 'describing the session');
    if (!desc.sealed) {
      throw new IngestError(
        'staging_corrupt',
        `Session ${session.id} has no _SUCCESS marker; refusing to import an unfinished export (${rc.where()})`,
      );
    }
    // Exactly the slices sealed at the end of the export (a stale writer must not have changed the manifest).
    if (opts.sealedSlices) assertSlices(rc, desc, opts.sealedSlices, 'sealed');
    // Verify the whole session before the sink sees a row: a damaged slice late in the session must not let
    // earlier slices commit, because the run could then never finish from this session.
    if (session.verify) {
      await stagingStep(rc, 'import', () => session.verify!({ signal: rc.signal }), 'verifying the session');
    }
    const handles = await stagingStep(rc, 'import', () => session.handles(), 'listing handles');
    const rowsTotal = desc.rows;
    let attemptRows = 0;
    const counting = (reader: RecordReader, slice?: number): RecordReader => ({
      // pass-through: the slice's verified bytes, unchanged (counted by the sink's own progress)
      ...(reader.iterEncoded ? { iterEncoded: () => abortable(reader.iterEncoded!(), rc.signal, 'Import') } : {}),
      async *iterBatches(chunkSize: number) {
        for await (const batch of reader.iterBatches(chunkSize)) {
          rc.throwIfAborted('Import');
          attemptRows += batch.length;
          rc.emit({
            type: 'import.progress',
            rowsImported: attemptRows,
            rowsTotal,
            ...(slice !== undefined ? { slice } : {}),
          });
          yield batch as Row[];
        }
      },
    });
    const schema = desc.schema ?? opts.schema;
    const primaryKey = opts.primaryKey ?? schema?.primaryKey;
    const schemaDiff = schema && opts.previousSchema ? diffSchemas(opts.previousSchema, schema) : undefined;
    const result = await withRetry(
      async () => {
        attemptRows = 0;
        rc.throwIfAborted('Import');
        try {
          const out = await sink.import(
            {
              unitId: rc.unitId,
              reader: counting(session.reader({ signal: rc.signal })),
              slices: desc.slices.map((s) => ({
                index: s.index,
                rows: s.rows,
                reader: counting(session.reader({ slice: s.index, signal: rc.signal }), s.index),
                ...(s.handle ? { handle: s.handle } : {}),
                ...(s.codec ? { codec: s.codec } : {}),
              })),
              handles,
              ...(schema ? { schema } : {}),
              ...(schemaDiff && hasChanges(schemaDiff) ? { schemaDiff } : {}),
              disposition: opts.disposition,
              ...(primaryKey ? { primaryKey } : {}),
            },
            rc.ctx(),
          );
          if (!out || typeof out.rowsImported !== 'number') {
            throw new IngestError('sink_failed', `Sink returned no rowsImported count (${rc.where()})`, {
              retryable: false,
            });
          }
          return out;
        } catch (err) {
          if (rc.signal.aborted && !IngestError.is(err, 'staging_corrupt')) rc.throwIfAborted('Import');
          throw IngestError.wrap(err, 'sink_failed', `Sink failed (${rc.where()})`);
        }
      },
      { ...rc.policy.retry, maxAttempts: Math.max(1, rc.policy.retry.maxAttempts - (opts.attemptsUsed ?? 0)) },
      {
        signal: rc.signal,
        onRetry: (r) => retryEvent(rc, 'import', { ...r, attempt: r.attempt + (opts.attemptsUsed ?? 0) }),
      },
    );
    if (result.rowsImported !== rowsTotal) {
      rc.logger.warn('sink reported a different row count than was staged', {
        rowsStaged: rowsTotal,
        rowsImported: result.rowsImported,
        runId: rc.runId,
      });
    }
    recordRows('imported', result.rowsImported, rc.attrs());
    span.setAttribute('ingestion.rows', result.rowsImported);
    return { result, rowsStaged: rowsTotal, slices: desc.slices.length, bytesStaged: desc.bytes };
  });
}
