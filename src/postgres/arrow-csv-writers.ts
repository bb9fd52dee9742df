import { isUtf8 } from 'node:buffer';
import { type Data, type Field, Precision, Type, type Vector } from 'apache-arrow';
import { type ColumnKind, cellReader, fromArrowValue } from '../arrow/arrow-types.js';
import type { Row } from '../contracts/values.js';
import { civilFromDays } from '../values/civil-days.js';
import { type CopyColumn, type CopyOrigin, CsvEncoder } from './copy-encoding.js';

/*
 * Cell writers of the Arrow → COPY CSV transcoder (arrow-to-csv.ts): each writes the CSV field `CsvEncoder.encodeRow`
 * writes for one cell of a record batch column, straight from the column's Arrow buffers into the output bytes.
 * Cells no fast writer handles (and every refusal, such as NUL in text) go through the row path for that cell:
 * `fromArrowValue` (what `arrowCodec().decode` gives) and a one-column `CsvEncoder` told the row's number.
 */

/** The CSV output being built: bytes, grown on demand. */
export class CsvOut {
  buf: Buffer;
  pos = 0;

  constructor(readonly size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n + 1024));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** The bytes so far (a fresh buffer is started). */
  take(): Buffer {
    const out = this.buf.subarray(0, this.pos);
    this.buf = Buffer.allocUnsafe(Math.max(this.size, 1024));
    this.pos = 0;
    return out;
  }
}

/** Writes the CSV field of row `r` of the batch (nothing for NULL). */
export type CellWriter = (r: number) => void;

/** What the writers of one batch share: the output and the slice row number of the batch's first row. */
export interface WriteContext {
  out: CsvOut;
  /** Rows of the slice before this batch. */
  base: number;
  origin: CopyOrigin;
  /**
   * Write COPY text format (`CsvEncoder.encodeTextRow`: `\N` for NULL, text escaped, tab-separated) instead of CSV
   * (`encodeRow`: NULL empty, text quoted).
   */
  text: boolean;
}

/** A NULL field: nothing in CSV, `\N` in text format. */
export function writeNull(ctx: WriteContext): void {
  if (!ctx.text) return;
  const out = ctx.out;
  out.ensure(2);
  out.buf[out.pos++] = 92;
  out.buf[out.pos++] = 78;
}

function writeAscii(out: CsvOut, s: string): void {
  const n = s.length;
  out.ensure(n);
  const b = out.buf;
  let w = out.pos;
  for (let i = 0; i < n; i++) b[w++] = s.charCodeAt(i);
  out.pos = w;
}

/** An integer |v| < 2^53 in decimal. */
function writeInt(out: CsvOut, v: number): void {
  out.ensure(21);
  const b = out.buf;
  let w = out.pos;
  if (v < 0) {
    b[w++] = 45;
    v = -v;
  }
  let digits = 1;
  for (let t = v; t >= 10; t = Math.floor(t / 10)) digits++;
  let e = w + digits;
  out.pos = e;
  while (v >= 10) {
    const q = Math.floor(v / 10);
    b[--e] = 48 + (v - q * 10);
    v = q;
  }
  b[--e] = 48 + v;
}

/** The row path for one column: `fromArrowValue` and a one-column CsvEncoder (same text, same refusals). */
export function fallbackWriter(column: CopyColumn, kind: ColumnKind, vector: Vector, ctx: WriteContext): CellWriter {
  const encoder = new CsvEncoder([column], ctx.origin);
  const cell = cellReader(kind, vector);
  const name = column.name;
  return (r) => {
    const v = fromArrowValue(kind, cell(r));
    if (v === null || v === undefined) return writeNull(ctx);
    const row: Row = {};
    Object.defineProperty(row, name, { value: v, enumerable: true, writable: true, configurable: true });
    encoder.rows = ctx.base + r;
    const line = ctx.text ? encoder.encodeTextRow(row) : encoder.encodeRow(row);
    const out = ctx.out;
    out.ensure(line.length * 3);
    // the line without its newline
    out.pos += out.buf.write(line, out.pos, 'utf8') - 1;
  };
}

const isValidAt = (bitmap: Uint8Array, r: number) => (bitmap[r >> 3] & (1 << (r & 7))) !== 0;

/** The validity bitmap when the column has NULLs, else undefined. */
function nullsOf(d: Data): Uint8Array | undefined {
  return d.nullCount > 0 && d.nullBitmap && d.nullBitmap.length > 0 ? d.nullBitmap : undefined;
}

/** Text kinds: a string value, written quoted (`""` for `"`), refused with NUL. */
const TEXT_KINDS = new Set<ColumnKind>(['string', 'decimal', 'date', 'time', 'uuid', 'interval']);

function quotedUtf8(d: Data, slow: () => CellWriter, ctx: WriteContext): CellWriter {
  const nulls = nullsOf(d);
  const offsets = d.valueOffsets as Int32Array;
  const values = d.values as Uint8Array;
  return (r) => {
    if (nulls && !isValidAt(nulls, r)) return writeNull(ctx);
    const s = offsets[r];
    const e = offsets[r + 1];
    const len = e - s;
    const out = ctx.out;
    out.ensure(2 * len + 2);
    const b = out.buf;
    let w = out.pos;
    b[w++] = 34;
    if (len < 128) {
      for (let i = s; i < e; i++) {
        const c = values[i];
        if (c === 34) b[w++] = 34;
        else if (c === 0) return slow()(r); // refused by the encoder, with its message
        b[w++] = c;
      }
    } else {
      const seg = values.subarray(s, e);
      if (seg.indexOf(0) >= 0) return slow()(r);
      let i = 0;
      for (;;) {
        const j = seg.indexOf(34, i);
        if (j < 0) {
          b.set(seg.subarray(i), w);
          w += len - i;
          break;
        }
        b.set(seg.subarray(i, j + 1), w);
        w += j + 1 - i;
        b[w++] = 34;
        i = j + 1;
      }
    }
    b[w++] = 34;
    out.pos = w;
  };
}

/** Text format: the bytes with `\\ \n \r \t` escaped (escapeCopyText), refused with NUL. */
function escapedUtf8(d: Data, slow: () => CellWriter, ctx: WriteContext): CellWriter {
  const nulls = nullsOf(d);
  const offsets = d.valueOffsets as Int32Array;
  const values = d.values as Uint8Array;
  return (r) => {
    if (nulls && !isValidAt(nulls, r)) return writeNull(ctx);
    const s = offsets[r];
    const e = offsets[r + 1];
    const out = ctx.out;
    out.ensure(2 * (e - s));
    const b = out.buf;
    let w = out.pos;
    for (let i = s; i < e; i++) {
      const c = values[i];
      if (c <= 92) {
        if (c === 92) {
          b[w++] = 92;
        } else if (c === 10) {
          b[w++] = 92;
          b[w++] = 110;
          continue;
        } else if (c === 13) {
          b[w++] = 92;
          b[w++] = 114;
          continue;
        } else if (c === 9) {
          b[w++] = 92;
          b[w++] = 116;
          continue;
        } else if (c === 0) return slow()(r); // refused by the encoder, with its message
      }
      b[w++] = c;
    }
    out.pos = w;
  };
}

function int64Writer(d: Data, ctx: WriteContext): CellWriter {
  const nulls = nullsOf(d);
  const big = d.values as BigInt64Array;
  const words = new Int32Array(big.buffer, big.byteOffset, big.length * 2);
  return (r) => {
    if (nulls && !isValidAt(nulls, r)) return writeNull(ctx);
    const hi = words[2 * r + 1];
    if (hi >= -2097152 && hi < 2097152) writeInt(ctx.out, hi * 4294967296 + (words[2 * r] >>> 0));
    else writeAscii(ctx.out, big[r].toString());
  };
}

function int32Writer(d: Data, ctx: WriteContext): CellWriter {
  const nulls = nullsOf(d);
  const values = d.values as Int32Array;
  return (r) => {
    if (nulls && !isValidAt(nulls, r)) return writeNull(ctx);
    writeInt(ctx.out, values[r]);
  };
}

function float64Writer(d: Data, ctx: WriteContext): CellWriter {
  const nulls = nullsOf(d);
  const values = d.values as Float64Array;
  return (r) => {
    if (nulls && !isValidAt(nulls, r)) return writeNull(ctx);
    const v = values[r];
    writeAscii(ctx.out, Object.is(v, -0) ? '-0' : String(v));
  };
}

function boolWriter(d: Data, json: boolean, ctx: WriteContext): CellWriter {
  const nulls = nullsOf(d);
  const bits = d.values as Uint8Array;
  const [yes, no] = json ? ['true', 'false'] : ['t', 'f'];
  return (r) => {
    if (nulls && !isValidAt(nulls, r)) return writeNull(ctx);
    writeAscii(ctx.out, isValidAt(bits, r) ? yes : no);
  };
}

const MICROS_PER_DAY = 86_400_000_000;
/** The fast range of src/codecs/timestamp-text.ts (1700-01-01 ≤ t < 2251-01-01, µs since 1970). */
const MIN_FAST = -8_520_336_000_000_000;
const MAX_FAST = 8_867_491_200_000_000;

/** `pgText` of a µs timestamp (UTC text, `+00` when zoned) from the int64 words; the rest via the row path. */
function timestampWriter(d: Data, zoned: boolean, slow: () => CellWriter, ctx: WriteContext): CellWriter {
  const nulls = nullsOf(d);
  const big = d.values as BigInt64Array;
  const words = new Int32Array(big.buffer, big.byteOffset, big.length * 2);
  let lastDays = Number.NaN;
  const date = new Uint8Array(10);
  return (r) => {
    if (nulls && !isValidAt(nulls, r)) return writeNull(ctx);
    const hi = words[2 * r + 1];
    const v = hi * 4294967296 + (words[2 * r] >>> 0);
    if (!(hi >= -2097152 && hi < 2097152 && v >= MIN_FAST && v < MAX_FAST)) return slow()(r);
    const days = Math.floor(v / MICROS_PER_DAY);
    const rem = v - days * MICROS_PER_DAY;
    if (days !== lastDays) {
      lastDays = days;
      const [y, m, day] = civilFromDays(days);
      date[0] = 48 + Math.floor(y / 1000);
      date[1] = 48 + (Math.floor(y / 100) % 10);
      date[2] = 48 + (Math.floor(y / 10) % 10);
      date[3] = 48 + (y % 10);
      date[4] = 45;
      date[5] = 48 + Math.floor(m / 10);
      date[6] = 48 + (m % 10);
      date[7] = 45;
      date[8] = 48 + Math.floor(day / 10);
      date[9] = 48 + (day % 10);
    }
    const out = ctx.out;
    out.ensure(32);
    const b = out.buf;
    let w = out.pos;
    for (let i = 0; i < 10; i++) b[w++] = date[i];
    const secs = Math.floor(rem / 1_000_000);
    let micros = rem - secs * 1_000_000;
    const hh = Math.floor(secs / 3600);
    const mm = Math.floor(secs / 60) % 60;
    const ss = secs % 60;
    b[w++] = 32;
    b[w++] = 48 + Math.floor(hh / 10);
    b[w++] = 48 + (hh % 10);
    b[w++] = 58;
    b[w++] = 48 + Math.floor(mm / 10);
    b[w++] = 48 + (mm % 10);
    b[w++] = 58;
    b[w++] = 48 + Math.floor(ss / 10);
    b[w++] = 48 + (ss % 10);
    if (micros !== 0) {
      b[w++] = 46;
      let scale = 100_000;
      while (micros !== 0) {
        const digit = Math.floor(micros / scale);
        b[w++] = 48 + digit;
        micros -= digit * scale;
        scale /= 10;
      }
    }
    if (zoned) {
      b[w++] = 43;
      b[w++] = 48;
      b[w++] = 48;
    }
    out.pos = w;
  };
}

const HEX_DIGITS = new TextEncoder().encode('0123456789abcdef');

/** Bytes as bytea hex text (`"\x0a0b"` in CSV, `\\x0a0b` in text format). */
function binaryWriter(d: Data, ctx: WriteContext): CellWriter {
  const text = ctx.text;
  const nulls = nullsOf(d);
  const offsets = d.valueOffsets as Int32Array;
  const values = d.values as Uint8Array;
  return (r) => {
    if (nulls && !isValidAt(nulls, r)) return writeNull(ctx);
    const s = offsets[r];
    const e = offsets[r + 1];
    const out = ctx.out;
    out.ensure(2 * (e - s) + 4);
    const b = out.buf;
    let w = out.pos;
    // CSV: "\x0a0b"; text format: \\x0a0b (the backslash escaped)
    b[w++] = text ? 92 : 34;
    b[w++] = 92;
    b[w++] = 120;
    for (let i = s; i < e; i++) {
      const x = values[i];
      b[w++] = HEX_DIGITS[x >> 4];
      b[w++] = HEX_DIGITS[x & 15];
    }
    if (!text) b[w++] = 34;
    out.pos = w;
  };
}

/** Whether the Utf8 data of the batch column is valid UTF-8 (else `Vector.get` would decode it with U+FFFD). */
function utf8Valid(d: Data): boolean {
  const offsets = d.valueOffsets as Int32Array;
  const values = d.values as Uint8Array;
  return isUtf8(values.subarray(offsets[0], offsets[d.length]));
}

/**
 * The writer of `column`'s CSV field from the batch column `vector` (field `field`, whose values the codec decodes
 * as `kind`): fast where the Arrow type is the one the codec writes for the kind, else the row path per cell.
 */
export function cellWriter(
  column: CopyColumn,
  field: Field,
  kind: ColumnKind,
  vector: Vector,
  ctx: WriteContext,
): CellWriter {
  let fallback: CellWriter | undefined;
  const slow = () => {
    fallback ??= fallbackWriter(column, kind, vector, ctx);
    return fallback;
  };
  const d = vector.data.length === 1 ? vector.data[0] : undefined;
  if (d?.offset !== 0) return slow();
  const type = field.type;
  const typeId = type.typeId;
  const json = column.kind === 'json';
  const isInt = (bits: number) =>
    typeId === Type.Int &&
    (type as { bitWidth?: number; isSigned?: boolean }).bitWidth === bits &&
    (type as { isSigned?: boolean }).isSigned === true;
  if (kind === 'json_text' || (TEXT_KINDS.has(kind) && !json)) {
    if (typeId === Type.Utf8 && utf8Valid(d)) return ctx.text ? escapedUtf8(d, slow, ctx) : quotedUtf8(d, slow, ctx);
    return slow();
  }
  switch (kind) {
    case 'int64':
      // a bigint is written bare whatever the column's kind
      return isInt(64) ? int64Writer(d, ctx) : slow();
    case 'int32':
      return isInt(32) && !json ? int32Writer(d, ctx) : slow();
    case 'float64':
      return typeId === Type.Float && (type as { precision?: Precision }).precision === Precision.DOUBLE && !json
        ? float64Writer(d, ctx)
        : slow();
    case 'boolean':
      return typeId === Type.Bool ? boolWriter(d, json, ctx) : slow();
    case 'ts_utc':
    case 'ts_local':
      // the raw int64 µs, as cellReader reads them
      return typeId === Type.Timestamp && !json ? timestampWriter(d, kind === 'ts_utc', slow, ctx) : slow();
    case 'binary':
      return typeId === Type.Binary && !json ? binaryWriter(d, ctx) : slow();
    default:
      return slow();
  }
}
