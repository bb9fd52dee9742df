import { pgText } from '../codecs/timestamp-text.js';
import type { Row, Value } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { JsonText } from '../values/json-text.js';
import { Timestamp } from '../values/timestamp.js';
import { escapeCopyText } from './copy-text.js';
import { stringifyJsonExact } from './json-exact.js';

/** How a target column takes its text. */
export type ColumnKind = 'json' | 'array' | 'bytea' | 'scalar';

/** A target column the encoder writes. */
export interface CopyColumn {
  name: string;
  kind: ColumnKind;
  /** For arrays: how the elements take their text. */
  elem?: ColumnKind;
}

/** Where rows come from, for error messages. */
export interface CopyOrigin {
  slice: number;
  table: string;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function hex(bytes: Uint8Array): string {
  if (bytes.length > 64) return `\\x${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')}`;
  let s = '\\x';
  for (let i = 0; i < bytes.length; i++) s += HEX[bytes[i]];
  return s;
}

/** A PostgreSQL array literal (`{1,"a b",NULL,{2}}`) for a JS array, every element quoted. */
export function arrayLiteral(values: Value[], elem: ColumnKind = 'scalar'): string {
  const parts = values.map((v) => {
    if (v === null || v === undefined) return 'NULL';
    if (Array.isArray(v) && elem !== 'json') return arrayLiteral(v, elem);
    const s = scalarText(v, elem);
    return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
  });
  return `{${parts.join(',')}}`;
}

/**
 * The text PostgreSQL reads for one value of a column of `kind`: `Timestamp` → its exact text in UTC (`BC`,
 * `infinity`), `JsonText` → its text verbatim, decimal strings verbatim, floats with `NaN`/`Infinity`/`-0`.
 */
function scalarText(v: Value, kind: ColumnKind): string {
  if (v instanceof JsonText) return v.text;
  if (v instanceof Timestamp) return kind === 'json' ? JSON.stringify(v.toISOString()) : pgText(v);
  switch (typeof v) {
    case 'string':
      return kind === 'json' ? JSON.stringify(v) : v;
    case 'number':
      if (kind === 'json') return stringifyJsonExact(v);
      return Object.is(v, -0) ? '-0' : String(v);
    case 'bigint':
      return v.toString();
    case 'boolean':
      return kind === 'json' ? String(v) : v ? 't' : 'f';
    default:
      break;
  }
  if (kind === 'json') return stringifyJsonExact(v);
  if (v instanceof Date) {
    if (Number.isNaN(v.getTime())) throw new RangeError('Invalid Date');
    return v.toISOString();
  }
  if (v instanceof Uint8Array) return hex(v);
  if (Array.isArray(v)) return kind === 'array' ? arrayLiteral(v) : stringifyJsonExact(v);
  return stringifyJsonExact(v);
}

/**
 * Encode rows as CSV for `COPY … FROM STDIN (FORMAT csv)`: every non-null text field quoted (so `\.`, empty strings,
 * quotes, commas, newlines and backslashes are data; numbers, bigints, booleans and Timestamps bare), NULL as an unquoted empty field. Strings holding NUL (which
 * PostgreSQL text cannot store) are refused with `row_rejected` naming the column, slice and row.
 */
export class CsvEncoder {
  readonly #columns: CopyColumn[];
  readonly #origin: CopyOrigin;
  /** Per column: whether its name is also a property of every object (`constructor`, `__proto__`, …). */
  readonly #inherited: boolean[];
  rows = 0;

  constructor(columns: CopyColumn[], origin: CopyOrigin) {
    this.#columns = columns;
    this.#origin = origin;
    this.#inherited = columns.map((c) => c.name in Object.prototype);
  }

  /** CSV lines of a batch, as one string. */
  encode(batch: Row[]): string {
    let out = '';
    for (let i = 0; i < batch.length; i++) out += this.encodeRow(batch[i]);
    return out;
  }

  /**
   * The CSV line of one row (with its newline). Numbers, bigints, booleans and Timestamps are written unquoted (their
   * text never holds a quote, comma, newline or NUL, and is never empty); every other value is quoted.
   */
  encodeRow(row: Row): string {
    const n = this.#columns.length;
    this.rows++;
    let out = '';
    for (let i = 0; i < n; i++) {
      if (i > 0) out += ',';
      const s = this.#field(row, i);
      if (s === null) continue;
      if (this.#bare) out += s;
      else out += s.includes('"') ? `"${s.replace(/"/g, '""')}"` : `"${s}"`;
    }
    return `${out}\n`;
  }

  /**
   * The same row as a line of COPY text format (`COPY … FROM STDIN` without options): the same text per field as
   * {@link CsvEncoder.encodeRow} sends, escaped for text format (`\N` for NULL), so both load the same values.
   */
  encodeTextRow(row: Row): string {
    const n = this.#columns.length;
    this.rows++;
    let out = '';
    for (let i = 0; i < n; i++) {
      if (i > 0) out += '\t';
      const s = this.#field(row, i);
      out += s === null ? '\\N' : this.#bare ? s : escapeCopyText(s);
    }
    return `${out}\n`;
  }

  /** Whether the text {@link CsvEncoder.#field} returned last is written bare (it never needs quoting or escaping). */
  #bare = false;

  /** The text PostgreSQL receives for column `i` of `row`, or `null` for NULL. */
  #field(row: Row, i: number): string | null {
    const c = this.#columns[i];
    const v = row[c.name];
    if (v === null || v === undefined) return null;
    if (this.#inherited[i] && !Object.hasOwn(row, c.name)) return null;
    this.#bare = true;
    let s: string;
    switch (typeof v) {
      case 'string':
        s = c.kind === 'json' ? JSON.stringify(v) : v;
        break;
      case 'bigint':
        return v.toString();
      case 'number':
        if (c.kind === 'json') {
          s = stringifyJsonExact(v);
          break;
        }
        return Object.is(v, -0) ? '-0' : String(v);
      case 'boolean':
        return c.kind === 'json' ? String(v) : v ? 't' : 'f';
      default:
        if (v instanceof JsonText) {
          s = v.text;
          break;
        }
        if (v instanceof Timestamp && c.kind !== 'json') return pgText(v);
        try {
          s = c.kind === 'array' && Array.isArray(v) ? arrayLiteral(v, c.elem) : scalarText(v as Value, c.kind);
        } catch (err) {
          throw this.#reject(c.name, `cannot encode value: ${(err as Error).message}`, err);
        }
    }
    if (s.includes('\u0000'))
      throw this.#reject(c.name, 'text contains a NUL character, which PostgreSQL cannot store');
    this.#bare = false;
    return s;
  }

  #reject(column: string, why: string, cause?: unknown): IngestError {
    const { slice, table } = this.#origin;
    return new IngestError(
      'row_rejected',
      `Row ${this.rows} of slice ${slice} does not fit ${table} column ${JSON.stringify(column)}: ${why}`,
      {
        cause,
        details: { column, slice, row: this.rows, table },
      },
    );
  }
}
