import { DEFAULT_MAX_LINE_BYTES, decodeLine, forEachLine, ndjsonBlocks } from '../codecs/ndjson-codec.js';
import { isFastTimestampText } from '../codecs/timestamp-text.js';
import { type Conversion, compileRowPlan, type RowPlan } from '../codecs/value-encoding.js';
import type { RecordSchema } from '../contracts/values.js';
import { type CopyColumn, type CopyOrigin, CsvEncoder } from './copy-encoding.js';
import { canonicalInteger, type StagedToCsv } from './transcode.js';

/*
 * NDJSON → COPY text, value by value (docs/decisions/0008-transcoded-row-paths.md). The row path imports a line as
 * `CsvEncoder.encodeRow(decodeRow(line, plan))`; this sends every field the same text from the line itself — no
 * JSON.parse, no row object, no bigint, Timestamp or JsonText — by scanning the forms the NDJSON encoder writes:
 *
 * - A JSON string's escaped content is already COPY text for the same string when it holds no `\u` escape and no
 *   raw control character: JSON's `\\ \b \f \n \r \t` are COPY's own escapes, and `\"`, `\/` read as `"` and `/`
 *   in COPY text (a backslash before any other character stands for that character).
 * - `int64` columns' bare digits, `timestamp` columns' ISO text (rewritten to PostgreSQL's UTC text, as `pgText`
 *   writes the revived Timestamp), `{"$j":"…"}` (a JsonText: its text), `true`/`false`, canonical numbers, `null`.
 *
 * Anything else in a line — whitespace, another tag, an array or object, a `\u` escape, a non-canonical number, a
 * string in a `json` target column, a key with an escape — sends that line through the row path's own functions
 * (`decodeLine` + `CsvEncoder.encodeTextRow`), so its text and its errors are the row path's.
 */

/**
 * ISO text of a staged Timestamp (`YYYY-MM-DDTHH:MM:SS[.f]`, `Z` when zoned) in the fast range → the text `pgText`
 * writes for the Timestamp the row path revives from it (fraction without trailing zeros, `+00` when zoned).
 */
function pgTextOfIso(p: string): string | undefined {
  const zoned = p.charCodeAt(p.length - 1) === 90; // 'Z'
  if (!isFastTimestampText(p, zoned ? 'Z' : '')) return undefined;
  const end = p.length - (zoned ? 1 : 0);
  let fracEnd = end;
  while (fracEnd > 20 && p.charCodeAt(fracEnd - 1) === 48) fracEnd--;
  const frac = fracEnd > 20 ? `.${p.slice(20, fracEnd)}` : '';
  return `${p.slice(0, 10)} ${p.slice(11, 19)}${frac}${zoned ? '+00' : ''}`;
}

/**
 * Escaped JSON string content that is not COPY text of the same string as it stands: a raw control character (not
 * JSON), or a backslash before anything but `" \ / b f n r t` (a `\u` escape, or not JSON).
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: raw control characters are what the check looks for
const NOT_COPY_TEXT = /[\u0000-\u001f]|\\[^"\\/bfnrt]/;
/** A JSON number. */
const JSON_NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

const QUOTE = 34;
const BACKSLASH = 92;

/** Index of the quote closing the JSON string whose content starts at `from`, or -1. */
function stringEnd(l: string, from: number): number {
  let e = l.indexOf('"', from);
  while (e !== -1) {
    let bs = 0;
    while (l.charCodeAt(e - 1 - bs) === BACKSLASH) bs++;
    if ((bs & 1) === 0) return e;
    e = l.indexOf('"', e + 1);
  }
  return -1;
}

/** The end (exclusive) of a number or literal token starting at `from`. */
function tokenEnd(l: string, from: number): number {
  let e = from;
  const n = l.length;
  while (e < n) {
    const c = l.charCodeAt(e);
    if (c === 44 || c === 125) return e; // ',' '}'
    e++;
  }
  return e;
}

const NULL_TEXT = '\\N';

class NdjsonToCopyText {
  readonly #columns: CopyColumn[];
  readonly #kinds: (Conversion | undefined)[];
  readonly #plan: RowPlan | undefined;
  readonly #encoder: CsvEncoder;
  /** Target column index by staged key. */
  readonly #byKey = new Map<string, number>();
  /** The keys of the previous line in order (`"name":` texts and their columns): the likely keys of this one. */
  readonly #seenKeys: string[] = [];
  readonly #seenCols: number[] = [];
  /** COPY text of each target column in the current line (`undefined`: not in the line → NULL). */
  readonly #fields: (string | undefined)[];
  rows = 0;

  constructor(schema: RecordSchema, columns: CopyColumn[], origin: CopyOrigin) {
    this.#plan = compileRowPlan(schema);
    this.#columns = columns;
    this.#kinds = columns.map((c) => this.#plan?.kindOf.get(c.name));
    this.#encoder = new CsvEncoder(columns, origin);
    for (let i = 0; i < columns.length; i++) this.#byKey.set(columns[i].name, i);
    this.#fields = new Array(columns.length);
  }

  /** The COPY text line (with its newline) of NDJSON line `lineNo`. */
  line(line: string, lineNo: number): string {
    this.rows++;
    if (this.#scan(line)) {
      const fields = this.#fields;
      let out = fields[0] ?? NULL_TEXT;
      for (let i = 1; i < fields.length; i++) out += `\t${fields[i] ?? NULL_TEXT}`;
      return `${out}\n`;
    }
    this.#encoder.rows = this.rows - 1;
    return this.#encoder.encodeTextRow(decodeLine(line, this.#plan, lineNo));
  }

  /** Fill `#fields` from a line of the encoder's forms; `false` when the line needs the row path. */
  #scan(l: string): boolean {
    const fields = this.#fields;
    fields.fill(undefined);
    if (fields.length === 0) return false;
    const n = l.length;
    if (l.charCodeAt(0) !== 123 || l.charCodeAt(n - 1) !== 125) return false;
    if (n === 2) return true; // {}
    let pos = 1;
    for (let k = 0; ; k++) {
      // the key: most lines repeat the previous line's keys in the same order
      let col: number;
      const guess = this.#seenKeys[k];
      if (guess !== undefined && l.startsWith(guess, pos)) {
        col = this.#seenCols[k];
        pos += guess.length;
      } else {
        if (l.charCodeAt(pos) !== QUOTE) return false;
        const e = l.indexOf('"', pos + 1);
        if (e === -1 || l.charCodeAt(e + 1) !== 58) return false; // ':'
        const key = l.slice(pos + 1, e);
        if (key.includes('\\')) return false;
        col = this.#byKey.get(key) ?? -1;
        this.#seenKeys[k] = l.slice(pos, e + 2);
        this.#seenCols[k] = col;
        pos = e + 2;
      }
      const end = this.#value(l, pos, col);
      if (end < 0) return false;
      const c = l.charCodeAt(end);
      if (c === 125) {
        // '}' closes the row only at the end of the line
        if (end !== n - 1) return false;
        if (this.#seenKeys.length > k + 1) {
          this.#seenKeys.length = k + 1;
          this.#seenCols.length = k + 1;
        }
        return true;
      }
      if (c !== 44) return false; // ','
      pos = end + 1;
    }
  }

  /** Read the value at `pos` into column `col` (-1: not a target column); its end, or -1 for the row path. */
  #value(l: string, pos: number, col: number): number {
    const c = l.charCodeAt(pos);
    const kind = col >= 0 ? this.#kinds[col] : undefined;
    const target = col >= 0 ? this.#columns[col] : undefined;
    if (c === QUOTE) {
      const e = stringEnd(l, pos + 1);
      if (e < 0) return -1;
      if (col < 0) return e + 1;
      const content = l.slice(pos + 1, e);
      if (kind === 'int64') {
        if (!canonicalInteger(content, 20)) return -1;
        this.#fields[col] = content;
      } else if (kind === 'timestamp') {
        if (target!.kind === 'json') return -1;
        const t = pgTextOfIso(content);
        if (t === undefined) return -1;
        this.#fields[col] = t;
      } else if (kind === undefined && target!.kind !== 'json') {
        if (NOT_COPY_TEXT.test(content)) return -1;
        this.#fields[col] = content;
      } else return -1;
      return e + 1;
    }
    if (c === 123) {
      // only a JsonText tag: {"$j":"…"}
      if (!l.startsWith('{"$j":"', pos)) return -1;
      const e = stringEnd(l, pos + 7);
      if (e < 0 || l.charCodeAt(e + 1) !== 125) return -1;
      if (col >= 0) {
        if (kind !== undefined) return -1;
        const content = l.slice(pos + 7, e);
        if (NOT_COPY_TEXT.test(content)) return -1;
        this.#fields[col] = content;
      }
      return e + 2;
    }
    const e = tokenEnd(l, pos);
    const token = l.slice(pos, e);
    const literal = token === 'null' || token === 'true' || token === 'false';
    if (!literal && !JSON_NUMBER.test(token)) return -1;
    // a literal or number of a key the target does not have: skipped
    if (col < 0) return e;
    if (token === 'null') {
      this.#fields[col] = undefined; // NULL (a later duplicate key wins, as in JSON.parse)
      return e;
    }
    if (kind === 'timestamp' || kind === 'binary') return -1;
    if (token === 'true' || token === 'false') {
      this.#fields[col] = target!.kind === 'json' ? token : token === 'true' ? 't' : 'f';
      return e;
    }
    if (target!.kind === 'json') return -1;
    // a number: its JSON text when that is how String() writes the parsed number (not `-0`, `1.50`, `1E5`)
    if (String(Number(token)) !== token) return -1;
    this.#fields[col] = token;
    return e;
  }
}

/**
 * A staged NDJSON slice → the COPY text lines `CsvEncoder.encodeTextRow` writes for the rows the row path decodes,
 * in pieces of about `pieceBytes`.
 */
export const ndjsonToCopyText: StagedToCsv = async function* (bytes, opts) {
  const t = new NdjsonToCopyText(opts.schema, opts.columns, opts.origin);
  // Lines are written into byte pieces as they come, not joined into one long string: a string built over a whole
  // piece survives young-generation collections and is promoted, and old-space garbage is what grew the peak RSS.
  const size = opts.pieceBytes;
  let piece = Buffer.allocUnsafe(size);
  let used = 0;
  let rows = 0;
  let lineNo = 0;
  for await (const text of ndjsonBlocks(bytes, DEFAULT_MAX_LINE_BYTES)) {
    const full: Buffer[] = [];
    const counts: number[] = [];
    lineNo = forEachLine(text, lineNo, DEFAULT_MAX_LINE_BYTES, (line, n) => {
      const out = t.line(line, n);
      // at most 3 bytes of UTF-8 per UTF-16 unit
      if (used + out.length * 3 > size && used > 0) {
        full.push(piece.subarray(0, used));
        counts.push(rows);
        piece = Buffer.allocUnsafe(size);
        used = 0;
        rows = 0;
      }
      if (out.length * 3 > size) {
        full.push(Buffer.from(out, 'utf8'));
        counts.push(1);
      } else {
        used += piece.write(out, used, 'utf8');
        rows++;
      }
    });
    for (let i = 0; i < full.length; i++) {
      opts.onRows?.(counts[i]);
      yield full[i];
    }
  }
  if (used > 0) {
    opts.onRows?.(rows);
    yield piece.subarray(0, used);
  }
};
