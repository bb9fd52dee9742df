import { isUtf8 } from 'node:buffer';
import { type Data, makeData, RecordBatch, RecordBatchStreamWriter, Schema, Struct, Utf8 } from 'apache-arrow';
import { ArrowChunkSink } from '../arrow/arrow-batches.js';
import { absentField, arrowField, type ColumnKind, kindForField } from '../arrow/arrow-types.js';
import type { FieldSchema, RecordSchema, Value } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { LineCarry } from '../util/line-carry.js';
import { JsonText } from '../values/json-text.js';
import { Timestamp } from '../values/timestamp.js';
import {
  BinaryColumn,
  BoolColumn,
  type CopyColumnBuffer,
  Float64Column,
  GenericColumn,
  Int32Column,
  Int64Column,
  type ParseState,
  TimestampColumn,
  Utf8Column,
  WidenColumn,
} from './arrow-copy-columns.js';
import type { CopyTextColumn, CopyTranscoder, CopyTranscoderFactory, CopyTranscoderOptions } from './transcode.js';
import { TEXT_PARSERS } from './type-mapping.js';

/*
 * PostgreSQL COPY text → Arrow IPC stream, column-wise (docs/decisions/0008-transcoded-row-paths.md). The bytes decode
 * (arrowCodec().decode) to exactly the rows the row path stages — `column.parse(text)` per field, a row object per
 * line, `arrowCodec().encode(rows, schema)` — with the same Arrow schema and field metadata, but no JS value is made
 * for most fields: digits become Int32/Int64 words, timestamps µs by arithmetic, text and JSON bytes are copied
 * (COPY-unescaped) into Utf8 buffers, bytea hex into Binary. What no fast reader recognises goes through `parse` and
 * the codec's own conversion for that field (arrow-copy-columns.ts).
 */

/** Rows per record batch unless the codec says otherwise: the Arrow codec's default `batchRows`. */
const BATCH_ROWS = 10_000;
/** Rows the column buffers make room for at first (they grow by doubling). */
const INITIAL_ROWS = 10_000;
/** A record batch is also cut when its variable-length data reaches this size (wide rows). */
const BATCH_BYTES = 8 * 1024 * 1024;

const NL = 10;
const TAB = 9;

const TEXT_KINDS = new Set<ColumnKind>(['string', 'decimal', 'date', 'time', 'uuid', 'interval']);

/**
 * The column kind the Arrow codec chooses for the field, given the value class the column's parser gives (the codec
 * looks at the first non-null value: a `Timestamp` makes a µs column, a `JsonText` a text column). For the columns of
 * a PostgreSQL source this is also what the schema alone gives (except a domain over json/jsonb whose first
 * record batch of the row path holds only NULLs: then the row path writes tagged JSON text, which decodes the same).
 */
function kindOf(field: FieldSchema, parse: CopyTextColumn['parse']): ColumnKind {
  const sample: Value | undefined =
    parse === TEXT_PARSERS.timestamptz || parse === TEXT_PARSERS.timestamp
      ? Timestamp.fromEpochMicros(0, { zoned: parse === TEXT_PARSERS.timestamptz })
      : parse === TEXT_PARSERS.json
        ? new JsonText('null')
        : undefined;
  return kindForField(field, sample);
}

/**
 * The accumulator for one column: a fast reader where the column's parser (recognised by identity) and the kind
 * allow it, else the generic one (the parser and the codec's conversion per field).
 */
function columnFor(field: FieldSchema, col: CopyTextColumn, cap: number): CopyColumnBuffer {
  const { name, parse } = col;
  const kind = kindOf(field, parse);
  const P = TEXT_PARSERS;
  if (parse === P.bigint && kind === 'int64') return new Int64Column(name, kind, parse, cap);
  if (parse === P.int && kind === 'int32') return new Int32Column(name, kind, parse, cap);
  if (parse === P.float && kind === 'float64') return new Float64Column(name, kind, parse, cap);
  if (parse === P.bool && kind === 'boolean') return new BoolColumn(name, kind, parse, cap);
  if ((parse === P.timestamptz && kind === 'ts_utc') || (parse === P.timestamp && kind === 'ts_local'))
    return new TimestampColumn(name, kind, parse, cap);
  if (parse === P.json && kind === 'json_text') return new Utf8Column(name, kind, parse, cap);
  if (parse === P.bytea && kind === 'binary') return new BinaryColumn(name, kind, parse, cap);
  if (parse === P.identity && TEXT_KINDS.has(kind)) return new Utf8Column(name, kind, parse, cap);
  return new GenericColumn(name, kind, parse, cap);
}

class CopyToArrow implements CopyTranscoder {
  readonly #fields: FieldSchema[];
  readonly #copyColumns: CopyTextColumn[];
  /** Accumulators in COPY column order. */
  readonly #columns: CopyColumnBuffer[];
  /** For each schema field (Arrow column order), its COPY column. */
  readonly #order: number[];
  /** Rows per record batch: the codec's `batchRows`, as the row path cuts them. */
  readonly #batchRows: number;
  #rows = 0;
  #line = 0;
  /** Where the line being parsed starts. */
  #lineStart = 0;
  /** The current IPC stream has the codec's hidden column of absent keys (streams after a widening do). */
  #withAbsent = false;
  readonly #carry = new LineCarry();
  #writer: RecordBatchStreamWriter | undefined;
  #schema: Schema | undefined;
  #done = false;
  readonly #sink = new ArrowChunkSink();
  readonly #st: ParseState = { lossy: false, end: 0, line: 0 };

  constructor(columns: CopyTextColumn[], schema: RecordSchema, options: CopyTranscoderOptions = {}) {
    const { batchRows } = options;
    this.#batchRows =
      batchRows !== undefined && Number.isSafeInteger(batchRows) && batchRows > 0 ? batchRows : BATCH_ROWS;
    this.#fields = schema.fields;
    this.#copyColumns = columns;
    const at = new Map(columns.map((c, i) => [c.name, i]));
    if (columns.length !== schema.fields.length || at.size !== columns.length) throw mismatch(columns, schema);
    this.#order = schema.fields.map((f) => {
      const i = at.get(f.name);
      if (i === undefined) throw mismatch(columns, schema);
      return i;
    });
    const fieldOf = new Map(schema.fields.map((f) => [f.name, f]));
    this.#columns = columns.map((c) => columnFor(fieldOf.get(c.name)!, c, this.#cap()));
  }

  push(chunk: Uint8Array): Uint8Array[] {
    this.#assertOpen();
    let buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const out: Uint8Array[] = [];
    if (this.#carry.bytes) {
      // a long line is joined once, when it ends (LineCarry)
      const nl = buf.indexOf(NL);
      if (nl < 0) {
        this.#carry.add(Buffer.from(buf));
        return out;
      }
      const line = this.#carry.take(buf.subarray(0, nl + 1));
      this.#parse(line, 0, line.length, out);
      buf = buf.subarray(nl + 1);
    }
    const last = buf.lastIndexOf(NL);
    if (last < 0) {
      if (buf.length) this.#carry.add(Buffer.from(buf));
      return out;
    }
    this.#parse(buf, 0, last + 1, out);
    if (last + 1 < buf.length) this.#carry.add(Buffer.from(buf.subarray(last + 1)));
    return out;
  }

  end(): Uint8Array[] {
    this.#assertOpen();
    this.#done = true;
    if (this.#carry.bytes)
      throw new IngestError('source_failed', `COPY text ends inside line ${this.#line + 1} (no final newline)`, {
        details: { line: this.#line + 1 },
      });
    const out: Uint8Array[] = [];
    if (this.#rows > 0) this.#flush(out);
    if (!this.#writer) {
      // no rows: the stream the codec writes for an empty slice (the declared fields' kinds, no batch)
      this.#start(this.#fields.map((f) => kindForField(f, undefined)));
    }
    this.#writer!.finish();
    this.#writer = undefined;
    const tail = this.#sink.take();
    if (tail) out.push(tail);
    return out;
  }

  /** Initial row capacity of a column buffer. */
  #cap(): number {
    return Math.min(this.#batchRows, INITIAL_ROWS);
  }

  #assertOpen(): void {
    if (this.#done) throw new Error('copyToArrow: transcoder already ended');
  }

  /** Parse the whole lines of `buf[start, end)` (`end - 1` is a newline). */
  #parse(buf: Buffer, start: number, end: number, out: Uint8Array[]): void {
    this.#st.lossy = !isUtf8(buf.subarray(start, end));
    let p = start;
    while (p < end) {
      try {
        p = this.#lines(buf, p, end, out);
      } catch (err) {
        if (!(err instanceof WidenColumn)) throw err;
        // as the row path: the rows so far end the stream, a new one starts with the column as tagged JSON text
        this.#widen(err.column, out);
        p = this.#lineStart;
        this.#line--;
      }
    }
    if (this.#rows > 0 && this.#bytes() >= BATCH_BYTES) this.#flush(out);
  }

  #lines(buf: Buffer, start: number, end: number, out: Uint8Array[]): number {
    const st = this.#st;
    const cols = this.#columns;
    const last = cols.length - 1;
    let p = start;
    while (p < end) {
      this.#lineStart = p;
      st.line = ++this.#line;
      if (last < 0) {
        // no columns: every line is empty
        if (buf[p] !== NL) throw this.#badLine(buf, p, -1);
        p++;
      }
      for (let c = 0; c <= last; c++) {
        const col = cols[c];
        if (buf[p] === 92 && buf[p + 1] === 78 && (buf[p + 2] === TAB || buf[p + 2] === NL)) {
          col.nul();
          p += 2;
        } else p = col.read(buf, p, st);
        const t = buf[p];
        if (t !== (c === last ? NL : TAB)) throw this.#badLine(buf, p, c);
        p++;
      }
      if (++this.#rows >= this.#batchRows) this.#flush(out);
    }
    return p;
  }

  #widen(name: string, out: Uint8Array[]): void {
    for (const c of this.#columns) c.truncate(this.#rows);
    if (this.#rows > 0) this.#flush(out);
    if (this.#writer) {
      this.#writer.finish();
      this.#writer = undefined;
      const bytes = this.#sink.take();
      if (bytes) out.push(bytes);
    }
    const at = this.#copyColumns.findIndex((c) => c.name === name);
    const col = this.#copyColumns[at];
    this.#columns[at] = new GenericColumn(col.name, 'json', col.parse, this.#cap());
    this.#withAbsent = true;
  }

  #bytes(): number {
    let n = 0;
    for (const c of this.#columns) n += c.bytes;
    return n;
  }

  #badLine(buf: Buffer, p: number, c: number): Error {
    const line = this.#line;
    const why =
      c < 0
        ? 'is not empty, but the query has no columns'
        : buf[p] === TAB
          ? `has more than the ${this.#columns.length} columns of the query`
          : `ends after ${c + 1} of the ${this.#columns.length} columns`;
    return new IngestError('source_failed', `COPY text line ${line} ${why}`, {
      details: { line, column: this.#copyColumns[c]?.name },
    });
  }

  #start(kinds: ColumnKind[]): void {
    const fields = this.#fields.map((f, i) => arrowField(f.name, kinds[i]));
    if (this.#withAbsent) fields.push(absentField());
    this.#schema = new Schema(fields);
    this.#writer = new RecordBatchStreamWriter();
    this.#writer.reset(this.#sink, this.#schema);
  }

  #flush(out: Uint8Array[]): void {
    if (!this.#writer) this.#start(this.#order.map((i) => this.#columns[i].kind));
    const length = this.#rows;
    const children: Data[] = this.#order.map((i) => this.#columns[i].take());
    if (this.#withAbsent) {
      // every key is present in every row: the hidden column is all NULL
      children.push(
        makeData({
          type: new Utf8(),
          length,
          nullCount: length,
          nullBitmap: new Uint8Array((length + 7) >> 3),
          valueOffsets: new Int32Array(length + 1),
        }),
      );
    }
    const schema = this.#schema!;
    const data = makeData({ type: new Struct(schema.fields), length, nullCount: 0, children });
    this.#writer!.write(new RecordBatch(schema, data));
    this.#rows = 0;
    const bytes = this.#sink.take();
    if (bytes) out.push(bytes);
  }
}

function mismatch(columns: CopyTextColumn[], schema: RecordSchema): Error {
  return new IngestError(
    'config_invalid',
    `copyToArrow: the COPY columns (${columns.map((c) => c.name).join(', ')}) are not the schema's fields (${schema.fields.map((f) => f.name).join(', ')})`,
  );
}

/**
 * COPY text of a PostgreSQL source → the Arrow codec's IPC stream, without row objects (see the file comment).
 * @internal
 */
export const copyToArrow: CopyTranscoderFactory = async (columns, schema, options) =>
  new CopyToArrow(columns, schema, options);
