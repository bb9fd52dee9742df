import { isUtf8 } from 'node:buffer';
import { type Builder, type Data, makeBuilder, makeData, type Utf8 } from 'apache-arrow';
import {
  arrowTypeOf,
  asColumnData,
  belongsTo,
  builderTypeOf,
  type ColumnKind,
  fieldTypeOf,
  fits,
  toArrowValue,
} from '../arrow/arrow-types.js';
import { fastMicrosOfBytes } from '../codecs/timestamp-text.js';
import type { Value } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';

/*
 * Column accumulators of the COPY text → Arrow transcoder (copy-to-arrow.ts): each reads one field of a COPY text
 * line straight from the bytes into the buffers of its Arrow column (no JS value per field where the type allows),
 * and hands the column over as Arrow `Data` of the type the Arrow codec writes for the column's kind.
 *
 * Every reader starts at the first byte of a non-NULL field and returns the position of the byte that ends it
 * (a tab or a newline; the parsed region always ends with a newline). A field a fast reader does not recognise goes
 * to `slow`: the field's text (COPY-unescaped, UTF-8 decoded as `pg` decodes it) through the column's own
 * `parse`, then the codec's own conversion (`toArrowValue`) — exactly what the row path does with it.
 */

const TAB = 9;
const NL = 10;
const BACKSLASH = 92;

/** What the line parser shares with the columns. */
export interface ParseState {
  /** The region being parsed is not valid UTF-8: text fields are decoded field by field (U+FFFD), as `pg` does. */
  lossy: boolean;
  /** Set by the slow readers: where the field ended. */
  end: number;
  /** 1-based line number of the slice (for messages). */
  line: number;
}

/** Set by {@link unescapeInto}: the last field had an octal or hex escape (its bytes may not be UTF-8). */
let numericEscape = false;

/**
 * Undo COPY text escapes of `src[p, q)` into `dst` from `at` (room for `q - p` bytes needed): `\b \f \n \r \t \v`,
 * `\\`, octal `\ooo`, hex `\xhh`, any other `\c` is `c`. Returns the end position in `dst`.
 */
export function unescapeInto(src: Uint8Array, p: number, q: number, dst: Uint8Array, at: number, line = 0): number {
  numericEscape = false;
  let w = at;
  let i = p;
  while (i < q) {
    const b = src[i++];
    if (b !== BACKSLASH) {
      dst[w++] = b;
      continue;
    }
    if (i >= q) throw new Error(`COPY text line ${line} has a field ending with a lone backslash`);
    const c = src[i++];
    switch (c) {
      case 98: // b
        dst[w++] = 8;
        break;
      case 102: // f
        dst[w++] = 12;
        break;
      case 110: // n
        dst[w++] = NL;
        break;
      case 114: // r
        dst[w++] = 13;
        break;
      case 116: // t
        dst[w++] = TAB;
        break;
      case 118: // v
        dst[w++] = 11;
        break;
      case 120: {
        // x: up to two hex digits, else a plain 'x'
        const h1 = hexValue(src, i, q);
        if (h1 < 0) {
          dst[w++] = c;
          break;
        }
        i++;
        const h2 = hexValue(src, i, q);
        let v = h1;
        if (h2 >= 0) {
          v = h1 * 16 + h2;
          i++;
        }
        dst[w++] = v;
        numericEscape = true;
        break;
      }
      default:
        if (c >= 48 && c <= 55) {
          // up to three octal digits
          let v = c - 48;
          for (let k = 0; k < 2 && i < q && src[i] >= 48 && src[i] <= 55; k++) v = v * 8 + (src[i++] - 48);
          dst[w++] = v & 0xff;
          numericEscape = true;
        } else dst[w++] = c;
    }
  }
  return w;
}

function hexValue(src: Uint8Array, i: number, q: number): number {
  if (i >= q) return -1;
  const c = src[i];
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

let scratch = Buffer.allocUnsafe(1 << 16);

/**
 * The text of the field at `p` as the row path sees it: COPY-unescaped and UTF-8 decoded (U+FFFD for invalid
 * bytes, as `pg` decodes a field). Sets `st.end`.
 */
export function fieldText(buf: Buffer, p: number, st: ParseState): string {
  let q = p;
  let esc = false;
  for (;;) {
    const b = buf[q];
    if (b === TAB || b === NL) break;
    if (b === BACKSLASH) esc = true;
    q++;
  }
  st.end = q;
  if (!esc) return buf.toString('utf8', p, q);
  if (scratch.length < q - p) scratch = Buffer.allocUnsafe(Math.max(q - p, scratch.length * 2));
  const n = unescapeInto(buf, p, q, scratch, 0, st.line);
  return scratch.toString('utf8', 0, n);
}

/**
 * Thrown by a column for a value of its field's type that its Arrow column cannot store (a timestamp beyond the
 * int64 µs range): the row path then ends the IPC stream and starts another with the column widened to tagged JSON
 * text, which the transcoder does too (copy-to-arrow.ts).
 */
export class WidenColumn extends Error {
  constructor(readonly column: string) {
    super(`column ${JSON.stringify(column)} needs a wider Arrow column`);
  }
}

/** A value `parse` gave that the column's kind cannot store: the Arrow codec's own refusal (or a widening). */
function unfit(kind: ColumnKind, name: string, v: unknown): Error {
  const type = fieldTypeOf(kind);
  if (belongsTo(type, v)) return new WidenColumn(name);
  const issues = [`${name}: not a ${type} value`];
  return new IngestError('row_rejected', `A row does not fit the Arrow schema: ${issues.join('; ')}`, {
    details: { issues },
  });
}

/** One Arrow column being filled from COPY text fields. */
export abstract class CopyColumnBuffer {
  length = 0;
  nullCount = 0;
  protected cap: number;
  protected valid: Uint8Array;

  constructor(
    readonly name: string,
    readonly kind: ColumnKind,
    readonly parse: (text: string) => Value,
    cap: number,
  ) {
    this.cap = cap;
    this.valid = new Uint8Array((cap + 7) >> 3);
  }

  /** Read the (non-NULL) field at `p`; returns where it ends. */
  abstract read(buf: Buffer, p: number, st: ParseState): number;
  /** The column's Arrow data so far; the column starts empty again. */
  abstract take(): Data;
  /** Bytes of variable-length data held (for sizing record batches). */
  get bytes(): number {
    return 0;
  }

  /** Append a NULL. */
  nul(): void {
    if (this.length === this.cap) this.grow();
    this.nullCount++;
    this.skip();
    this.length++;
  }

  /** Drop the values after the first `len` (a line that has to be read again). */
  truncate(len: number): void {
    while (this.length > len) {
      const i = --this.length;
      const bit = 1 << (i & 7);
      if (this.valid[i >> 3] & bit) this.valid[i >> 3] &= ~bit;
      else this.nullCount--;
    }
    this.cut(len);
  }

  /** Variable-length data and value bits of the dropped rows (see {@link truncate}). */
  protected cut(_len: number): void {}

  /** The field through `parse` and the codec's conversion (see the file comment). */
  protected slow(buf: Buffer, p: number, st: ParseState): number {
    const v = this.parse(fieldText(buf, p, st));
    if (v === null || v === undefined) this.nul();
    else {
      if (!fits(this.kind, v)) throw unfit(this.kind, this.name, v);
      if (this.length === this.cap) this.grow();
      this.put(toArrowValue(this.kind, v));
      this.valid[this.length >> 3] |= 1 << (this.length & 7);
      this.length++;
    }
    return st.end;
  }

  /** Store a converted value at `this.length` (room is there). */
  protected abstract put(v: unknown): void;
  /** Store nothing at `this.length` (a NULL). */
  protected skip(): void {}
  /** Double the row capacity. */
  protected grow(): void {
    const cap = this.cap * 2;
    const v = new Uint8Array((cap + 7) >> 3);
    v.set(this.valid);
    this.valid = v;
    this.resize(cap);
    this.cap = cap;
  }
  protected abstract resize(cap: number): void;

  /** Finish the batch's common parts; returns [length, nullCount, bitmap] and resets them. */
  protected takeCommon(): { length: number; nullCount: number; nullBitmap: Uint8Array | undefined } {
    const out = {
      length: this.length,
      nullCount: this.nullCount,
      nullBitmap: this.nullCount > 0 ? this.valid.subarray(0, (this.length + 7) >> 3) : undefined,
    };
    this.length = 0;
    this.nullCount = 0;
    this.valid = new Uint8Array((this.cap + 7) >> 3);
    return out;
  }
}

/** Text (and JSON text) as Utf8: the field's bytes, unescaped; nothing decoded. */
export class Utf8Column extends CopyColumnBuffer {
  #offsets: Int32Array;
  #data: Uint8Array;
  #pos = 0;

  constructor(name: string, kind: ColumnKind, parse: (text: string) => Value, cap: number) {
    super(name, kind, parse, cap);
    this.#offsets = new Int32Array(cap + 1);
    this.#data = new Uint8Array(cap * 16);
  }

  override get bytes(): number {
    return this.#pos;
  }

  read(buf: Buffer, p: number, st: ParseState): number {
    const start = this.#pos;
    // One pass for short fields without escapes: copy while looking for the field's end.
    if (start + 64 <= this.#data.length) {
      const d = this.#data;
      let w = start;
      const stop = p + 64;
      let i = p;
      for (; i < stop; i++) {
        const b = buf[i];
        if (b === TAB || b === NL || b === BACKSLASH) break;
        d[w++] = b;
      }
      const b = buf[i];
      if (b === TAB || b === NL) {
        this.#pos = w;
        if (st.lossy) this.#fix(start);
        if (this.length === this.cap) this.grow();
        this.valid[this.length >> 3] |= 1 << (this.length & 7);
        this.#offsets[++this.length] = this.#pos;
        return i;
      }
    }
    let q = p;
    let esc = false;
    for (;;) {
      const b = buf[q];
      if (b === TAB || b === NL) break;
      if (b === BACKSLASH) esc = true;
      q++;
    }
    const len = q - p;
    if (this.#pos + len > this.#data.length) this.#room(len);
    if (!esc) {
      this.#data.set(buf.subarray(p, q), start);
      this.#pos = start + len;
      if (st.lossy) this.#fix(start);
    } else {
      this.#pos = unescapeInto(buf, p, q, this.#data, start, st.line);
      if (st.lossy || numericEscape) this.#fix(start);
    }
    if (this.length === this.cap) this.grow();
    this.valid[this.length >> 3] |= 1 << (this.length & 7);
    this.#offsets[++this.length] = this.#pos;
    return q;
  }

  /** Bytes that are not UTF-8 become what `pg`'s decoding makes of them (U+FFFD). */
  #fix(start: number): void {
    const bytes = this.#data.subarray(start, this.#pos);
    if (isUtf8(bytes)) return;
    const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
    this.#pos = start;
    this.#write(text);
  }

  #write(text: string): void {
    const max = text.length * 3;
    if (this.#pos + max > this.#data.length) this.#room(max);
    const d = this.#data;
    this.#pos += Buffer.from(d.buffer, d.byteOffset, d.byteLength).write(text, this.#pos, 'utf8');
  }

  #room(len: number): void {
    const d = new Uint8Array(Math.max(this.#data.length * 2, this.#pos + len + 1024));
    d.set(this.#data.subarray(0, this.#pos));
    this.#data = d;
  }

  protected put(v: unknown): void {
    this.#write(v as string);
    this.#offsets[this.length + 1] = this.#pos;
  }

  protected override skip(): void {
    this.#offsets[this.length + 1] = this.#pos;
  }

  protected override cut(len: number): void {
    this.#pos = this.#offsets[len];
  }

  protected resize(cap: number): void {
    const o = new Int32Array(cap + 1);
    o.set(this.#offsets);
    this.#offsets = o;
  }

  take(): Data {
    const common = this.takeCommon();
    const data = makeData({
      type: arrowTypeOf(this.kind) as Utf8,
      ...common,
      valueOffsets: this.#offsets.subarray(0, common.length + 1),
      data: this.#data.subarray(0, this.#pos),
    });
    this.#offsets = new Int32Array(this.cap + 1);
    this.#data = new Uint8Array(Math.max(1024, this.#data.length));
    this.#pos = 0;
    return data;
  }
}

/** Integers of a `bigint` column as int64 words, from the digits (no BigInt below 16 digits). */
export class Int64Column extends CopyColumnBuffer {
  #words: Int32Array;

  constructor(name: string, kind: ColumnKind, parse: (text: string) => Value, cap: number) {
    super(name, kind, parse, cap);
    this.#words = new Int32Array(cap * 2);
  }

  read(buf: Buffer, p: number, st: ParseState): number {
    let q = p;
    const neg = buf[q] === 45;
    if (neg) q++;
    const d0 = q;
    let v = 0;
    for (;;) {
      const c = buf[q] - 48;
      if (!(c >= 0 && c <= 9)) break;
      v = v * 10 + c;
      q++;
    }
    const t = buf[q];
    if ((t !== TAB && t !== NL) || q === d0 || q - d0 > 15) return this.slow(buf, p, st);
    if (neg) v = -v;
    if (this.length === this.cap) this.grow();
    const hi = Math.floor(v / 4294967296);
    const at = this.length * 2;
    this.#words[at] = v - hi * 4294967296;
    this.#words[at + 1] = hi;
    this.valid[this.length >> 3] |= 1 << (this.length & 7);
    this.length++;
    return q;
  }

  protected put(v: unknown): void {
    const w = this.#words;
    new BigInt64Array(w.buffer, w.byteOffset, w.length >> 1)[this.length] = v as bigint;
  }

  protected resize(cap: number): void {
    const w = new Int32Array(cap * 2);
    w.set(this.#words);
    this.#words = w;
  }

  take(): Data {
    const common = this.takeCommon();
    const w = this.#words;
    const data = makeData({
      type: arrowTypeOf(this.kind) as any,
      ...common,
      data: new BigInt64Array(w.buffer, w.byteOffset, common.length),
    }) as Data;
    this.#words = new Int32Array(this.cap * 2);
    return data;
  }
}

/** `int2` / `int4` as Int32 from the digits. */
export class Int32Column extends CopyColumnBuffer {
  #values: Int32Array;

  constructor(name: string, kind: ColumnKind, parse: (text: string) => Value, cap: number) {
    super(name, kind, parse, cap);
    this.#values = new Int32Array(cap);
  }

  read(buf: Buffer, p: number, st: ParseState): number {
    let q = p;
    const neg = buf[q] === 45;
    if (neg) q++;
    const d0 = q;
    let v = 0;
    for (;;) {
      const c = buf[q] - 48;
      if (!(c >= 0 && c <= 9)) break;
      v = v * 10 + c;
      q++;
    }
    const t = buf[q];
    if ((t !== TAB && t !== NL) || q === d0 || q - d0 > 10) return this.slow(buf, p, st);
    if (neg) {
      if (v === 0) return this.slow(buf, p, st); // -0 is no int32 value (the codec refuses it)
      v = -v;
    }
    if (v > 2147483647 || v < -2147483648) return this.slow(buf, p, st);
    if (this.length === this.cap) this.grow();
    this.#values[this.length] = v;
    this.valid[this.length >> 3] |= 1 << (this.length & 7);
    this.length++;
    return q;
  }

  protected put(v: unknown): void {
    this.#values[this.length] = v as number;
  }

  protected resize(cap: number): void {
    const a = new Int32Array(cap);
    a.set(this.#values);
    this.#values = a;
  }

  take(): Data {
    const common = this.takeCommon();
    const data = makeData({
      type: arrowTypeOf(this.kind) as any,
      ...common,
      data: this.#values.subarray(0, common.length),
    }) as Data;
    this.#values = new Int32Array(this.cap);
    return data;
  }
}

/** `float4` / `float8` as Float64 (`Number.parseFloat` of the ASCII text, as the row path). */
export class Float64Column extends CopyColumnBuffer {
  #values: Float64Array;

  constructor(name: string, kind: ColumnKind, parse: (text: string) => Value, cap: number) {
    super(name, kind, parse, cap);
    this.#values = new Float64Array(cap);
  }

  read(buf: Buffer, p: number, st: ParseState): number {
    let q = p;
    for (;;) {
      const b = buf[q];
      if (b === TAB || b === NL) break;
      if (b === BACKSLASH || b > 127) return this.slow(buf, p, st);
      q++;
    }
    if (this.length === this.cap) this.grow();
    this.#values[this.length] = Number.parseFloat(buf.toString('latin1', p, q));
    this.valid[this.length >> 3] |= 1 << (this.length & 7);
    this.length++;
    return q;
  }

  protected put(v: unknown): void {
    this.#values[this.length] = v as number;
  }

  protected resize(cap: number): void {
    const a = new Float64Array(cap);
    a.set(this.#values);
    this.#values = a;
  }

  take(): Data {
    const common = this.takeCommon();
    const data = makeData({
      type: arrowTypeOf(this.kind) as any,
      ...common,
      data: this.#values.subarray(0, common.length),
    }) as Data;
    this.#values = new Float64Array(this.cap);
    return data;
  }
}

/** `bool` (`t` / `f`) as a Bool bitmap. */
export class BoolColumn extends CopyColumnBuffer {
  #bits: Uint8Array;

  constructor(name: string, kind: ColumnKind, parse: (text: string) => Value, cap: number) {
    super(name, kind, parse, cap);
    this.#bits = new Uint8Array((cap + 7) >> 3);
  }

  read(buf: Buffer, p: number, st: ParseState): number {
    const c = buf[p];
    const t = buf[p + 1];
    if ((c !== 116 && c !== 102) || (t !== TAB && t !== NL)) return this.slow(buf, p, st);
    if (this.length === this.cap) this.grow();
    if (c === 116) this.#bits[this.length >> 3] |= 1 << (this.length & 7);
    this.valid[this.length >> 3] |= 1 << (this.length & 7);
    this.length++;
    return p + 1;
  }

  protected put(v: unknown): void {
    if (v) this.#bits[this.length >> 3] |= 1 << (this.length & 7);
  }

  protected override cut(len: number): void {
    for (let i = len; i < this.cap && i < len + 8; i++) this.#bits[i >> 3] &= ~(1 << (i & 7));
  }

  protected resize(cap: number): void {
    const a = new Uint8Array((cap + 7) >> 3);
    a.set(this.#bits);
    this.#bits = a;
  }

  take(): Data {
    const common = this.takeCommon();
    const data = makeData({
      type: arrowTypeOf(this.kind) as any,
      ...common,
      data: this.#bits.subarray(0, (common.length + 7) >> 3),
    }) as Data;
    this.#bits = new Uint8Array((this.cap + 7) >> 3);
    return data;
  }
}

/** `timestamp` / `timestamptz` text as timestamp[us] (UTC for timestamptz), by arithmetic in the common range. */
export class TimestampColumn extends CopyColumnBuffer {
  #words: Int32Array;
  readonly #zoned: boolean;

  constructor(name: string, kind: ColumnKind, parse: (text: string) => Value, cap: number) {
    super(name, kind, parse, cap);
    this.#words = new Int32Array(cap * 2);
    this.#zoned = kind === 'ts_utc';
  }

  read(buf: Buffer, p: number, st: ParseState): number {
    let q = p;
    for (;;) {
      const b = buf[q];
      if (b === TAB || b === NL) break;
      q++;
    }
    const v = fastMicrosOfBytes(buf, p, q, this.#zoned);
    if (Number.isNaN(v)) return this.slow(buf, p, st);
    if (this.length === this.cap) this.grow();
    const hi = Math.floor(v / 4294967296);
    const at = this.length * 2;
    this.#words[at] = v - hi * 4294967296;
    this.#words[at + 1] = hi;
    this.valid[this.length >> 3] |= 1 << (this.length & 7);
    this.length++;
    return q;
  }

  protected put(v: unknown): void {
    const w = this.#words;
    new BigInt64Array(w.buffer, w.byteOffset, w.length >> 1)[this.length] = v as bigint;
  }

  protected resize(cap: number): void {
    const w = new Int32Array(cap * 2);
    w.set(this.#words);
    this.#words = w;
  }

  take(): Data {
    const common = this.takeCommon();
    const w = this.#words;
    const data = makeData({
      type: arrowTypeOf(this.kind) as any,
      ...common,
      data: new BigInt64Array(w.buffer, w.byteOffset, common.length),
    }) as Data;
    this.#words = new Int32Array(this.cap * 2);
    return data;
  }
}

const HEX_VALUE = (() => {
  const t = new Int8Array(256).fill(-1);
  for (let i = 0; i < 10; i++) t[48 + i] = i;
  for (let i = 0; i < 6; i++) {
    t[97 + i] = 10 + i;
    t[65 + i] = 10 + i;
  }
  return t;
})();

/** `bytea` hex output (`\\x0a0b` in COPY text) as Binary, decoded straight from the hex digits. */
export class BinaryColumn extends CopyColumnBuffer {
  #offsets: Int32Array;
  #data: Uint8Array;
  #pos = 0;

  constructor(name: string, kind: ColumnKind, parse: (text: string) => Value, cap: number) {
    super(name, kind, parse, cap);
    this.#offsets = new Int32Array(cap + 1);
    this.#data = new Uint8Array(cap * 8);
  }

  override get bytes(): number {
    return this.#pos;
  }

  read(buf: Buffer, p: number, st: ParseState): number {
    if (buf[p] !== BACKSLASH || buf[p + 1] !== BACKSLASH || buf[p + 2] !== 120) return this.slow(buf, p, st);
    let q = p + 3;
    for (;;) {
      const b = buf[q];
      if (b === TAB || b === NL) break;
      q++;
    }
    const digits = q - p - 3;
    if (digits & 1) return this.slow(buf, p, st);
    const len = digits >> 1;
    if (this.#pos + len > this.#data.length) this.#room(len);
    const d = this.#data;
    let w = this.#pos;
    for (let i = p + 3; i < q; i += 2) {
      const h = HEX_VALUE[buf[i]];
      const l = HEX_VALUE[buf[i + 1]];
      if (h < 0 || l < 0) return this.slow(buf, p, st);
      d[w++] = (h << 4) | l;
    }
    this.#pos = w;
    if (this.length === this.cap) this.grow();
    this.valid[this.length >> 3] |= 1 << (this.length & 7);
    this.#offsets[++this.length] = this.#pos;
    return q;
  }

  #room(len: number): void {
    const d = new Uint8Array(Math.max(this.#data.length * 2, this.#pos + len + 1024));
    d.set(this.#data.subarray(0, this.#pos));
    this.#data = d;
  }

  protected put(v: unknown): void {
    const bytes = v as Uint8Array;
    if (this.#pos + bytes.length > this.#data.length) this.#room(bytes.length);
    this.#data.set(bytes, this.#pos);
    this.#pos += bytes.length;
    this.#offsets[this.length + 1] = this.#pos;
  }

  protected override skip(): void {
    this.#offsets[this.length + 1] = this.#pos;
  }

  protected override cut(len: number): void {
    this.#pos = this.#offsets[len];
  }

  protected resize(cap: number): void {
    const o = new Int32Array(cap + 1);
    o.set(this.#offsets);
    this.#offsets = o;
  }

  take(): Data {
    const common = this.takeCommon();
    const data = makeData({
      type: arrowTypeOf(this.kind) as any,
      ...common,
      valueOffsets: this.#offsets.subarray(0, common.length + 1),
      data: this.#data.subarray(0, this.#pos),
    }) as Data;
    this.#offsets = new Int32Array(this.cap + 1);
    this.#data = new Uint8Array(Math.max(1024, this.#data.length));
    this.#pos = 0;
    return data;
  }
}

/**
 * Any other column (arrays, types without a fast reader, kinds that need JS values): every field through `parse`
 * and the codec's conversion into the codec's own builder for the kind — the row path, one column at a time.
 */
export class GenericColumn extends CopyColumnBuffer {
  #builder: Builder;
  #values: unknown[] = [];
  #bytes = 0;

  constructor(name: string, kind: ColumnKind, parse: (text: string) => Value, cap: number) {
    super(name, kind, parse, cap);
    this.#builder = makeBuilder({ type: builderTypeOf(kind), nullValues: [null, undefined] });
  }

  override get bytes(): number {
    return this.#bytes;
  }

  read(buf: Buffer, p: number, st: ParseState): number {
    const end = this.slow(buf, p, st);
    this.#bytes += end - p;
    return end;
  }

  override nul(): void {
    this.#values.push(null);
    this.length++;
  }

  override truncate(len: number): void {
    this.#values.length = len;
    this.length = len;
  }

  protected override slow(buf: Buffer, p: number, st: ParseState): number {
    const v = this.parse(fieldText(buf, p, st));
    if (v === null || v === undefined) {
      this.nul();
      return st.end;
    }
    if (!fits(this.kind, v)) throw unfit(this.kind, this.name, v);
    this.#values.push(toArrowValue(this.kind, v));
    this.length++;
    return st.end;
  }

  protected put(): void {}
  protected resize(): void {}

  take(): Data {
    const b = this.#builder;
    for (const v of this.#values) b.append(v);
    this.#values = [];
    this.length = 0;
    this.#bytes = 0;
    return asColumnData(this.kind, b.flush());
  }
}
