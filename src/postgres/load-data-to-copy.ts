import { isUtf8 } from 'node:buffer';
import { DEFAULT_MAX_TEXT_LINE_BYTES } from '../codecs/text-lines.js';
import { isFastTimestampBytes } from '../codecs/timestamp-text.js';
import type { RecordSchema, Row } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { loadDataFieldPlans, loadDataLineParser } from '../mysql/load-data-codec.js';
import { LineSizeCheck } from '../util/line-size-check.js';
import { type CopyColumn, type CopyOrigin, CsvEncoder } from './copy-encoding.js';
import { type ByteLineWriter, CopyPieces } from './copy-pieces.js';
import { canonicalIntegerBytes, copyBytes, putPgTimestampText, type StagedToCsv } from './transcode.js';

/*
 * MySQL LOAD DATA text (`mysql-tsv` staging) → PostgreSQL COPY text, field by field
 * (docs/decisions/0008-transcoded-row-paths.md): the MariaDB/MySQL → PostgreSQL path without a row object. The row path imports a line as
 * `CsvEncoder.encodeTextRow(loadDataLineParser(plans)(line))`; this sends every field the same text from the line's
 * own bytes. The two formats are near twins — tab-separated, `\N` for NULL, and a LOAD DATA field escaped only with
 * `\n \r \t \\` is already COPY text of the same string — so most fields are copied as they stand:
 *
 * - text, decimals, dates, BIT digits, JSON (a `JsonText`'s text): copied when every backslash starts `\n \r \t \\`
 *   and the field holds no raw CR or NUL (a string into a `json` target column is JSON-quoted by the row path: not
 *   copied);
 * - integers in their canonical form (what `Number` / `BigInt` print back unchanged), booleans `1` / `0`, floats that
 *   `String(Number(text))` prints back unchanged;
 * - binary values' lowercase hex digits, written as bytea's `\x` text;
 * - DATETIME / TIMESTAMP text `YYYY-MM-DD HH:MM:SS[.f]` of years 1700–2250, rewritten as `pgText` writes the
 *   Timestamp the row path revives from it (fraction without trailing zeros, `+00` for a TIMESTAMP).
 *
 * Any other line — another number of fields, a `\0` or other escape, a float printed otherwise, a timestamp outside
 * the fast range, a value into a `json` target that is not JSON text — goes through the row path's own functions, so
 * its text and its errors are the row path's. A line that is not UTF-8 is decoded as the row path decodes it (U+FFFD)
 * and goes the same way.
 */

const TAB = 9;
const NL = 10;
const CR = 13;
const BACKSLASH = 92;

/** How a staged field is read from the bytes. */
const A_SLOW = 0;
/** Escaped text, copied (`\n \r \t \\` only). */
const A_TEXT = 1;
const A_INT = 2;
const A_BIGINT = 3;
const A_DATETIME = 4;
const A_TIMESTAMP = 5;
const A_BOOLEAN = 6;
const A_FLOAT = 7;
/** Hex digits of a binary value (lowercase, as the source stages them). */
const A_BINARY = 8;

/** What a target column gets from the line being scanned. */
const F_NULL = 0;
const F_COPY = 1;
const F_TS = 2;
const F_TSZ = 3;
const F_T = 4;
const F_F = 5;
/** Hex digits, written as bytea's `\\x` text escaped for COPY. */
const F_HEX = 6;

/**
 * Whether the LOAD DATA field `b[from, to)` is COPY text of the same string as it stands (a raw tab: the line has more
 * fields than the schema).
 */
function plainField(b: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const x = b[i];
    if (x === BACKSLASH) {
      const y = b[++i];
      if (y !== 0x6e && y !== 0x72 && y !== 0x74 && y !== BACKSLASH) return false; // n r t \
    } else if (x === CR || x === 0 || x === TAB) return false;
  }
  return true;
}

class LoadDataToCopyText implements ByteLineWriter {
  readonly #encoder: CsvEncoder;
  readonly #parse: (line: string, n: number) => Row;
  /** Per staged field: how it is read (`A_*`). */
  readonly #action: Uint8Array;
  /** Per staged field: the target column it feeds, or -1. */
  readonly #target: Int32Array;
  /** Per target column: what it gets from the current line (`F_*`), from which bytes. */
  readonly #what: Uint8Array;
  readonly #from: Int32Array;
  readonly #to: Int32Array;
  /** Whether no line can be read as bytes (duplicate staged names). */
  readonly #allSlow: boolean;
  rows = 0;

  constructor(schema: RecordSchema, columns: CopyColumn[], origin: CopyOrigin) {
    const plans = loadDataFieldPlans(schema, 'decode');
    this.#parse = loadDataLineParser(plans);
    this.#encoder = new CsvEncoder(columns, origin);
    const byName = new Map(columns.map((c, i) => [c.name, i]));
    const n = plans.length;
    this.#action = new Uint8Array(n);
    this.#target = new Int32Array(n);
    this.#allSlow = new Set(plans.map((p) => p.name)).size !== n;
    for (let i = 0; i < n; i++) {
      const col = byName.get(plans[i].name) ?? -1;
      const json = col >= 0 && columns[col].kind === 'json';
      this.#target[i] = col;
      this.#action[i] = actionOf(plans[i].column.kind, schema.fields[i].type === 'boolean', json);
    }
    this.#what = new Uint8Array(columns.length);
    this.#from = new Int32Array(columns.length);
    this.#to = new Int32Array(columns.length);
  }

  /** Room {@link lineBytes} needs for a line of `n` bytes. */
  room(n: number): number {
    return n + 4 * this.#what.length + 1;
  }

  /**
   * Write the COPY text line (with its newline) of the LOAD DATA line `b[s, e)` (valid UTF-8, no newline) into `out`
   * at `pos` (at least {@link room} bytes free): the position after it, or -1 when the line needs {@link line}.
   */
  lineBytes(b: Buffer, s: number, e: number, out: Buffer, pos: number): number {
    if (this.#allSlow || !this.#scan(b, s, e)) return -1;
    this.rows++;
    const what = this.#what;
    for (let c = 0; c < what.length; c++) {
      if (c > 0) out[pos++] = TAB;
      switch (what[c]) {
        case F_NULL:
          out[pos++] = BACKSLASH;
          out[pos++] = 0x4e; // N
          break;
        case F_COPY:
          pos = copyBytes(b, this.#from[c], this.#to[c], out, pos);
          break;
        case F_HEX:
          out[pos++] = BACKSLASH;
          out[pos++] = BACKSLASH;
          out[pos++] = 0x78; // x
          pos = copyBytes(b, this.#from[c], this.#to[c], out, pos);
          break;
        case F_TS:
        case F_TSZ:
          pos = putPgTimestampText(b, this.#from[c], this.#to[c], what[c] === F_TSZ, out, pos);
          break;
        default:
          out[pos++] = what[c] === F_T ? 0x74 : 0x66; // t f
      }
    }
    out[pos++] = NL;
    return pos;
  }

  /** Fill `#what` from the fields of `b[s, e)`; `false` when the line needs the row path. */
  #scan(b: Buffer, s: number, e: number): boolean {
    this.#what.fill(F_NULL);
    const actions = this.#action;
    const nf = actions.length;
    let from = s;
    for (let i = 0; i < nf; i++) {
      // the last field runs to the line's end: a tab in it (more fields) fails every check of #field
      const to = i === nf - 1 ? e : b.indexOf(TAB, from);
      if (to < 0 || to > e) return false; // fewer fields
      // \N is NULL: the target column keeps F_NULL (staged names are unique)
      const isNull = to - from === 2 && b[from] === BACKSLASH && b[from + 1] === 0x4e;
      if (!isNull && !this.#field(actions[i], this.#target[i], b, from, to)) return false;
      from = to + 1;
    }
    return true;
  }

  /** Read field `b[from, to)` by `action` into target column `col` (-1: checked only); `false` for the row path. */
  #field(action: number, col: number, b: Buffer, from: number, to: number): boolean {
    let what = F_COPY;
    switch (action) {
      case A_TEXT:
        if (!plainField(b, from, to)) return false;
        break;
      case A_INT:
        if (!canonicalIntegerBytes(b, from, to, 11)) return false;
        break;
      case A_BIGINT:
        if (!canonicalIntegerBytes(b, from, to, 20)) return false;
        break;
      case A_DATETIME:
      case A_TIMESTAMP:
        if (b[from + 10] !== 0x20 || !isFastTimestampBytes(b, from, to, '')) return false;
        what = action === A_TIMESTAMP ? F_TSZ : F_TS;
        break;
      case A_BOOLEAN:
        if (to - from !== 1 || (b[from] !== 0x31 && b[from] !== 0x30)) return false;
        what = b[from] === 0x31 ? F_T : F_F;
        break;
      case A_BINARY:
        if ((to - from) % 2 !== 0) return false;
        for (let i = from; i < to; i++) {
          const x = b[i];
          if ((x < 0x30 || x > 0x39) && (x < 0x61 || x > 0x66)) return false; // 0-9 a-f
        }
        what = F_HEX;
        break;
      case A_FLOAT: {
        if (to - from > 32) return false;
        const t = b.toString('latin1', from, to);
        if (String(Number(t)) !== t) return false;
        break;
      }
      default:
        return false;
    }
    if (col >= 0) {
      this.#what[col] = what;
      this.#from[col] = from;
      this.#to[col] = to;
    }
    return true;
  }

  /** The COPY text line (with its newline) of LOAD DATA line `lineNo` through the row path's functions. */
  line(line: string, lineNo: number): string {
    this.rows++;
    this.#encoder.rows = this.rows - 1;
    return this.#encoder.encodeTextRow(this.#parse(line, lineNo));
  }
}

/**
 * How a staged field of MySQL kind `kind` is read from the bytes; `json` when its target column is `json`/`jsonb`
 * (the row path JSON-quotes strings and prints numbers and booleans as JSON there).
 */
function actionOf(kind: string, boolean: boolean, json: boolean): number {
  if (boolean) return json ? A_SLOW : A_BOOLEAN;
  switch (kind) {
    case 'json':
      return A_TEXT;
    case 'int':
      return json ? A_SLOW : A_INT;
    case 'bigint':
      return A_BIGINT;
    case 'float':
      return json ? A_SLOW : A_FLOAT;
    case 'datetime':
      return json ? A_SLOW : A_DATETIME;
    case 'timestamp':
      return json ? A_SLOW : A_TIMESTAMP;
    case 'binary':
      return json ? A_SLOW : A_BINARY;
    default:
      // decimal, date, bit, string: a string value (JSON-quoted into a json target)
      return json ? A_SLOW : A_TEXT;
  }
}

/**
 * A staged `mysql-tsv` slice → the COPY text lines `CsvEncoder.encodeTextRow` writes for the rows the row path
 * decodes, in pieces of about `pieceBytes`.
 * @internal
 */
export const loadDataToCopyText: StagedToCsv = async function* (bytes, opts) {
  const t = new LoadDataToCopyText(opts.schema, opts.columns, opts.origin);
  const max = DEFAULT_MAX_TEXT_LINE_BYTES;
  const size = new LineSizeCheck(
    max,
    (row) =>
      new IngestError('staging_corrupt', `LOAD DATA text line ${row + 1} is longer than the line cap of ${max} bytes`, {
        details: { line: row + 1, maxLineBytes: max },
      }),
  );
  const out = new CopyPieces(opts.pieceBytes);
  const lineOf = (b: Buffer, s: number, e: number, n: number, utf8: boolean) => {
    if (!utf8 || !out.bytes(t, b, s, e)) out.text(t.line(b.toString('utf8', s, e), n));
  };
  let carry: Buffer[] = [];
  let lineNo = 0;
  for await (const chunk of bytes) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    size.check(buf);
    const last = buf.lastIndexOf(NL);
    if (last < 0) {
      carry.push(buf);
      continue;
    }
    const head = carry.length ? Buffer.concat([...carry, buf.subarray(0, last + 1)]) : buf.subarray(0, last + 1);
    carry = last + 1 < buf.length ? [Buffer.from(buf.subarray(last + 1))] : [];
    // a line that is not UTF-8 is decoded as the row path decodes it (U+FFFD; a newline is never inside a character)
    const utf8 = isUtf8(head);
    for (let s = 0, e = head.indexOf(NL); e >= 0; s = e + 1, e = head.indexOf(NL, s))
      lineOf(head, s, e, ++lineNo, utf8 || isUtf8(head.subarray(s, e)));
    yield* out.take(opts.onRows);
  }
  if (carry.length) {
    throw new IngestError('staging_corrupt', `LOAD DATA text ends inside row ${lineNo + 1} (no final newline)`, {
      details: { line: lineNo + 1 },
    });
  }
  yield* out.take(opts.onRows, true);
};
