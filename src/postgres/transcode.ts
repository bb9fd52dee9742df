import type { RecordSchema, Value } from '../contracts/values.js';
import type { CopyColumn, CopyOrigin } from './copy-encoding.js';

/*
 * Transcoding row paths (docs/decisions/0008-transcoded-row-paths.md): when a PostgreSQL source stages a planned
 * slice with a row codec (NDJSON, Arrow), or a PostgreSQL sink imports a slice staged with one, the bytes are
 * converted value by value — COPY text → the codec's bytes on export, the codec's bytes → COPY CSV on import —
 * without building a row object, a `Timestamp`, a `bigint` or a `JsonText` per value. The staged bytes decode to
 * exactly the rows the row path would have staged, and the COPY text sent to the target is the text the row path
 * would have sent, so every sink and every other source stays compatible with what these paths stage.
 */

/** One column of a PostgreSQL COPY text export (in the order of the COPY's columns). */
export interface CopyTextColumn {
  /** Column name (the row's key). */
  name: string;
  /** `pg_type.typname` of the column's base type (`int8`, `timestamptz`, `_int4`, an enum's name, …). */
  typname: string;
  /** `pg_type.typcategory` (`A` array, `E` enum, `N` numeric, `S` string, …). */
  typcategory: string;
  /** What the row path does with the column's text (unescaped COPY field): the `pg` type parser of the source. */
  parse: (text: string) => Value;
}

/**
 * Turns PostgreSQL COPY text (text format, whole or partial lines in any chunking) into a staging codec's bytes.
 * `push` returns the bytes ready so far (possibly none); `end` the rest, and throws when the text ends inside a line.
 */
export interface CopyTranscoder {
  push(chunk: Uint8Array): Uint8Array[];
  end(): Uint8Array[];
}

/** How the codec groups rows, for transcoders of codecs that do (`ReadHints.batchRows`: Arrow's `batchRows`). */
export interface CopyTranscoderOptions {
  batchRows?: number;
}

/**
 * Builds the transcoder of one slice; `schema` is the unit's schema (what the row path gives the codec), `options`
 * the codec's own grouping (what the row path's codec would cut at).
 */
export type CopyTranscoderFactory = (
  columns: CopyTextColumn[],
  schema: RecordSchema,
  options?: CopyTranscoderOptions,
) => Promise<CopyTranscoder>;

/**
 * Turns a slice's staged bytes (verified by the reader: `ImportSlice.reader.iterEncoded`) into the COPY CSV lines
 * `CsvEncoder.encodeRow` writes for the rows the codec decodes — or, for a transcoder registered with format `text`,
 * the COPY text lines `CsvEncoder.encodeTextRow` writes — in pieces of about `pieceBytes`. `onRows` is told how many
 * rows each piece holds. A row the encoder would refuse is refused the same way (`row_rejected`).
 */
export type StagedToCsv = (
  bytes: AsyncIterable<Uint8Array>,
  opts: {
    /** The staged schema (the manifest's). */
    schema: RecordSchema;
    /** The target columns, in COPY order. */
    columns: CopyColumn[];
    origin: CopyOrigin;
    pieceBytes: number;
    onRows?: (rows: number) => void;
  },
) => AsyncIterable<Uint8Array>;

export { canonicalInteger, canonicalIntegerBytes } from '../codecs/canonical-integer.js';

/** Copy `src[from, to)` into `out` at `pos` (room checked by the caller); the position after it. */
export function copyBytes(src: Buffer, from: number, to: number, out: Buffer, pos: number): number {
  // a native copy costs more than a loop for the short fields most rows hold
  if (to - from > 256) return pos + src.copy(out, pos, from, to);
  for (let i = from; i < to; i++) out[pos++] = src[i];
  return pos;
}

/**
 * The text `pgText` writes for the Timestamp of the fast-range text `b[from, end)` (`YYYY-MM-DD[ T]HH:MM:SS[.f]`,
 * checked by `isFastTimestampBytes`, its zone suffix left out): date, a space, time, the fraction without trailing
 * zeros, and `+00` when `zoned` — written into `out` at `pos`; the position after it.
 */
export function putPgTimestampText(
  b: Buffer,
  from: number,
  end: number,
  zoned: boolean,
  out: Buffer,
  pos: number,
): number {
  let fracEnd = end;
  while (fracEnd > from + 20 && b[fracEnd - 1] === 48) fracEnd--;
  pos = copyBytes(b, from, from + 10, out, pos);
  out[pos++] = 0x20;
  pos = copyBytes(b, from + 11, from + 19, out, pos);
  if (fracEnd > from + 20) {
    out[pos++] = 0x2e; // '.'
    pos = copyBytes(b, from + 20, fracEnd, out, pos);
  }
  if (zoned) {
    out[pos++] = 0x2b; // '+'
    out[pos++] = 0x30;
    out[pos++] = 0x30;
  }
  return pos;
}
