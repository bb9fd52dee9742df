import {
  type Builder,
  makeBuilder,
  makeData,
  RecordBatch,
  RecordBatchStreamWriter,
  Schema,
  Struct,
} from 'apache-arrow';
import { z } from 'zod';
import { parseCodecOptions } from '../codecs/codec-options.js';
import type { RecordCodec } from '../contracts/staging.js';
import type { RecordSchema, Row } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { ArrowChunkSink, arrowBatches, rowsOfBatch } from './arrow-batches.js';
import { arrowRowCounter } from './arrow-row-counter.js';
import {
  absentField,
  arrowField,
  asColumnData,
  belongsTo,
  builderTypeOf,
  type ColumnKind,
  fieldTypeOf,
  fits,
  inferType,
  kindForField,
  toArrowValue,
} from './arrow-types.js';

/** Options of {@link arrowCodec}. @public */
export interface ArrowCodecOptions {
  /** Rows per Arrow record batch (the unit of buffering while writing). @defaultValue 10000 */
  batchRows?: number;
}

const optionsSchema = z.object({ batchRows: z.number().int().positive().optional() }).strict();

/**
 * Arrow IPC stream codec: rows become Arrow record batches (`int64` → Int64 as `bigint`, `decimal`, `date`, `time`,
 * `uuid`, `interval` → Utf8 text (exact), `timestamp` → `timestamp[us]` for `Timestamp`s (time zone `UTC`
 * when zoned, ±infinity as the int64 max/min) or TimestampMillisecond for `Date`s, `json` → Utf8 (the text of a
 * `JsonText`, else tagged JSON), `binary` → Binary; every column nullable) and come back with the same `Value`
 * types. A column mixing representations (Date and Timestamp, …) is stored as tagged JSON text, still exact.
 *
 * With a {@link RecordSchema} every row must fit it (`row_rejected` names the field otherwise). Without one,
 * the schema is inferred from the first batch; a later row that does not fit (a new key, another type) ends
 * the current IPC stream and starts a new one with a widened schema (mixed columns become `json`), so any rows
 * round-trip. Keys missing from a row stay missing (a hidden column, added only when needed, records them).
 *
 * @example
 * ```ts
 * import { ObjectStoreStagingProvider } from '@nucleus/ingestion';
 * import { arrowCodec } from '@nucleus/ingestion/arrow';
 * const staging = new ObjectStoreStagingProvider({ store, codec: arrowCodec({ batchRows: 50_000 }) });
 * ```
 * @throws IngestError `config_invalid` for bad options; encoding throws `row_rejected` for a row that does not
 * fit the given schema; decoding throws `staging_corrupt` for bytes that are no Arrow IPC stream.
 * @public
 */
export function arrowCodec(options: ArrowCodecOptions = {}): RecordCodec {
  const opts = parseCodecOptions(optionsSchema, options, 'arrowCodec');
  const batchRows = opts.batchRows ?? 10_000;
  return {
    id: 'arrow',
    contentType: 'application/vnd.apache.arrow.stream',
    extension: '.arrows',
    encode: (batches, schema) => encodeArrow(batches, schema, batchRows),
    decode: (bytes) => decodeArrow(bytes),
    // rows counted from message metadata, no decode (verification in one pass)
    rowCounter: arrowRowCounter,
    // a source that writes Arrow bytes itself (PostgresSource, transcoded) cuts record batches here too
    batchRows,
  };
}

interface Column {
  name: string;
  type: ColumnKind;
}

class StreamEncoder {
  readonly #batchRows: number;
  readonly #strict: boolean;
  #columns: Column[] | undefined;
  /** Whether the current stream has the hidden column that records absent keys. */
  #withAbsent = false;
  #index = new Map<string, number>();
  #builders: Builder[] = [];
  #absent: Builder | undefined;
  #rows = 0;
  #sink = new ArrowChunkSink();
  #writer: RecordBatchStreamWriter | undefined;
  #schema: Schema | undefined;
  /** The declared fields (strict mode). */
  readonly #declared: RecordSchema['fields'] | undefined;

  constructor(schema: RecordSchema | undefined, batchRows: number) {
    this.#batchRows = batchRows;
    this.#strict = schema !== undefined;
    this.#declared = schema?.fields;
  }

  /** Add rows; returns bytes ready to go (possibly none). */
  add(rows: Row[]): Uint8Array | undefined {
    if (rows.length === 0) return undefined;
    if (!this.#columns) {
      // strict: the declared fields, each stored the way its first value asks (Timestamp µs or Date ms, …)
      const columns = this.#declared ? declaredColumns(this.#declared, rows) : inferColumns(rows);
      this.#start(columns, this.#declared ? false : anyAbsent(columns, rows, 0));
    }
    for (let r = 0; r < rows.length; r++) {
      const row = rows[r];
      const fit = this.#fit(row);
      if (fit !== 'ok') {
        if (fit === 'type' && this.#strict && !this.#belongs(row)) throw this.#reject(row);
        this.#flush();
        this.#finishStream();
        // strict: a value of the declared type in another representation widens its column to tagged JSON text
        const columns = widen(this.#columns!, rows, r, this.#strict);
        this.#start(columns, true);
      }
      const columns = this.#columns!;
      let missing: number[] | undefined;
      for (let c = 0; c < columns.length; c++) {
        const col = columns[c];
        let v: unknown = null;
        if (Object.hasOwn(row, col.name)) v = row[col.name];
        else if (this.#withAbsent) (missing ??= []).push(c);
        this.#builders[c].append(v === null || v === undefined ? null : toArrowValue(col.type, v));
      }
      this.#absent?.append(missing ? missing.join(',') : null);
      if (++this.#rows >= this.#batchRows) this.#flush();
    }
    return this.#sink.take();
  }

  /** Flush and end the stream; returns the remaining bytes. */
  end(): Uint8Array | undefined {
    if (!this.#columns && this.#declared) this.#start(declaredColumns(this.#declared, []), false);
    if (this.#columns) {
      this.#flush();
      this.#finishStream();
    }
    return this.#sink.take();
  }

  #start(columns: Column[], withAbsent: boolean): void {
    this.#columns = columns;
    this.#withAbsent = withAbsent;
    this.#index = new Map(columns.map((c, i) => [c.name, i]));
    const fields = columns.map((c) => arrowField(c.name, c.type));
    if (withAbsent) fields.push(absentField());
    this.#schema = new Schema(fields);
    const builders = columns.map((c) => makeBuilder({ type: builderTypeOf(c.type), nullValues: [null, undefined] }));
    if (withAbsent) builders.push(makeBuilder({ type: fields[fields.length - 1].type, nullValues: [null, undefined] }));
    this.#absent = withAbsent ? builders.pop() : undefined;
    this.#builders = builders;
    this.#rows = 0;
    this.#writer = new RecordBatchStreamWriter();
    this.#writer.reset(this.#sink, this.#schema);
  }

  /** `ok`, or why the row cannot go into the current stream. */
  #fit(row: Row): 'ok' | 'type' | 'absent' {
    const columns = this.#columns!;
    let present = 0;
    for (let c = 0; c < columns.length; c++) {
      const col = columns[c];
      if (!Object.hasOwn(row, col.name)) continue;
      present++;
      const v = row[col.name];
      if (v !== null && v !== undefined && !fits(col.type, v)) return 'type';
    }
    for (const k in row) if (!this.#index.has(k) && Object.hasOwn(row, k)) return 'type';
    return present < columns.length && !this.#withAbsent ? 'absent' : 'ok';
  }

  #flush(): void {
    if (this.#rows === 0) return;
    const schema = this.#schema!;
    const columns = this.#columns!;
    const children = this.#builders.map((b, i) => asColumnData(columns[i].type, b.flush()));
    if (this.#absent) children.push(this.#absent.flush());
    const data = makeData({ type: new Struct(schema.fields), length: this.#rows, nullCount: 0, children });
    this.#writer!.write(new RecordBatch(schema, data));
    this.#rows = 0;
  }

  #finishStream(): void {
    // The schema was written when the stream started; finishing writes the end-of-stream marker.
    this.#writer!.finish();
    this.#writer = undefined;
  }

  /** Whether every value of `row` belongs to its declared field (strict mode), whatever its column's kind. */
  #belongs(row: Row): boolean {
    for (const col of this.#columns!) {
      const v = Object.hasOwn(row, col.name) ? row[col.name] : null;
      if (v !== null && v !== undefined && !fits(col.type, v) && !belongsTo(fieldTypeOf(col.type), v)) return false;
    }
    for (const k in row) if (!this.#index.has(k) && Object.hasOwn(row, k)) return false;
    return true;
  }

  #reject(row: Row): IngestError {
    const issues: string[] = [];
    for (const col of this.#columns!) {
      const v = Object.hasOwn(row, col.name) ? row[col.name] : null;
      if (v !== null && v !== undefined && !fits(col.type, v) && !belongsTo(fieldTypeOf(col.type), v))
        issues.push(`${col.name}: not a ${fieldTypeOf(col.type)} value`);
    }
    for (const k of Object.keys(row)) if (!this.#index.has(k)) issues.push(`${k}: not in the schema`);
    return new IngestError('row_rejected', `A row does not fit the Arrow schema: ${issues.join('; ')}`, {
      details: { issues },
    });
  }
}

/** Whether some row from `from` on lacks one of `columns`' keys. */
function anyAbsent(columns: Column[], rows: Row[], from: number): boolean {
  for (let r = from; r < rows.length; r++) {
    for (const c of columns) if (!Object.hasOwn(rows[r], c.name)) return true;
  }
  return false;
}

/** The declared fields as columns, each of the kind its first non-null value in `rows` asks for. */
function declaredColumns(fields: RecordSchema['fields'], rows: Row[]): Column[] {
  return fields.map((f) => {
    let first: unknown;
    for (const row of rows) {
      const v = Object.hasOwn(row, f.name) ? row[f.name] : null;
      if (v !== null && v !== undefined) {
        first = v;
        break;
      }
    }
    return { name: f.name, type: kindForField(f, first) };
  });
}

/** Columns for `rows`: one per key (first-seen order), typed by their non-null values (mixed → json). */
function inferColumns(rows: Row[], from = 0): Column[] {
  const types = new Map<string, ColumnKind | undefined>();
  for (let r = from; r < rows.length; r++) {
    const row = rows[r];
    for (const k of Object.keys(row)) {
      const v = row[k];
      const seen = types.get(k);
      if (v === null || v === undefined) {
        if (!types.has(k)) types.set(k, undefined);
        continue;
      }
      if (seen === undefined) types.set(k, inferType(v));
      else if (seen !== 'json' && !fits(seen, v)) types.set(k, 'json');
    }
  }
  return [...types].map(([name, type]) => ({ name, type: type ?? 'json' }));
}

/** Columns that hold both `columns`' data and the rows from `from` on (strict: no new columns). */
function widen(columns: Column[], rows: Row[], from: number, strict = false): Column[] {
  const out: Column[] = columns.map((c) => {
    for (let r = from; r < rows.length; r++) {
      const v = Object.hasOwn(rows[r], c.name) ? rows[r][c.name] : null;
      if (v !== null && v !== undefined && !fits(c.type, v)) return { name: c.name, type: 'json' };
    }
    return c;
  });
  if (strict) return out;
  const known = new Set(columns.map((c) => c.name));
  for (const c of inferColumns(rows, from)) if (!known.has(c.name)) out.push(c);
  return out;
}

async function* encodeArrow(
  batches: AsyncIterable<Row[]>,
  schema: RecordSchema | undefined,
  batchRows: number,
): AsyncGenerator<Uint8Array> {
  const encoder = new StreamEncoder(schema, batchRows);
  for await (const batch of batches) {
    const bytes = encoder.add(batch);
    if (bytes) yield bytes;
  }
  const tail = encoder.end();
  if (tail) yield tail;
}

async function* decodeArrow(bytes: AsyncIterable<Uint8Array>): AsyncGenerator<Row[]> {
  for await (const batch of arrowBatches(bytes)) yield rowsOfBatch(batch);
}
