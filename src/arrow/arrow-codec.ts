import {
  AsyncByteQueue,
  type Builder,
  makeBuilder,
  makeData,
  RecordBatch,
  RecordBatchReader,
  RecordBatchStreamWriter,
  Schema,
  Struct,
} from 'apache-arrow';
import { z } from 'zod';
import { parseCodecOptions } from '../codecs/codec-options.js';
import type { RecordCodec } from '../contracts/staging.js';
import type { FieldType, RecordSchema, Row } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { arrowField, fits, fromArrowValue, inferType, logicalTypeOf, toArrowValue } from './arrow-types.js';

/** Options of {@link arrowCodec}. @public */
export interface ArrowCodecOptions {
  /** Rows per Arrow record batch (the unit of buffering while writing). @defaultValue 10000 */
  batchRows?: number;
}

const optionsSchema = z.object({ batchRows: z.number().int().positive().optional() }).strict();

/**
 * Arrow IPC stream codec: rows become Arrow record batches (`int64` → Int64 as `bigint`, `decimal` and `date`
 * → Utf8 text (exact), `timestamp` → TimestampMillisecond as `Date`, `json` → Utf8 tagged JSON, `binary` →
 * Binary; every column nullable) and come back with the same {@link Value} types.
 *
 * With a {@link RecordSchema} every row must fit it (`row_rejected` names the field otherwise). Without one,
 * the schema is inferred from the first batch; a later row that does not fit (a new key, another type) ends
 * the current IPC stream and starts a new one with a widened schema (mixed columns become `json`), so any rows
 * round-trip. A missing key reads back as `null`.
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
  };
}

interface Column {
  name: string;
  type: FieldType;
}

/** Collects what a RecordBatchStreamWriter emits, so each record batch can be handed on as bytes at once. */
class ChunkSink extends AsyncByteQueue {
  chunks: Uint8Array[] = [];
  override write(value: ArrayBufferView | ArrayBufferLike | string): void {
    if (typeof value === 'string') value = Buffer.from(value, 'utf8');
    const u =
      value instanceof Uint8Array
        ? value
        : ArrayBuffer.isView(value)
          ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
          : new Uint8Array(value);
    if (u.byteLength > 0) this.chunks.push(u);
  }
  take(): Uint8Array | undefined {
    if (this.chunks.length === 0) return undefined;
    const out = Buffer.concat(this.chunks);
    this.chunks = [];
    return out;
  }
}

class StreamEncoder {
  readonly #batchRows: number;
  readonly #strict: boolean;
  #columns: Column[] | undefined;
  #index = new Map<string, number>();
  #builders: Builder[] = [];
  #rows = 0;
  #sink = new ChunkSink();
  #writer: RecordBatchStreamWriter | undefined;
  #schema: Schema | undefined;

  constructor(schema: RecordSchema | undefined, batchRows: number) {
    this.#batchRows = batchRows;
    this.#strict = schema !== undefined;
    if (schema) this.#start(schema.fields.map((f) => ({ name: f.name, type: f.type })));
  }

  /** Add rows; returns bytes ready to go (possibly none). */
  add(rows: Row[]): Uint8Array | undefined {
    if (rows.length === 0) return undefined;
    if (!this.#columns) this.#start(inferColumns(rows));
    for (let r = 0; r < rows.length; r++) {
      const row = rows[r];
      if (!this.#fitsRow(row)) {
        if (this.#strict) throw this.#reject(row);
        this.#flush();
        this.#finishStream();
        this.#start(widen(this.#columns!, rows, r));
      }
      const columns = this.#columns!;
      for (let c = 0; c < columns.length; c++) {
        const col = columns[c];
        const v = Object.hasOwn(row, col.name) ? row[col.name] : null;
        this.#builders[c].append(v === null || v === undefined ? null : toArrowValue(col.type, v));
      }
      if (++this.#rows >= this.#batchRows) this.#flush();
    }
    return this.#sink.take();
  }

  /** Flush and end the stream; returns the remaining bytes. */
  end(): Uint8Array | undefined {
    if (this.#columns) {
      this.#flush();
      this.#finishStream();
    }
    return this.#sink.take();
  }

  #start(columns: Column[]): void {
    this.#columns = columns;
    this.#index = new Map(columns.map((c, i) => [c.name, i]));
    const fields = columns.map((c) => arrowField(c.name, c.type));
    this.#schema = new Schema(fields);
    this.#builders = fields.map((f) => makeBuilder({ type: f.type, nullValues: [null, undefined] }));
    this.#rows = 0;
    this.#writer = new RecordBatchStreamWriter();
    this.#writer.reset(this.#sink, this.#schema);
  }

  #fitsRow(row: Row): boolean {
    const columns = this.#columns!;
    for (let c = 0; c < columns.length; c++) {
      const col = columns[c];
      if (!Object.hasOwn(row, col.name)) continue;
      const v = row[col.name];
      if (v !== null && v !== undefined && !fits(col.type, v)) return false;
    }
    for (const k in row) if (!this.#index.has(k) && Object.hasOwn(row, k)) return false;
    return true;
  }

  #flush(): void {
    if (this.#rows === 0) return;
    const schema = this.#schema!;
    const children = this.#builders.map((b) => b.flush());
    const data = makeData({ type: new Struct(schema.fields), length: this.#rows, nullCount: 0, children });
    this.#writer!.write(new RecordBatch(schema, data));
    this.#rows = 0;
  }

  #finishStream(): void {
    // The schema was written when the stream started; finishing writes the end-of-stream marker.
    this.#writer!.finish();
    this.#writer = undefined;
  }

  #reject(row: Row): IngestError {
    const issues: string[] = [];
    for (const col of this.#columns!) {
      const v = Object.hasOwn(row, col.name) ? row[col.name] : null;
      if (v !== null && v !== undefined && !fits(col.type, v)) issues.push(`${col.name}: not a ${col.type} value`);
    }
    for (const k of Object.keys(row)) if (!this.#index.has(k)) issues.push(`${k}: not in the schema`);
    return new IngestError('row_rejected', `A row does not fit the Arrow schema: ${issues.join('; ')}`, {
      details: { issues },
    });
  }
}

/** Columns for `rows`: one per key (first-seen order), typed by their non-null values (mixed → json). */
function inferColumns(rows: Row[], from = 0): Column[] {
  const types = new Map<string, FieldType | undefined>();
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

/** Columns that hold both `columns`' data and the rows from `from` on. */
function widen(columns: Column[], rows: Row[], from: number): Column[] {
  const next = inferColumns(rows, from);
  const byName = new Map(next.map((c) => [c.name, c.type]));
  const out: Column[] = columns.map((c) => {
    const t = byName.get(c.name);
    return { name: c.name, type: t === undefined || t === c.type || allNullJson(t, c, rows, from) ? c.type : 'json' };
  });
  const known = new Set(columns.map((c) => c.name));
  for (const c of next) if (!known.has(c.name)) out.push(c);
  return out;
}

/** A column that is only null in the new rows keeps its type (inference calls it json). */
function allNullJson(t: FieldType, c: Column, rows: Row[], from: number): boolean {
  if (t !== 'json') return false;
  for (let r = from; r < rows.length; r++) {
    const v = Object.hasOwn(rows[r], c.name) ? rows[r][c.name] : null;
    if (v !== null && v !== undefined && !fits(c.type, v)) return false;
  }
  return true;
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
  let readers: AsyncIterable<Awaited<ReturnType<typeof RecordBatchReader.from>>>;
  try {
    readers = RecordBatchReader.readAll(bytes) as AsyncIterable<Awaited<ReturnType<typeof RecordBatchReader.from>>>;
  } catch (err) {
    throw corrupt(err);
  }
  const it = readers[Symbol.asyncIterator]();
  while (true) {
    let step: IteratorResult<Awaited<ReturnType<typeof RecordBatchReader.from>>>;
    try {
      step = await it.next();
    } catch (err) {
      throw corrupt(err);
    }
    if (step.done) return;
    const reader = step.value;
    const batchIt = (reader as AsyncIterable<RecordBatch>)[Symbol.asyncIterator]();
    while (true) {
      let b: IteratorResult<RecordBatch>;
      try {
        b = await batchIt.next();
      } catch (err) {
        throw corrupt(err);
      }
      if (b.done) break;
      yield rowsOf(b.value);
    }
  }
}

function rowsOf(batch: RecordBatch): Row[] {
  const fields = batch.schema.fields;
  const types = fields.map(logicalTypeOf);
  const vectors = fields.map((_, i) => batch.getChildAt(i)!);
  const n = batch.numRows;
  const rows: Row[] = new Array(n);
  for (let r = 0; r < n; r++) {
    const row: Row = {};
    for (let c = 0; c < fields.length; c++) {
      const value = fromArrowValue(types[c], vectors[c].get(r));
      const name = fields[c].name;
      if (name === '__proto__')
        Object.defineProperty(row, name, { value, enumerable: true, writable: true, configurable: true });
      else row[name] = value;
    }
    rows[r] = row;
  }
  return rows;
}

function corrupt(err: unknown): IngestError {
  if (IngestError.is(err)) return err;
  return new IngestError(
    'staging_corrupt',
    `Invalid Arrow IPC stream: ${err instanceof Error ? err.message : String(err)}`,
    {
      cause: err,
    },
  );
}
