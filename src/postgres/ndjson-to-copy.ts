import { isUtf8 } from 'node:buffer';
import { DEFAULT_MAX_LINE_BYTES, decodeLine, lineTooLong, ndjsonByteBlocks } from '../codecs/ndjson-codec.js';
import { isFastTimestampBytes } from '../codecs/timestamp-text.js';
import { type Conversion, compileRowPlan, type RowPlan } from '../codecs/value-encoding.js';
import type { RecordSchema } from '../contracts/values.js';
import { type CopyColumn, type CopyOrigin, CsvEncoder } from './copy-encoding.js';
import { type ByteLineWriter, CopyPieces } from './copy-pieces.js';
import { canonicalIntegerBytes, copyBytes, putPgTimestampText, type StagedToCsv } from './transcode.js';

/*
 * NDJSON → COPY text, value by value (docs/decisions/0008-transcoded-row-paths.md). The row path imports a line as
 * `CsvEncoder.encodeRow(decodeRow(line, plan))`; this sends every field the same text from the line itself — no
 * JSON.parse, no row object, no bigint, Timestamp or JsonText, no string — by scanning the bytes of the forms the NDJSON
 * encoder writes and copying each field's bytes from the line into the output:
 *
 * - A JSON string's escaped content is already COPY text for the same string when it holds no `\u` escape and no
 *   raw control character: JSON's `\\ \b \f \n \r \t` are COPY's own escapes, and `\"`, `\/` read as `"` and `/`
 *   in COPY text (a backslash before any other character stands for that character).
 * - `int64` columns' bare digits, `timestamp` columns' ISO text (rewritten to PostgreSQL's UTC text, as `pgText`
 *   writes the revived Timestamp), `{"$j":"…"}` (a JsonText: its text), `true`/`false`, canonical numbers, `null`.
 *
 * Anything else in a line — whitespace, another tag, an array or object, a `\u` escape, a non-canonical number, a
 * string in a `json` target column, a key with an escape — sends that line through the row path's own functions
 * (`decodeLine` + `CsvEncoder.encodeTextRow`), so its text and its errors are the row path's. A block of lines that is
 * not valid UTF-8 is first re-encoded from the text the row path decodes (U+FFFD for invalid bytes), so its fields are
 * the row path's too.
 */

/** A JSON number. */
const JSON_NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

const QUOTE = 34;
const TAB = 9;
const NL = 10;
const BACKSLASH = 92;

/**
 * Set by {@link stringEndBytes}: the string's escaped content is COPY text of the same string as it stands — no raw
 * control character (not JSON), no backslash before anything but `" \ / b f n r t` (a `\u` escape, or not JSON).
 */
let plainText = true;

/**
 * Index of the quote closing the JSON string whose content starts at `b[from]` (before `to`), or -1; sets
 * {@link plainText}: no raw control character and no escape but `\" \\ \/ \b \f \n \r \t`.
 */
function stringEndBytes(b: Buffer, from: number, to: number): number {
  plainText = true;
  for (let i = from; i < to; i++) {
    const x = b[i];
    if (x === QUOTE) return i;
    if (x === BACKSLASH) {
      const y = b[++i];
      if (
        y !== QUOTE &&
        y !== BACKSLASH &&
        y !== 0x2f &&
        y !== 0x62 &&
        y !== 0x66 &&
        y !== 0x6e &&
        y !== 0x72 &&
        y !== 0x74
      )
        plainText = false;
    } else if (x < 0x20) plainText = false;
  }
  return -1;
}

/** Whether `b[pos, e)` starts with the bytes of `head` (short: a key, a tag). */
function startsWithBytes(b: Buffer, pos: number, e: number, head: Buffer): boolean {
  const n = head.length;
  if (pos + n > e) return false;
  for (let i = 0; i < n; i++) if (b[pos + i] !== head[i]) return false;
  return true;
}

/** What a target column gets from the line being scanned as bytes. */
const F_NULL = 0;
/** The field's bytes `[from, to)`, copied. */
const F_COPY = 1;
/** ISO timestamp bytes, rewritten as PostgreSQL's text. */
const F_TIMESTAMP = 2;
/** Literals. */
const F_T = 3;
const F_F = 4;
const F_TRUE = 5;
const F_FALSE = 6;

const J_TAG = Buffer.from('{"$j":"', 'latin1');
const NOT_LITERAL = -1;

/** The JSON literal `b[from, to)`: `F_NULL`, `F_T` (true), `F_F` (false), or `NOT_LITERAL`. */
function literalAt(b: Buffer, from: number, to: number): number {
  const n = to - from;
  if (n === 4) {
    if (b[from] === 0x6e && b[from + 1] === 0x75 && b[from + 2] === 0x6c && b[from + 3] === 0x6c) return F_NULL;
    if (b[from] === 0x74 && b[from + 1] === 0x72 && b[from + 2] === 0x75 && b[from + 3] === 0x65) return F_T;
  } else if (n === 5) {
    if (
      b[from] === 0x66 &&
      b[from + 1] === 0x61 &&
      b[from + 2] === 0x6c &&
      b[from + 3] === 0x73 &&
      b[from + 4] === 0x65
    )
      return F_F;
  }
  return NOT_LITERAL;
}
/** The column of a key the target lacks but the staged schema types (its value must go through the row path). */
const TYPED_ELSEWHERE = -2;

class NdjsonToCopyText implements ByteLineWriter {
  readonly #columns: CopyColumn[];
  readonly #kinds: (Conversion | undefined)[];
  readonly #plan: RowPlan | undefined;
  readonly #encoder: CsvEncoder;
  /** Target column index by staged key. */
  readonly #byKey = new Map<string, number>();
  /** What each target column gets from the current line (`F_*`), and from which bytes. */
  readonly #what: Uint8Array;
  readonly #from: Int32Array;
  readonly #to: Int32Array;
  /** The keys of the previous line in order (`"name":` bytes and their columns): the likely keys of this one. */
  readonly #keyBytes: Buffer[] = [];
  readonly #keyCols: number[] = [];
  rows = 0;

  constructor(schema: RecordSchema, columns: CopyColumn[], origin: CopyOrigin) {
    this.#plan = compileRowPlan(schema);
    this.#columns = columns;
    this.#kinds = columns.map((c) => this.#plan?.kindOf.get(c.name));
    this.#encoder = new CsvEncoder(columns, origin);
    for (let i = 0; i < columns.length; i++) this.#byKey.set(columns[i].name, i);
    this.#what = new Uint8Array(columns.length);
    this.#from = new Int32Array(columns.length);
    this.#to = new Int32Array(columns.length);
  }

  /** Room `lineBytes` needs for a line of `n` bytes. */
  room(n: number): number {
    return n + 3 * this.#what.length + 1;
  }

  /**
   * Write the COPY text line (with its newline) of the NDJSON line `b[from, to)` (valid UTF-8) into `out` at `pos`
   * (at least {@link room} bytes free): the position after it, or -1 when the line needs `line` (nothing counted).
   */
  lineBytes(b: Buffer, from: number, to: number, out: Buffer, pos: number): number {
    if (!this.#scanBytes(b, from, to)) return -1;
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
        case F_TIMESTAMP: {
          // ISO text, `Z` when zoned: PostgreSQL's text of the Timestamp the row path revives
          const to = this.#to[c];
          const zoned = b[to - 1] === 90; // 'Z'
          pos = putPgTimestampText(b, this.#from[c], zoned ? to - 1 : to, zoned, out, pos);
          break;
        }
        case F_T:
          out[pos++] = 0x74;
          break;
        case F_F:
          out[pos++] = 0x66;
          break;
        default:
          pos += out.write(what[c] === F_TRUE ? 'true' : 'false', pos, 'latin1');
      }
    }
    out[pos++] = NL;
    return pos;
  }

  #set(col: number, what: number, from: number, to: number): void {
    this.#what[col] = what;
    this.#from[col] = from;
    this.#to[col] = to;
  }

  /** Fill `#what` from the bytes `b[s, e)` of a line of the encoder's forms; `false` when the line needs the row path. */
  #scanBytes(b: Buffer, s: number, e: number): boolean {
    this.#what.fill(F_NULL);
    if (this.#what.length === 0) return false;
    if (b[s] !== 123 || b[e - 1] !== 125) return false;
    if (e - s === 2) return true; // {}
    let pos = s + 1;
    for (let k = 0; ; k++) {
      let col: number;
      const guess = this.#keyBytes[k];
      if (guess !== undefined && startsWithBytes(b, pos, e, guess)) {
        col = this.#keyCols[k];
        pos += guess.length;
      } else {
        if (b[pos] !== QUOTE) return false;
        let q = pos + 1;
        while (q < e && b[q] !== QUOTE) {
          if (b[q] === BACKSLASH || b[q] < 0x20) return false; // a key with an escape, or not JSON
          q++;
        }
        if (q >= e || b[q + 1] !== 58) return false; // ':'
        const key = b.toString('utf8', pos + 1, q);
        // a typed key the target lacks is still checked by the row path's decoder (e.g. a malformed int64): row path
        col = this.#byKey.get(key) ?? (this.#plan?.kindOf.has(key) ? TYPED_ELSEWHERE : -1);
        this.#keyBytes[k] = Buffer.from(b.subarray(pos, q + 2));
        this.#keyCols[k] = col;
        pos = q + 2;
      }
      if (col === TYPED_ELSEWHERE) return false;
      const end = this.#valueBytes(b, pos, e, col);
      if (end < 0) return false;
      const c = b[end];
      if (c === 125) {
        if (end !== e - 1) return false;
        if (this.#keyBytes.length > k + 1) {
          this.#keyBytes.length = k + 1;
          this.#keyCols.length = k + 1;
        }
        return true;
      }
      if (c !== 44) return false;
      pos = end + 1;
    }
  }

  /** Read the value at `pos` (before `e`) into column `col` (-1: not a target column); its end, or -1 for the row path. */
  #valueBytes(b: Buffer, pos: number, e: number, col: number): number {
    const c = b[pos];
    const kind = col >= 0 ? this.#kinds[col] : undefined;
    const target = col >= 0 ? this.#columns[col] : undefined;
    if (c === QUOTE) {
      const q = stringEndBytes(b, pos + 1, e);
      // a string the row path's JSON.parse would refuse is refused there, in any key
      if (q < 0 || !plainText) return -1;
      if (col < 0) return q + 1;
      if (kind === 'int64') {
        if (!canonicalIntegerBytes(b, pos + 1, q, 20)) return -1;
        this.#set(col, F_COPY, pos + 1, q);
      } else if (kind === 'timestamp') {
        if (target!.kind === 'json') return -1;
        if (!isFastTimestampBytes(b, pos + 1, q, b[q - 1] === 90 ? 'Z' : '')) return -1;
        this.#set(col, F_TIMESTAMP, pos + 1, q);
      } else if (kind === undefined && target!.kind !== 'json') {
        this.#set(col, F_COPY, pos + 1, q);
      } else return -1;
      return q + 1;
    }
    if (c === 123) {
      // only a JsonText tag: {"$j":"…"}
      if (!startsWithBytes(b, pos, e, J_TAG)) return -1;
      const q = stringEndBytes(b, pos + 7, e);
      if (q < 0 || !plainText || b[q + 1] !== 125) return -1;
      if (col >= 0) {
        if (kind !== undefined) return -1;
        this.#set(col, F_COPY, pos + 7, q);
      }
      return q + 2;
    }
    let t = pos;
    while (t < e) {
      const x = b[t];
      if (x === 44 || x === 125) break; // ',' '}'
      t++;
    }
    // the literals are told by their bytes (no string per NULL); a number's text is checked as a string
    const literal = literalAt(b, pos, t);
    const token = literal === NOT_LITERAL ? b.toString('latin1', pos, t) : '';
    if (literal === NOT_LITERAL && !JSON_NUMBER.test(token)) return -1;
    if (col < 0) return t;
    if (literal === F_NULL) {
      this.#what[col] = F_NULL; // a later duplicate key wins, as in JSON.parse
      return t;
    }
    if (kind === 'timestamp' || kind === 'binary') return -1;
    if (literal !== NOT_LITERAL) {
      const json = target!.kind === 'json';
      this.#what[col] = literal === F_T ? (json ? F_TRUE : F_T) : json ? F_FALSE : F_F;
      return t;
    }
    if (target!.kind === 'json') return -1;
    if (String(Number(token)) !== token) return -1;
    this.#set(col, F_COPY, pos, t);
    return t;
  }

  /** The COPY text line (with its newline) of NDJSON line `lineNo` through the row path's functions. */
  line(line: string, lineNo: number): string {
    this.rows++;
    this.#encoder.rows = this.rows - 1;
    return this.#encoder.encodeTextRow(decodeLine(line, this.#plan, lineNo));
  }
}

/**
 * A staged NDJSON slice → the COPY text lines `CsvEncoder.encodeTextRow` writes for the rows the row path decodes,
 * in pieces of about `pieceBytes`.
 */
export const ndjsonToCopyText: StagedToCsv = async function* (bytes, opts) {
  const t = new NdjsonToCopyText(opts.schema, opts.columns, opts.origin);
  const max = DEFAULT_MAX_LINE_BYTES;
  const out = new CopyPieces(opts.pieceBytes);
  let lineNo = 0;
  /** Line `n`, `b[s, e)`: scanned as bytes into the pieces, or through the row path's functions. */
  const lineOf = (b: Buffer, s: number, e: number, n: number) => {
    if (e - s <= max && out.bytes(t, b, s, e)) return;
    const line = b.toString('utf8', s, e);
    // the limit counts UTF-16 units, as the row path's `forEachLine` does
    if (line.length > max) throw lineTooLong(n, max);
    out.text(t.line(line, n));
  };
  for await (const block of ndjsonByteBlocks(bytes, max)) {
    // not UTF-8: the bytes of the text the row path decodes (U+FFFD for what is not UTF-8; newlines stay in place)
    const b = isUtf8(block) ? block : Buffer.from(block.toString('utf8'), 'utf8');
    const n = b.length;
    // every line of the block, empty ones skipped but counted (as `forEachLine`)
    for (let s = 0; s <= n; ) {
      let e = b.indexOf(NL, s);
      if (e < 0) e = n;
      lineNo++;
      if (e > s) lineOf(b, s, e, lineNo);
      s = e + 1;
    }
    yield* out.take(opts.onRows);
  }
  yield* out.take(opts.onRows, true);
};
