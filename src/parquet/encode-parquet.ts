import { ByteWriter, ParquetWriter } from 'hyparquet-writer';
import type { RecordSchema, Row } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { throwIfAborted } from '../util/abort.js';
import {
  exactJsonFields,
  inferRecordSchema,
  type ListShape,
  listFields,
  type ParquetArrayEncoding,
  type ParquetSchemaElement,
  toColumns,
  toParquetSchema,
} from './parquet-schema.js';

export type { ParquetArrayEncoding } from './parquet-schema.js';

/** Options of {@link encodeParquet}. @public */
export interface ParquetEncodeOptions {
  /**
   * Schema of the rows. Without one, the schema is inferred from the first row group (numbers become `float64`,
   * mixed or nested values `json`); a later row with a value that does not fit, or an extra column, is refused with
   * `row_rejected`.
   */
  schema?: RecordSchema;
  /** Rows per row group; memory is bounded by one row group's rows plus its encoded bytes. @defaultValue 10000 */
  rowGroupSize?: number;
  /** Page compression. @defaultValue 'snappy' */
  compression?: 'snappy' | 'uncompressed';
  /**
   * How array fields (type `json` with `logical.element`) are written: `'list'` as a Parquet LIST of the element's
   * type (one nested LIST per `logical.dimensions`, else 1; a value of other dimensions, a ragged one or PostgreSQL
   * array text is refused with `row_rejected`), `'json'` as JSON text (converted type JSON), or one of these per
   * column name (columns not named get `'list'`). Arrays without an element type, and `box[]`, are always JSON text.
   * @defaultValue 'list'
   */
  arrays?: ParquetArrayEncoding | Readonly<Record<string, ParquetArrayEncoding>>;
  /** Stops encoding between row groups. */
  signal?: AbortSignal;
}

/** Default rows per row group of {@link encodeParquet}. @public */
export const DEFAULT_ROW_GROUP_SIZE = 10_000;

/**
 * Encode rows as one Parquet file, streamed: the bytes of each row group are yielded as soon as it is encoded,
 * so a consumer such as `ObjectStore.put` sees the file arrive in row-group-sized chunks and memory stays bounded
 * by the row-group size, not by the file's size. Built on `hyparquet-writer` (see docs/decisions/0002-parquet-writer.md).
 *
 * Types map as: `string` → UTF8, `decimal` with a precision ≤ 38 → DECIMAL(p,s) (`NaN` and values needing more digits
 * are refused), other `decimal` → UTF8 (exact text), `uuid` → UUID, `int32` → INT32, `int64` → INT64, `float64` → DOUBLE,
 * `boolean` → BOOLEAN, `timestamp` → INT64 TIMESTAMP(MICROS) (`Timestamp` exact, `Date` ms × 1000, ±infinity as the
 * int64 max/min, `isAdjustedToUTC` unless `logical.withTimeZone` is false), `date` → INT32 DATE, `json` → JSON
 * (a column whose first row group holds `JsonText` is written as that exact text, converted and logical type JSON),
 * `binary` → BYTE_ARRAY; a non-nullable field is REQUIRED. Arrays (`json` with `logical.element`) are Parquet LISTs
 * of the element's type by default (see `arrays`): `<name> (LIST) { repeated group list { optional <element> } }`,
 * nested per dimension; NULL elements stay NULL, an empty array stays empty.
 *
 * @example
 * ```ts
 * import { encodeParquet } from '@nucleus/ingestion/parquet';
 * import { MemoryObjectStore } from '@nucleus/ingestion';
 * const store = new MemoryObjectStore();
 * async function* rows() { yield [{ id: 1, name: 'a' }, { id: 2, name: 'b' }]; }
 * await store.put('out/part-0.parquet', encodeParquet(rows(), { rowGroupSize: 10_000 }));
 * ```
 * @throws IngestError `row_rejected` when a value does not fit its column; `config_invalid` for a bad
 * `rowGroupSize`; `aborted` when `signal` fires.
 */
export async function* encodeParquet(
  batches: AsyncIterable<Row[]> | Iterable<Row[]>,
  opts: ParquetEncodeOptions = {},
): AsyncGenerator<Uint8Array> {
  const rowGroupSize = opts.rowGroupSize ?? DEFAULT_ROW_GROUP_SIZE;
  if (!Number.isInteger(rowGroupSize) || rowGroupSize <= 0) {
    throw new IngestError('config_invalid', `Expected \`rowGroupSize\` to be a positive integer, got ${rowGroupSize}`);
  }
  const codec = opts.compression === 'uncompressed' ? 'UNCOMPRESSED' : 'SNAPPY';
  let schema = opts.schema;
  let out: ByteWriter | undefined;
  let writer: ParquetWriter | undefined;
  let pending: Row[] = [];
  let written = 0;
  let exactJson: Set<string> = new Set();
  let lists: Map<string, ListShape> = new Map();
  let parquetSchema: ParquetSchemaElement[] = [];

  const open = (first: readonly Row[] = []): ParquetWriter => {
    out = new ByteWriter(64 * 1024);
    lists = listFields(schema ?? { fields: [] }, opts.arrays);
    exactJson = exactJsonFields(schema ?? { fields: [] }, first);
    for (const name of lists.keys()) exactJson.delete(name);
    parquetSchema = toParquetSchema(schema ?? { fields: [] }, exactJson, lists);
    writer = new ParquetWriter({ writer: out, schema: parquetSchema as never, codec, createdBy: '@nucleus/ingestion' });
    return writer;
  };
  /** Bytes produced since the last call; the buffer is reused for the next row group. */
  const drain = (): Uint8Array | undefined => {
    if (!out || out.index === 0) return undefined;
    const bytes = new Uint8Array(out.buffer, 0, out.index).slice();
    out.index = 0;
    return bytes;
  };
  const flushGroup = (rows: Row[]): void => {
    schema ??= inferRecordSchema(rows);
    const w = writer ?? open(rows);
    const columns = toColumns(rows, schema, written, exactJson, lists);
    written += rows.length;
    const columnData = schema.fields.map((f, i) => ({ name: f.name, data: columns[i]!, nullable: f.nullable }));
    void w.write({ columnData: columnData as never, rowGroupSize: rows.length });
  };

  for await (const batch of batches) {
    throwIfAborted(opts.signal, 'Parquet encoding');
    for (const row of batch) {
      pending.push(row);
      if (pending.length >= rowGroupSize) {
        flushGroup(pending);
        pending = [];
        const bytes = drain();
        if (bytes) yield bytes;
      }
    }
  }
  if (pending.length > 0) flushGroup(pending);
  pending = [];
  const w = writer ?? open();
  // exact JSON columns were written as bytes, past the writer's own JSON conversion (JSON.stringify: 1.50 → 1.5);
  // the footer, written now, says converted type JSON as well, which readers such as DuckDB need to see JSON
  for (const e of parquetSchema) if (e.logical_type?.type === 'JSON') e.converted_type = 'JSON';
  void w.finish();
  const tail = drain();
  if (tail) yield tail;
}
