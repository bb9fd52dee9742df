import { isUtf8 } from 'node:buffer';
import { isFastTimestampBytes, isFastTimestampText } from '../codecs/timestamp-text.js';
import { type Conversion, compileRowPlan, fieldJsonText, keyText } from '../codecs/value-encoding.js';
import type { RecordSchema } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { LineCarry } from '../util/line-carry.js';
import { unescapeCopy } from './copy-text.js';
import {
  type CopyTextColumn,
  type CopyTranscoder,
  type CopyTranscoderFactory,
  canonicalInteger,
  canonicalIntegerBytes,
  copyBytes,
} from './transcode.js';
import { TEXT_PARSERS } from './type-mapping.js';

/*
 * COPY text → NDJSON, value by value (docs/decisions/0008-transcoded-row-paths.md). The row path stages a row as
 * `encodeRow(row, compileRowPlan(schema))` where `row[name] = parse(text)` for every column in order; this writes
 * the same line from the text without the row object: each column gets a writer chosen by its parser, and a writer
 * that cannot prove its text equal to the row path's (a value outside its fast form) writes `fieldJsonText(parse(text))`,
 * the row path's own function. The bytes are identical (tested on every PostgreSQL type).
 *
 * Most fields never become strings: text without control characters is already the content of its JSON string
 * (COPY's escapes `\\ \t \n \r \b \f` are JSON's; a quote is escaped on the way; characters over U+007F are copied as
 * their UTF-8 bytes when the lines are valid UTF-8), canonical integers, booleans and timestamps of 1700–2250 are
 * rewritten byte by byte. A field with a control character, a byte over 0x7f in lines that are not valid UTF-8 (it is
 * decoded as `pg` decodes it), `\v` or another escape is decoded and written by its `FieldWriter`.
 */

/** Unescaped COPY text of a non-null value → the JSON text `encodeRow` writes for `parse(text)`. */
type FieldWriter = (text: string) => string;

const NL = 0x0a;
const TAB = 0x09;
/** Bytes of NDJSON written into one output piece (at least). */
const PIECE_BYTES = 128 * 1024;

/**
 * `YYYY-MM-DD HH:MM:SS[.f]` (+ suffix) in the fast range → ISO text with 6 fractional digits, as `isoText` writes the
 * Timestamp the parser makes of it (the date and time digits are kept; the fraction is padded with zeros).
 */
function isoOf(t: string, suffix: string, zoned: boolean): string | undefined {
  if (!isFastTimestampText(t, suffix)) return undefined;
  const end = t.length - suffix.length;
  const frac = end > 20 ? t.slice(20, end) : '';
  return `"${t.slice(0, 10)}T${t.slice(11, 19)}.${frac}${'000000'.slice(frac.length)}${zoned ? 'Z' : ''}"`;
}

function writerFor(col: CopyTextColumn, kind: Conversion | undefined): FieldWriter {
  const parse = col.parse;
  const generic: FieldWriter = (t) => fieldJsonText(parse(t), kind);
  const P = TEXT_PARSERS;
  if (kind === undefined) {
    switch (parse) {
      case P.identity:
        return (t) => JSON.stringify(t);
      case P.int:
        return (t) => (canonicalInteger(t, 11) ? t : generic(t));
      case P.bool:
        return (t) => (t === 't' ? 'true' : t === 'f' ? 'false' : generic(t));
      case P.json:
        return (t) => `{"$j":${JSON.stringify(t)}}`;
      default:
        return generic;
    }
  }
  if (kind === 'int64' && parse === P.bigint) return (t) => (canonicalInteger(t, 20) ? `"${t}"` : generic(t));
  if (kind === 'timestamp' && parse === P.timestamptz) return (t) => isoOf(t, '+00', true) ?? generic(t);
  if (kind === 'timestamp' && parse === P.timestamp) return (t) => isoOf(t, '', false) ?? generic(t);
  return generic;
}

/**
 * A field's COPY bytes `src[from, to)` (not `\N`) written into `out` at `pos` as the JSON text of its `FieldWriter`,
 * byte for byte; returns the position after it, or -1 when the bytes are not of the writer's fast form (the caller
 * then decodes the field and uses the `FieldWriter`). `out` has room for `2 × (to − from) + 16` bytes.
 */
type ByteWriter = (src: Buffer, from: number, to: number, out: Buffer, pos: number) => number;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Whether the byte after a backslash makes a COPY escape that is also JSON's escape of the same character:
 * `\\ \t \n \r \b \f` (COPY's `\v`, octal and hex escapes are not JSON's).
 */
function sharedEscape(b: number): boolean {
  return b === BACKSLASH || b === 0x74 || b === 0x6e || b === 0x72 || b === 0x62 || b === 0x66;
}

/**
 * Set by `#lines` for the lines it writes: their bytes are valid UTF-8, so a byte over 0x7f belongs to a character
 * `pg` decodes as it stands and `JSON.stringify` writes unescaped (valid UTF-8 holds no lone surrogate).
 */
let utf8Lines = false;

/**
 * COPY text of a string → the content of its `JSON.stringify` (no quotes around), when the bytes hold no control
 * character, nothing over 0x7f unless the lines are valid UTF-8 ({@link utf8Lines}), and only escapes JSON writes
 * alike. Quotes are escaped when `quotes` is set, refused otherwise. -1 when the field needs the general path.
 */
function jsonContent(src: Buffer, from: number, to: number, out: Buffer, pos: number, quotes: boolean): number {
  let p = pos;
  for (let i = from; i < to; i++) {
    const b = src[i];
    if (b < 0x20 || (b > 0x7f && !utf8Lines)) return -1;
    if (b === QUOTE) {
      if (!quotes) return -1;
      out[p++] = BACKSLASH;
    } else if (b === BACKSLASH) {
      const n = src[i + 1];
      if (i + 1 >= to || !sharedEscape(n)) return -1;
      out[p++] = BACKSLASH;
      out[p++] = n;
      i++;
      continue;
    }
    out[p++] = b;
  }
  return p;
}

const TRUE = Buffer.from('true');
const FALSE = Buffer.from('false');
const J_OPEN = Buffer.from('{"$j":"');
const J_CLOSE = Buffer.from('"}');

/** The fast byte form of the column's `FieldWriter`, or `undefined` when it has none. */
function byteWriterFor(col: CopyTextColumn, kind: Conversion | undefined): ByteWriter | undefined {
  const parse = col.parse;
  const P = TEXT_PARSERS;
  if (kind === undefined) {
    switch (parse) {
      case P.identity:
        return (src, from, to, out, pos) => {
          out[pos] = QUOTE;
          const p = jsonContent(src, from, to, out, pos + 1, true);
          if (p < 0) return -1;
          out[p] = QUOTE;
          return p + 1;
        };
      case P.int:
        return (src, from, to, out, pos) =>
          canonicalIntegerBytes(src, from, to, 11) ? copyBytes(src, from, to, out, pos) : -1;
      case P.bool:
        return (src, from, to, out, pos) => {
          if (to - from !== 1) return -1;
          const word = src[from] === 0x74 ? TRUE : src[from] === 0x66 ? FALSE : undefined;
          return word ? copyBytes(word, 0, word.length, out, pos) : -1;
        };
      case P.json:
        return (src, from, to, out, pos) => {
          let p = copyBytes(J_OPEN, 0, J_OPEN.length, out, pos);
          p = jsonContent(src, from, to, out, p, true);
          return p < 0 ? -1 : copyBytes(J_CLOSE, 0, J_CLOSE.length, out, p);
        };
      default:
        return undefined;
    }
  }
  if (kind === 'timestamp' && (parse === P.timestamptz || parse === P.timestamp)) {
    // `YYYY-MM-DD HH:MM:SS[.f]` (+ `+00`) → `"YYYY-MM-DDTHH:MM:SS.ffffff"` (+ `Z`), as `isoOf`
    const zoned = parse === P.timestamptz;
    const suffix = zoned ? '+00' : '';
    return (src, from, to, out, pos) => {
      if (!isFastTimestampBytes(src, from, to, suffix)) return -1;
      out[pos++] = QUOTE;
      pos = copyBytes(src, from, from + 10, out, pos);
      out[pos++] = 0x54; // T
      pos = copyBytes(src, from + 11, from + 19, out, pos);
      out[pos++] = 0x2e; // .
      const end = to - suffix.length;
      let digits = 0;
      for (let i = from + 20; i < end; i++, digits++) out[pos++] = src[i];
      for (; digits < 6; digits++) out[pos++] = 0x30;
      if (zoned) out[pos++] = 0x5a; // Z
      out[pos++] = QUOTE;
      return pos;
    };
  }
  if (kind === 'int64' && parse === P.bigint) {
    return (src, from, to, out, pos) => {
      if (!canonicalIntegerBytes(src, from, to, 20)) return -1;
      out[pos] = QUOTE;
      const p = copyBytes(src, from, to, out, pos + 1);
      out[p] = QUOTE;
      return p + 1;
    };
  }
  return undefined;
}

class CopyToNdjson implements CopyTranscoder {
  readonly #writers: FieldWriter[];
  /** The writers' fast byte forms (`undefined`: the column always takes its `FieldWriter`). */
  readonly #bytes: (ByteWriter | undefined)[];
  /** Column indices in the order `for…in` visits the row object's keys (integer-like names first). */
  readonly #order: number[];
  /** `{"name":` for the first key, `,"name":` for the others, in `#order`. */
  readonly #prefixes: Buffer[];
  readonly #width: number;
  /** Start and end of each field of the current line in the chunk (reused). */
  readonly #starts: number[];
  readonly #ends: number[];
  readonly #carry = new LineCarry();
  #line = 0;

  constructor(columns: CopyTextColumn[], schema: RecordSchema) {
    const plan = compileRowPlan(schema);
    this.#width = columns.length;
    this.#starts = new Array(columns.length).fill(0);
    this.#ends = new Array(columns.length).fill(0);
    this.#writers = columns.map((c) => writerFor(c, plan?.kindOf.get(c.name)));
    this.#bytes = columns.map((c) => byteWriterFor(c, plan?.kindOf.get(c.name)));
    const probe: Record<string, number> = {};
    for (let i = 0; i < columns.length; i++) {
      Object.defineProperty(probe, columns[i].name, { value: i, enumerable: true, writable: true, configurable: true });
    }
    this.#order = Object.keys(probe).map((k) => probe[k]);
    this.#prefixes = this.#order.map((i, j) =>
      Buffer.from(`${j === 0 ? '{' : ','}${keyText(columns[i].name)}`, 'utf8'),
    );
  }

  push(chunk: Uint8Array): Uint8Array[] {
    let buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.#carry.bytes) {
      // a long line is joined once, when it ends (LineCarry)
      if (buf.indexOf(NL) < 0) {
        this.#carry.add(Buffer.from(buf));
        return [];
      }
      buf = this.#carry.take(buf);
    }
    const last = buf.lastIndexOf(NL);
    if (last < 0) {
      this.#carry.add(buf);
      return [];
    }
    if (last < buf.length - 1) this.#carry.add(Buffer.from(buf.subarray(last + 1)));
    return this.#lines(buf, last);
  }

  end(): Uint8Array[] {
    if (this.#carry.bytes) {
      throw new IngestError('source_failed', `COPY text ended inside row ${this.#line + 1} (no final newline)`, {
        details: { row: this.#line + 1 },
      });
    }
    return [];
  }

  /** The error of a COPY line whose field count is not the unit's. */
  #width_(fields: number): IngestError {
    return new IngestError(
      'source_failed',
      `COPY text row ${this.#line} has ${fields === this.#width + 1 ? 'more' : 'fewer'} fields than the unit's ${this.#width} columns`,
      { details: { row: this.#line, columns: this.#width } },
    );
  }

  /**
   * NDJSON lines (each with its newline) of the COPY text lines in `src[0, last]` (`src[last]` is a newline), written
   * byte by byte where the field's bytes allow (see {@link ByteWriter}) and through the field's `FieldWriter`
   * otherwise, into pieces of about `PIECE_BYTES`.
   */
  #lines(src: Buffer, last: number): Uint8Array[] {
    const bytes = this.#bytes;
    const writers = this.#writers;
    const order = this.#order;
    const prefixes = this.#prefixes;
    const width = this.#width;
    const starts = this.#starts;
    const ends = this.#ends;
    const pieces: Uint8Array[] = [];
    utf8Lines = isUtf8(src.subarray(0, last + 1));
    let out = Buffer.allocUnsafe(Math.max(PIECE_BYTES, 2 * last + 1024));
    let pos = 0;
    /** Room for `n` more bytes (a full piece is handed on, a new one started). */
    const room = (n: number) => {
      if (pos + n <= out.length) return;
      pieces.push(out.subarray(0, pos));
      out = Buffer.allocUnsafe(Math.max(PIECE_BYTES, n));
      pos = 0;
    };
    let start = 0;
    while (start <= last) {
      this.#line++;
      if (width === 0) {
        start = src.indexOf(NL, start) + 1;
        room(3);
        pos += out.write('{}\n', pos, 'latin1');
        continue;
      }
      // the fields, split at tabs up to the newline in one pass (a native indexOf per field cost more than the bytes)
      let from = start;
      let field = 0;
      let end = start;
      for (; ; end++) {
        const b = src[end];
        if (b === TAB) {
          if (field === width - 1) throw this.#width_(width + 1);
          starts[field] = from;
          ends[field++] = end;
          from = end + 1;
        } else if (b === NL) break;
      }
      if (field !== width - 1) throw this.#width_(field + 1);
      starts[width - 1] = from;
      ends[width - 1] = end;
      start = end + 1;
      for (let j = 0; j < order.length; j++) {
        const i = order[j];
        const f = starts[i];
        const t = ends[i];
        const prefix = prefixes[j];
        room(prefix.length + 2 * (t - f) + 16);
        pos = copyBytes(prefix, 0, prefix.length, out, pos);
        if (t - f === 2 && src[f] === BACKSLASH && src[f + 1] === 0x4e) {
          pos += out.write('null', pos, 'latin1');
          continue;
        }
        const fast = bytes[i];
        const p = fast ? fast(src, f, t, out, pos) : -1;
        if (p >= 0) {
          pos = p;
          continue;
        }
        let text = src.toString('utf8', f, t);
        if (text.includes('\\')) text = unescapeCopy(text, this.#line);
        const json = writers[i](text);
        room(3 * json.length);
        pos += out.write(json, pos, 'utf8');
      }
      room(2);
      out[pos++] = 0x7d; // }
      out[pos++] = NL;
    }
    if (pos > 0) pieces.push(out.subarray(0, pos));
    return pieces;
  }
}

/** COPY text of a PostgreSQL source → the NDJSON lines the row path stages for the same rows, byte for byte. */
export const copyToNdjson: CopyTranscoderFactory = async (columns, schema) => new CopyToNdjson(columns, schema);
