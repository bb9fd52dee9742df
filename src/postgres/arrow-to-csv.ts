import type { Schema } from 'apache-arrow';
import { arrowBatches, rowsOfBatch } from '../arrow/arrow-batches.js';
import { type ColumnKind, isAbsentField, keyOf, logicalTypeOf } from '../arrow/arrow-types.js';
import { type CellWriter, CsvOut, cellWriter, type WriteContext, writeNull } from './arrow-csv-writers.js';
import { type CopyColumn, type CopyOrigin, CsvEncoder } from './copy-encoding.js';
import type { StagedToCsv } from './transcode.js';

/*
 * Staged Arrow slice → COPY input, column-wise (docs/decisions/0008-transcoded-row-paths.md): the text is exactly what
 * `new CsvEncoder(columns, origin).encodeRow(row)` (CSV, `arrowToCsv`) or `.encodeTextRow(row)` (COPY text format,
 * `arrowToCopyText`, what the sink uses: PostgreSQL reads it a little faster) writes for each row
 * `arrowCodec().decode` yields, written from the record batches' buffers (arrow-csv-writers.ts) without a row object,
 * a `Timestamp`, a `bigint` or a `JsonText`.
 * A batch that records absent keys (the codec's hidden column; never written for a declared schema) goes through
 * the row path whole.
 */

interface BatchPlan {
  /** Per target column: the batch column holding its key (the last one with that key), or -1. */
  fieldAt: number[];
  kinds: ColumnKind[];
  /** The batch has the hidden column of absent keys. */
  absent: boolean;
}

function planOf(schema: Schema, columns: CopyColumn[]): BatchPlan {
  const fields = schema.fields;
  const byKey = new Map<string, number>();
  let absent = false;
  fields.forEach((f, i) => {
    if (isAbsentField(f)) absent = true;
    else byKey.set(keyOf(f), i);
  });
  return {
    fieldAt: columns.map((c) => byKey.get(c.name) ?? -1),
    kinds: fields.map((f) => (isAbsentField(f) ? 'string' : logicalTypeOf(f))),
    absent,
  };
}

async function* transcode(
  bytes: AsyncIterable<Uint8Array>,
  opts: { columns: CopyColumn[]; origin: CopyOrigin; pieceBytes: number; onRows?: (rows: number) => void },
  text: boolean,
): AsyncGenerator<Uint8Array> {
  const { columns, origin, onRows } = opts;
  const pieceBytes = Math.max(1, opts.pieceBytes);
  const out = new CsvOut(pieceBytes + 4096);
  const ctx: WriteContext = { out, base: 0, origin, text };
  const encoder = new CsvEncoder(columns, origin);
  const separator = text ? 9 : 44;
  let planned: { schema: Schema; plan: BatchPlan } | undefined;
  let pieceRows = 0;
  const none: CellWriter = () => writeNull(ctx);
  for await (const batch of arrowBatches(bytes)) {
    if (planned?.schema !== batch.schema) planned = { schema: batch.schema, plan: planOf(batch.schema, columns) };
    const { plan } = planned;
    const n = batch.numRows;
    if (plan.absent) {
      // the row path, whole batch (rows with absent keys)
      const rows = rowsOfBatch(batch);
      encoder.rows = ctx.base;
      for (let r = 0; r < n; r++) {
        const line = text ? encoder.encodeTextRow(rows[r]) : encoder.encodeRow(rows[r]);
        out.ensure(line.length * 3);
        out.pos += out.buf.write(line, out.pos, 'utf8');
        pieceRows++;
        if (out.pos >= pieceBytes) {
          onRows?.(pieceRows);
          pieceRows = 0;
          yield out.take();
        }
      }
      ctx.base += n;
      continue;
    }
    const fields = batch.schema.fields;
    const writers = columns.map((c, i) => {
      const at = plan.fieldAt[i];
      return at < 0 ? none : cellWriter(c, fields[at], plan.kinds[at], batch.getChildAt(at)!, ctx);
    });
    const last = writers.length - 1;
    for (let r = 0; r < n; r++) {
      for (let i = 0; i <= last; i++) {
        if (i > 0) {
          out.ensure(1);
          out.buf[out.pos++] = separator;
        }
        writers[i](r);
      }
      out.ensure(1);
      out.buf[out.pos++] = 10;
      pieceRows++;
      if (out.pos >= pieceBytes) {
        onRows?.(pieceRows);
        pieceRows = 0;
        yield out.take();
      }
    }
    ctx.base += n;
  }
  if (out.pos > 0) {
    onRows?.(pieceRows);
    yield out.take();
  }
}

/**
 * A staged Arrow slice → the COPY CSV the PostgreSQL sink's row path would send, without row objects (see the file
 * comment).
 * @throws IngestError `staging_corrupt` for bytes that are no Arrow IPC stream (and whatever the reader throws),
 * `row_rejected` for a value the CSV encoder refuses (NUL in text), naming the column, slice and row.
 * @internal
 */
export const arrowToCsv: StagedToCsv = (bytes, opts) => transcode(bytes, opts, false);

/**
 * The same as {@link arrowToCsv} in COPY's text format: the lines `CsvEncoder.encodeTextRow` writes (for
 * `COPY … FROM STDIN` without options).
 * @throws IngestError as {@link arrowToCsv}.
 * @internal
 */
export const arrowToCopyText: StagedToCsv = (bytes, opts) => transcode(bytes, opts, true);
