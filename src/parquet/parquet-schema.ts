import type { FieldSchema, FieldType, RecordSchema, Row, Value } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { stringifyJsonExact } from '../values/json-exact.js';
import { JsonText, jsonTextLeaves } from '../values/json-text.js';
import { Timestamp } from '../values/timestamp.js';

/** A Parquet schema element as hyparquet-writer takes it (structural, to keep the library's types out of ours). */
export interface ParquetSchemaElement {
  name: string;
  type?: 'BOOLEAN' | 'INT32' | 'INT64' | 'DOUBLE' | 'BYTE_ARRAY' | 'FIXED_LEN_BYTE_ARRAY';
  type_length?: number;
  converted_type?: 'UTF8' | 'JSON' | 'TIMESTAMP_MILLIS' | 'TIMESTAMP_MICROS' | 'DATE' | 'DECIMAL' | 'LIST';
  logical_type?:
    | { type: 'LIST' }
    | { type: 'JSON' }
    | { type: 'UUID' }
    | { type: 'DECIMAL'; precision: number; scale: number }
    | { type: 'TIMESTAMP'; isAdjustedToUTC: boolean; unit: 'MICROS' };
  precision?: number;
  scale?: number;
  repetition_type?: 'REQUIRED' | 'OPTIONAL' | 'REPEATED';
  num_children?: number;
}

/**
 * The largest precision written as Parquet DECIMAL: 38 digits, what DuckDB, Spark, Arrow's decimal128 and most
 * readers hold. A wider or unbounded `decimal` stays exact UTF8 text.
 */
export const PARQUET_DECIMAL_MAX_PRECISION = 38;

/** A bounded `decimal` field written as Parquet DECIMAL(precision, scale), or undefined (exact text). */
export function decimalOf(f: Pick<FieldSchema, 'type' | 'logical'>): { precision: number; scale: number } | undefined {
  if (f.type !== 'decimal') return undefined;
  const p = f.logical?.precision;
  const s = f.logical?.scale ?? 0;
  if (p === undefined || !Number.isInteger(p) || !Number.isInteger(s)) return undefined;
  if (p < 1 || p > PARQUET_DECIMAL_MAX_PRECISION || s < 0 || s > p) return undefined;
  return { precision: p, scale: s };
}

/** The physical type of a DECIMAL of `precision` digits: INT32 to 9, INT64 to 18, else the fewest bytes. */
function decimalElement(precision: number, scale: number): Omit<ParquetSchemaElement, 'name'> {
  const logical = { type: 'DECIMAL' as const, precision, scale };
  const base = { converted_type: 'DECIMAL' as const, precision, scale, logical_type: logical };
  if (precision <= 9) return { type: 'INT32', ...base };
  if (precision <= 18) return { type: 'INT64', ...base };
  // two's complement of 10^precision − 1 needs precision·log2(10) + 1 bits
  const bytes = Math.ceil((precision * Math.log2(10) + 1) / 8);
  return { type: 'FIXED_LEN_BYTE_ARRAY', type_length: bytes, ...base };
}

const PHYSICAL: Record<
  FieldType,
  Pick<ParquetSchemaElement, 'type' | 'type_length' | 'converted_type' | 'logical_type'>
> = {
  string: { type: 'BYTE_ARRAY', converted_type: 'UTF8' },
  decimal: { type: 'BYTE_ARRAY', converted_type: 'UTF8' },
  int32: { type: 'INT32' },
  int64: { type: 'INT64' },
  float64: { type: 'DOUBLE' },
  boolean: { type: 'BOOLEAN' },
  // µs, so a Timestamp is exact (a Date's ms are multiplied); ±infinity as the int64 max/min
  timestamp: { type: 'INT64', converted_type: 'TIMESTAMP_MICROS' },
  date: { type: 'INT32', converted_type: 'DATE' },
  json: { type: 'BYTE_ARRAY', converted_type: 'JSON' },
  binary: { type: 'BYTE_ARRAY' },
  time: { type: 'BYTE_ARRAY', converted_type: 'UTF8' },
  uuid: { type: 'FIXED_LEN_BYTE_ARRAY', type_length: 16, logical_type: { type: 'UUID' } },
  interval: { type: 'BYTE_ARRAY', converted_type: 'UTF8' },
};

/**
 * The `json` fields written as exact text: those whose first row group holds a {@link JsonText}. hyparquet-writer's
 * JSON conversion re-encodes values through `JSON.stringify` (`1.50` → `1.5`, bigint → number), so such a column is
 * written as UTF8 text with logical type JSON, the text verbatim; other `json` columns keep converted type JSON.
 */
export function exactJsonFields(schema: RecordSchema, rows: readonly Row[]): Set<string> {
  const out = new Set<string>();
  for (const f of schema.fields) {
    if (f.type !== 'json') continue;
    for (const row of rows) {
      if (Object.hasOwn(row, f.name) && row[f.name] instanceof JsonText) {
        out.add(f.name);
        break;
      }
    }
  }
  return out;
}

/**
 * How an array field (type `json` with `logical.element`) is written: `'list'` as a Parquet LIST of the element's
 * type, one nested LIST per dimension; `'json'` as JSON text (converted type JSON), the form before LISTs.
 * @public
 */
export type ParquetArrayEncoding = 'list' | 'json';

/** PostgreSQL's limit on an array's dimensions (MAXDIM). */
const MAX_DIMENSIONS = 6;

/** The LIST shape of an array field. */
export interface ListShape {
  /** The element's field type and details. */
  element: FieldType;
  elementLogical: FieldSchema['logical'];
  /** Nested LISTs: `logical.dimensions` when the source says it, else 1. */
  dimensions: number;
}

/**
 * The LIST shape of a field that can be written as a Parquet LIST: an array with a known element type. Undefined
 * for other fields, and for arrays of element types whose values are staged as PostgreSQL's array text (`box[]`,
 * whose element delimiter is `;`: ADR 0014), which no LIST can hold.
 */
export function listShapeOf(f: Pick<FieldSchema, 'type' | 'logical' | 'native'>): ListShape | undefined {
  const element = f.logical?.element;
  if (f.type !== 'json' || element === undefined) return undefined;
  if (f.native?.dialect === 'postgres' && /^box(\[\])+$/.test(f.native.type)) return undefined;
  const d = f.logical?.dimensions;
  const dimensions = typeof d === 'number' && Number.isInteger(d) && d >= 1 && d <= MAX_DIMENSIONS ? d : 1;
  return { element, elementLogical: f.logical?.elementLogical, dimensions };
}

/** The fields written as LIST: array fields with a LIST shape whose encoding (by name; default `'list'`) is LIST. */
export function listFields(
  schema: RecordSchema,
  arrays: ParquetArrayEncoding | Readonly<Record<string, ParquetArrayEncoding>> = 'list',
): Map<string, ListShape> {
  const out = new Map<string, ListShape>();
  for (const f of schema.fields) {
    const shape = listShapeOf(f);
    if (!shape) continue;
    const encoding = typeof arrays === 'string' ? arrays : (arrays[f.name] ?? 'list');
    if (encoding === 'list') out.set(f.name, shape);
  }
  return out;
}

/** The Parquet type of a scalar field (or of a LIST's element). */
function leafElement(
  f: Pick<FieldSchema, 'name' | 'type' | 'logical'>,
  exactJson: boolean,
): Omit<ParquetSchemaElement, 'name' | 'repetition_type'> {
  if (exactJson)
    // the text verbatim, as bytes: logical type JSON without the writer's own JSON conversion
    return { type: 'BYTE_ARRAY', logical_type: { type: 'JSON' } };
  const d = decimalOf(f);
  if (d) return decimalElement(d.precision, d.scale);
  if (f.type === 'timestamp')
    return {
      ...PHYSICAL.timestamp,
      logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: f.logical?.withTimeZone !== false, unit: 'MICROS' },
    };
  return PHYSICAL[f.type];
}

/**
 * The Parquet schema of a {@link RecordSchema}: root, one leaf per scalar field, and for each field of `lists` the
 * standard 3-level LIST — `<name> (LIST) { repeated group list { optional <element> element } }` — nested once per
 * dimension (inner lists are REQUIRED: a PostgreSQL sub-array is never NULL; elements are OPTIONAL: NULL elements
 * stay NULL).
 */
export function toParquetSchema(
  schema: RecordSchema,
  exactJson: ReadonlySet<string> = new Set(),
  lists: ReadonlyMap<string, ListShape> = new Map(),
): ParquetSchemaElement[] {
  const out: ParquetSchemaElement[] = [{ name: 'root', num_children: schema.fields.length }];
  for (const f of schema.fields) {
    const repetition_type = f.nullable ? ('OPTIONAL' as const) : ('REQUIRED' as const);
    const list = lists.get(f.name);
    if (!list) {
      out.push({ name: f.name, ...leafElement(f, exactJson.has(f.name)), repetition_type });
      continue;
    }
    for (let level = 0; level < list.dimensions; level++) {
      out.push(
        {
          name: level === 0 ? f.name : 'element',
          repetition_type: level === 0 ? repetition_type : 'REQUIRED',
          converted_type: 'LIST',
          logical_type: { type: 'LIST' },
          num_children: 1,
        },
        { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
      );
    }
    const element = { name: 'element', type: list.element, logical: list.elementLogical };
    // JSON elements are always written as their exact text
    out.push({ name: 'element', ...leafElement(element, list.element === 'json'), repetition_type: 'OPTIONAL' });
  }
  return out;
}

/**
 * Infer a schema from sample rows: every column seen, in first-seen order, nullable. A column whose non-null
 * values share one kind gets that type (numbers → `float64`, so a later fraction still fits); mixed kinds,
 * objects, arrays and all-null columns become `json`.
 */
export function inferRecordSchema(rows: readonly Row[]): RecordSchema {
  const kinds = new Map<string, Set<FieldType>>();
  for (const row of rows) {
    for (const key of Object.keys(row)) {
      let set = kinds.get(key);
      if (!set) kinds.set(key, (set = new Set()));
      const v = row[key];
      if (v !== null && v !== undefined) set.add(kindOf(v));
    }
  }
  const fields: FieldSchema[] = [];
  for (const [name, set] of kinds) {
    const type: FieldType = set.size === 1 ? [...set][0]! : 'json';
    fields.push({ name, type, nullable: true });
  }
  return { fields };
}

function kindOf(v: Value): FieldType {
  switch (typeof v) {
    case 'string':
      return 'string';
    case 'number':
      return 'float64';
    case 'bigint':
      return 'int64';
    case 'boolean':
      return 'boolean';
    default:
      if (v instanceof Date || v instanceof Timestamp) return 'timestamp';
      if (v instanceof Uint8Array) return 'binary';
      return 'json';
  }
}

const DAY_MS = 86_400_000;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;

/**
 * Turn one row group of rows into column arrays the writer takes, checking every value against its field.
 * @throws IngestError `row_rejected` naming the column and row when a value does not fit, or a row has a column
 * the schema lacks.
 */
export function toColumns(
  rows: readonly Row[],
  schema: RecordSchema,
  firstRow: number,
  exactJson: ReadonlySet<string> = new Set(),
  lists: ReadonlyMap<string, ListShape> = new Map(),
): unknown[][] {
  const fields = schema.fields;
  const known = new Set(fields.map((f) => f.name));
  const columns: unknown[][] = fields.map(() => new Array(rows.length));
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r]!;
    for (const key of Object.keys(row)) {
      if (!known.has(key)) {
        throw new IngestError(
          'row_rejected',
          `Parquet row ${firstRow + r} has column "${key}" that the schema lacks; pass a schema that lists every column`,
          { details: { row: firstRow + r, column: key } },
        );
      }
    }
    for (let c = 0; c < fields.length; c++) {
      const f = fields[c]!;
      const v = Object.hasOwn(row, f.name) ? row[f.name] : null;
      const list = lists.get(f.name);
      columns[c]![r] =
        list && v !== null && v !== undefined
          ? convertList(v, f, list, firstRow + r)
          : convertValue(v, f, firstRow + r, exactJson);
    }
  }
  return columns;
}

/** A list element's position for a message (built when one is thrown, not per element). */
function at(element: { path: string; index: number } | undefined): string {
  return element ? `element ${element.path}[${element.index}] ` : '';
}

function convertValue(
  v: Value | undefined,
  f: FieldSchema,
  row: number,
  exactJson: ReadonlySet<string>,
  element?: { path: string; index: number },
): unknown {
  if (v === null || v === undefined) {
    if (!f.nullable) throw reject(f, row, 'is null but the field is not nullable');
    return null;
  }
  switch (f.type) {
    case 'decimal': {
      const d = decimalOf(f);
      if (!d) {
        if (typeof v === 'string') return v;
        break;
      }
      // the unscaled integer of an exact decimal text; NaN, ±Infinity and lost digits are refused, never rounded
      const unscaled = typeof v === 'string' || typeof v === 'bigint' ? unscaledDecimal(String(v), d) : undefined;
      if (typeof unscaled === 'bigint') return unscaled;
      throw reject(
        f,
        row,
        `${at(element)}is ${JSON.stringify(String(v))}, which DECIMAL(${d.precision},${d.scale}) cannot hold exactly`,
      );
    }
    case 'uuid':
      if (typeof v === 'string' && UUID_RE.test(v)) return v;
      break;
    case 'string':
    case 'time':
    case 'interval':
      if (typeof v === 'string') return v;
      break;
    case 'int32':
      if (typeof v === 'number' && Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31) return v;
      break;
    case 'int64':
      if (typeof v === 'bigint') return v;
      if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
      break;
    case 'float64':
      if (typeof v === 'number') return v;
      break;
    case 'boolean':
      if (typeof v === 'boolean') return v;
      break;
    case 'timestamp':
      if (v instanceof Date && !Number.isNaN(v.getTime())) return BigInt(v.getTime()) * 1000n;
      if (v instanceof Timestamp && (!v.isFinite || (v.epochMicros > INT64_MIN && v.epochMicros < INT64_MAX)))
        return v.epochMicros;
      break;
    case 'date': {
      const m = typeof v === 'string' ? DATE_RE.exec(v) : null;
      if (m) return Math.floor(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) / DAY_MS);
      if (v instanceof Date) return Math.floor(v.getTime() / DAY_MS);
      break;
    }
    case 'json':
      if (exactJson.has(f.name)) return TEXT.encode(v instanceof JsonText ? v.text : stringifyJsonExact(v));
      // converted type JSON: the writer stringifies the value (a JsonText found only in a later row group is parsed)
      return v instanceof JsonText ? v.parse() : v;
    case 'binary':
      if (v instanceof Uint8Array) return v;
      break;
  }
  throw reject(f, row, `${at(element)}is ${describe(v)}, not ${f.type}`);
}

/** The way out named by every LIST refusal. */
const LIST_WAY_OUT =
  "a Parquet LIST holds arrays of the column's declared dimensions (logical.dimensions, else 1) with default lower " +
  "bounds; to keep such values, write the column as JSON text (the object-store sink's `parquet: { arrays: 'json' }`, " +
  "encodeParquet's `arrays: 'json'`) or declare its dimensions in `parquet.schema`";

/**
 * One array value as the nested JS arrays of a LIST column: checked to have exactly the column's dimensions, to be
 * rectangular (as every PostgreSQL array is), and every element converted as a scalar of the element type.
 */
function convertList(v: Value, f: FieldSchema, list: ListShape, row: number): unknown {
  if (typeof v === 'string')
    throw reject(
      f,
      row,
      `is PostgreSQL array text (${preview(v)}: a non-default lower bound or an element delimiter of its own), ` +
        `which a Parquet LIST cannot hold; ${LIST_WAY_OUT}`,
      'array_text',
    );
  if (!Array.isArray(v)) throw reject(f, row, `is ${describe(v)}, not an array; ${LIST_WAY_OUT}`, 'not_array');
  const element: FieldSchema = { name: f.name, type: list.element, nullable: true, logical: list.elementLogical };
  // json[]/jsonb[]: a nested array is a dimension when every leaf is JsonText or null (what PostgreSQL gives),
  // else a JSON value of the element (plain values from users) — as the PostgreSQL sink reads it (ADR 0014)
  const jsonDimensions = list.element === 'json' && jsonTextLeaves(v);
  const lengths: number[] = [];
  const walk = (arr: Value[], depth: number, path: string): unknown[] => {
    if (lengths[depth] === undefined) lengths[depth] = arr.length;
    else if (lengths[depth] !== arr.length)
      throw reject(
        f,
        row,
        `is ragged: the sub-array at ${path || 'the top'} has ${arr.length} elements where another has ` +
          `${lengths[depth]} (a PostgreSQL array is rectangular); ${LIST_WAY_OUT}`,
        'ragged',
      );
    const out = new Array(arr.length);
    const position = { path, index: 0 };
    for (let i = 0; i < arr.length; i++) {
      const item = arr[i];
      position.index = i;
      if (depth < list.dimensions) {
        if (!Array.isArray(item))
          throw reject(
            f,
            row,
            `has ${depth} dimension${depth === 1 ? '' : 's'} at ${path}[${i}] where the column's LIST has ` +
              `${list.dimensions}; ${LIST_WAY_OUT}`,
            'dimensions',
          );
        out[i] = walk(item, depth + 1, `${path}[${i}]`);
      } else if (Array.isArray(item) && (list.element !== 'json' || jsonDimensions)) {
        throw reject(
          f,
          row,
          `has more than ${list.dimensions} dimension${list.dimensions === 1 ? '' : 's'} at ${path}[${i}]; ${LIST_WAY_OUT}`,
          'dimensions',
        );
      } else if (item === null || item === undefined) {
        out[i] = null;
      } else if (list.element === 'json') {
        out[i] = TEXT.encode(item instanceof JsonText ? item.text : stringifyJsonExact(item));
      } else {
        out[i] = convertValue(item, element, row, EMPTY, position);
      }
    }
    return out;
  };
  return walk(v, 1, '');
}

const EMPTY: ReadonlySet<string> = new Set();

function preview(text: string): string {
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text);
}

const TEXT = new TextEncoder();
const UUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
const DECIMAL_RE = /^([+-]?)(\d*)(?:\.(\d*))?$/;

/** `'-12.50'` at scale 2 → `-1250n`; undefined when the text is not a finite decimal or needs more digits. */
export function unscaledDecimal(text: string, d: { precision: number; scale: number }): bigint | undefined {
  const m = DECIMAL_RE.exec(text.trim());
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) return undefined;
  const [, sign, int, frac = ''] = m;
  // extra fractional digits are allowed only when they are zeros (never round)
  if (frac.length > d.scale && /[^0]/.test(frac.slice(d.scale))) return undefined;
  const digits = `${int}${frac.slice(0, d.scale).padEnd(d.scale, '0')}`.replace(/^0+(?=\d)/, '');
  if (digits.replace(/^0+/, '').length > d.precision) return undefined;
  const n = BigInt(digits || '0');
  return sign === '-' ? -n : n;
}

function describe(v: Value): string {
  if (v instanceof Date) return 'a Date';
  if (v instanceof Timestamp) return `the timestamp ${v.toISOString()}`;
  if (v instanceof JsonText) return 'JSON text';
  if (v instanceof Uint8Array) return 'bytes';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

function reject(f: FieldSchema, row: number, problem: string, reason?: string): IngestError {
  return new IngestError('row_rejected', `Parquet row ${row}, column "${f.name}" ${problem}`, {
    details: { row, column: f.name, type: f.type, ...(reason ? { reason } : {}) },
  });
}
