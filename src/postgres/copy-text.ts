import { newlineRowCounter } from '../codecs/newline-row-counter.js';
import { DEFAULT_MAX_TEXT_LINE_BYTES, decodeTextLines, parseTextRow } from '../codecs/text-lines.js';
import { pgText } from '../codecs/timestamp-text.js';
import type { RowCounter } from '../contracts/staging.js';
import type { FieldSchema, RecordSchema, Row, Value } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { jsonTextLeaves } from '../values/json-text.js';
import { Timestamp } from '../values/timestamp.js';
import { JsonText, stringifyJsonExact } from '../values/value.js';
import { createTypeParsers, parseArrayLiteral } from './type-mapping.js';

/*
 * PostgreSQL's COPY text format (https://www.postgresql.org/docs/current/sql-copy.html, "Text Format"): one row per
 * line ended by a newline (0x0A), columns separated by a tab, NULL written `\N`, and inside a value a backslash, a
 * newline, a carriage return and a tab written `\\`, `\n`, `\r`, `\t`. A raw 0x0A byte therefore always ends a row
 * (UTF-8 never uses 0x0A inside a multi-byte character), which is what lets the rows be counted without decoding.
 */

/**
 * Counts the rows of COPY text: one per newline byte. `end()` throws when the bytes end inside a row.
 * @internal
 */
export function copyTextRowCounter(): RowCounter {
  return newlineRowCounter('COPY');
}

const ESCAPES = /[\\\n\r\t]/g;
const ESCAPED: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** One value's text escaped for a COPY text field. */
export function escapeCopyText(s: string): string {
  return s.replace(ESCAPES, (c) => ESCAPED[c]);
}

/** How a target column takes its text. */
export type ColumnKind = 'json' | 'array' | 'bytea' | 'scalar';

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function hex(bytes: Uint8Array): string {
  if (bytes.length > 64) return `\\x${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')}`;
  let s = '\\x';
  for (let i = 0; i < bytes.length; i++) s += HEX[bytes[i]];
  return s;
}

/**
 * A PostgreSQL array literal (`{1,"a b",NULL,{2}}`) for a JS array, every element quoted. For `json[]`/`jsonb[]` a
 * nested JS array is a dimension when the value came from PostgreSQL (every leaf a `JsonText` or SQL NULL: what the
 * source reads), else a JSON array element (plain values from users).
 */
export function arrayLiteral(values: Value[], elem: ColumnKind = 'scalar'): string {
  return arrayText(values, elem, elem === 'json' && jsonTextLeaves(values));
}

function arrayText(values: Value[], elem: ColumnKind, dimensions: boolean): string {
  const parts = values.map((v) => {
    if (v === null || v === undefined) return 'NULL';
    if (Array.isArray(v) && (elem !== 'json' || dimensions)) return arrayText(v, elem, dimensions);
    const s = scalarText(v, elem);
    return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
  });
  return `{${parts.join(',')}}`;
}

/**
 * An array as PostgreSQL's `array_out` prints it (`{1,NULL,"a b","NULL"}`): an element is quoted only when it is
 * empty, reads as NULL, or holds a brace, quote, comma, backslash or white space. What a text column gets for an
 * array on every codec, as `array::text` and the pass-through give it.
 */
export function arrayOutText(values: Value[], elem: ColumnKind): string {
  return arrayOut(values, elem, elem === 'json' && jsonTextLeaves(values));
}

function arrayOut(values: Value[], elem: ColumnKind, dimensions: boolean): string {
  const parts = values.map((v) => {
    if (v === null || v === undefined) return 'NULL';
    if (Array.isArray(v) && (elem !== 'json' || dimensions)) return arrayOut(v, elem, dimensions);
    const s = scalarText(v, elem);
    return s === '' || /^null$/i.test(s) || /[{}",\\ \t\n\r\v\f]/.test(s)
      ? `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`
      : s;
  });
  return `{${parts.join(',')}}`;
}

/**
 * The text PostgreSQL reads for one value of a column of `kind`: `Timestamp` → its exact text in UTC (`BC`,
 * `infinity`), `JsonText` → its text verbatim, decimal strings verbatim, floats with `NaN`/`Infinity`/`-0`.
 */
export function scalarText(v: Value, kind: ColumnKind): string {
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

/** How a column's values become PostgreSQL text and back, derived from its {@link FieldSchema}. */
interface ColumnPlan {
  name: string;
  field: FieldSchema | undefined;
  /** The column is a PostgreSQL array (its text is an array literal, not JSON). */
  array: boolean;
  parse: (text: string) => Value;
}

/** Details the exact value model adds to a field (read structurally: older schemas have none of them). */
interface FieldDetails {
  native?: { type?: string };
  logical?: { element?: string; withTimeZone?: boolean; elementLogical?: { withTimeZone?: boolean } };
}

/** A field's PostgreSQL array-ness, from the details the exact value model adds (`native.type`, `logical.element`). */
function isArrayField(f: FieldSchema | undefined): boolean {
  const details = f as (FieldSchema & FieldDetails) | undefined;
  return !!details && (details.native?.type?.endsWith(']') === true || details.logical?.element !== undefined);
}

/** The built-in type whose text parser gives a field's values, so decoding types them exactly like the source does. */
const OID_OF: Record<string, number> = {
  int32: 23,
  int64: 20,
  float64: 701,
  decimal: 1700,
  boolean: 16,
  date: 1082,
  json: 3802,
  binary: 17,
};

/** The source's own parsers (createTypeParsers), shared by every decode. */
const SOURCE_PARSERS = createTypeParsers();
const TEXT = (s: string): Value => s;

/** A UTC offset (or `Z`) at the end of timestamp text, before an optional ` BC`. */
const OFFSET = /(?:Z|[+-]\d\d(?::?\d\d){0,2})(?: BC)?$/;

function parserOf(type: string | undefined, withTimeZone: boolean | undefined): (text: string) => Value {
  if (type === 'timestamp') {
    const zoned = SOURCE_PARSERS.getTypeParser(1184) as (text: string) => Value;
    const local = SOURCE_PARSERS.getTypeParser(1114) as (text: string) => Value;
    if (withTimeZone !== undefined) return withTimeZone ? zoned : local;
    // a schema that does not say (rows from another source): the text does — an offset means an instant
    return (s) => (OFFSET.test(s) ? zoned : local)(s);
  }
  const oid = type ? OID_OF[type] : undefined;
  return oid === undefined ? TEXT : (SOURCE_PARSERS.getTypeParser(oid) as (text: string) => Value);
}

function plan(schema: RecordSchema | undefined): ColumnPlan[] {
  if (!schema?.fields.length) {
    throw new IngestError('config_invalid', 'The pg-copy codec needs the RecordSchema of the rows (column order)', {
      details: { issues: ['schema: required by the pg-copy codec'] },
    });
  }
  return schema.fields.map((field) => {
    const array = isArrayField(field);
    const logical = (field as FieldSchema & FieldDetails).logical;
    let parse: (text: string) => Value;
    if (array) {
      const element = parserOf(logical?.element, logical?.elementLogical?.withTimeZone);
      parse = (s: string) => parseArrayLiteral(s, element);
    } else parse = parserOf(field.type, logical?.withTimeZone);
    return { name: field.name, field, array, parse };
  });
}

/** PostgreSQL text of one value of column `c` (before COPY escaping). */
function valueText(v: Value, c: ColumnPlan): string {
  switch (typeof v) {
    case 'string':
      return c.field?.type === 'json' && !c.array ? JSON.stringify(v) : v;
    case 'bigint':
      return v.toString();
    case 'number':
      if (c.field?.type === 'json' && !c.array) return stringifyJsonExact(v);
      return Object.is(v, -0) ? '-0' : String(v);
    case 'boolean':
      return c.field?.type === 'json' && !c.array ? String(v) : v ? 't' : 'f';
    default:
      break;
  }
  if (v instanceof Date) {
    if (Number.isNaN(v.getTime())) throw new RangeError('Invalid Date');
    return v.toISOString();
  }
  if (v instanceof Uint8Array) return hex(v);
  // exact value classes (Timestamp, JsonText) write their own PostgreSQL text
  const exact = v as unknown as { toPostgres?: () => string; text?: unknown; parse?: unknown };
  if (typeof exact.toPostgres === 'function') return exact.toPostgres();
  if (typeof exact.text === 'string' && typeof exact.parse === 'function') return exact.text;
  if (Array.isArray(v) && c.array) return arrayLiteral(v);
  return stringifyJsonExact(v);
}

/**
 * Rows → COPY text, in the schema's column order (the generic path of the `pg-copy` codec: rows from any source).
 * A value holding NUL (which PostgreSQL text cannot store) is refused with `row_rejected`.
 */
export async function* encodeCopyText(
  batches: AsyncIterable<Row[]>,
  schema: RecordSchema | undefined,
): AsyncGenerator<Uint8Array> {
  const cols = plan(schema);
  let rowNo = 0;
  for await (const batch of batches) {
    let out = '';
    for (const row of batch) {
      rowNo++;
      for (let i = 0; i < cols.length; i++) {
        const c = cols[i];
        const v = Object.hasOwn(row, c.name) ? row[c.name] : null;
        if (i > 0) out += '\t';
        if (v === null || v === undefined) {
          out += '\\N';
          continue;
        }
        let s: string;
        try {
          s = valueText(v, c);
        } catch (err) {
          throw reject(rowNo, c.name, `cannot encode value: ${(err as Error).message}`, err);
        }
        if (s.includes('\u0000')) throw reject(rowNo, c.name, 'text contains a NUL character');
        out += escapeCopyText(s);
      }
      out += '\n';
    }
    if (out) yield Buffer.from(out, 'utf8');
  }
}

function reject(row: number, column: string, why: string, cause?: unknown): IngestError {
  return new IngestError(
    'row_rejected',
    `Row ${row} cannot be written as COPY text, column ${JSON.stringify(column)}: ${why}`,
    {
      cause,
      details: { row, column },
    },
  );
}

/**
 * COPY text → rows, typed by the schema like the PostgreSQL source types them (the generic path: a sink that is not
 * PostgreSQL reads pass-through slices as rows). One batch per input chunk of whole lines.
 * @throws IngestError `staging_corrupt` for a line that is not COPY text of the schema's columns, or longer than
 * `maxLineBytes` (default 64 MiB).
 */
export async function* decodeCopyText(
  bytes: AsyncIterable<Uint8Array>,
  schema: RecordSchema | undefined,
  maxLineBytes = DEFAULT_MAX_TEXT_LINE_BYTES,
): AsyncGenerator<Row[]> {
  const cols = plan(schema);
  yield* decodeTextLines(bytes, 'COPY', maxLineBytes, (line, n) => parseTextRow(line, n, 'COPY', cols, unescapeCopy));
}

const SIMPLE: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };

/** Undo COPY text escapes: `\b \f \n \r \t \v`, `\\`, octal `\ooo`, hex `\xhh`; any other `\c` is `c`. */
export function unescapeCopy(s: string, lineNo: number): string {
  let out = '';
  const bytes: number[] = [];
  const flushBytes = () => {
    if (bytes.length) {
      out += Buffer.from(bytes).toString('utf8');
      bytes.length = 0;
    }
  };
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (ch !== '\\') {
      flushBytes();
      out += ch;
      continue;
    }
    const next = s[++i];
    if (next === undefined)
      throw new IngestError('staging_corrupt', `COPY text line ${lineNo} ends with a lone backslash`, {
        details: { line: lineNo },
      });
    if (next >= '0' && next <= '7') {
      let j = i;
      while (j < i + 3 && s[j] >= '0' && s[j] <= '7') j++;
      bytes.push(Number.parseInt(s.slice(i, j), 8) & 0xff);
      i = j - 1;
    } else if (next === 'x' && /[0-9a-fA-F]/.test(s[i + 1] ?? '')) {
      let j = i + 1;
      while (j < i + 3 && /[0-9a-fA-F]/.test(s[j] ?? '')) j++;
      bytes.push(Number.parseInt(s.slice(i + 1, j), 16));
      i = j - 1;
    } else {
      flushBytes();
      out += SIMPLE[next] ?? next;
    }
  }
  flushBytes();
  return out;
}
