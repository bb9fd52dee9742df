import { pgText } from '../codecs/timestamp-text.js';
import type { Row, Value } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { Timestamp } from '../values/timestamp.js';
import { JsonText, stringifyJsonExact } from '../values/value.js';
import { arrayLiteral, arrayOutText, type ColumnKind, escapeCopyText, scalarText } from './copy-text.js';

/** A target column the encoder writes. */
export interface CopyColumn {
  name: string;
  kind: ColumnKind;
  /** For arrays: how the elements take their text. */
  elem?: ColumnKind;
  /**
   * A text column fed by a PostgreSQL array field: a JS array is written as PostgreSQL prints the array (`{1,NaN}`,
   * what `array::text` and the pass-through give), its elements taking their text as `arrayText` says.
   */
  arrayText?: ColumnKind;
}

/** Where rows come from, for error messages. */
export interface CopyOrigin {
  slice: number;
  table: string;
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
          s =
            c.kind === 'array' && Array.isArray(v)
              ? arrayLiteral(v, c.elem)
              : c.arrayText && Array.isArray(v)
                ? arrayOutText(v, c.arrayText)
                : scalarText(v as Value, c.kind);
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
