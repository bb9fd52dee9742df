import type { FieldSchema, FieldType, RecordSchema, Row, Value } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { stringifyJsonExact } from '../values/json-exact.js';
import { JsonText } from '../values/json-text.js';
import { Timestamp } from '../values/timestamp.js';

/** A Parquet schema element as hyparquet-writer takes it (structural, to keep the library's types out of ours). */
export interface ParquetSchemaElement {
  name: string;
  type?: 'BOOLEAN' | 'INT32' | 'INT64' | 'DOUBLE' | 'BYTE_ARRAY' | 'FIXED_LEN_BYTE_ARRAY';
  type_length?: number;
  converted_type?: 'UTF8' | 'JSON' | 'TIMESTAMP_MILLIS' | 'TIMESTAMP_MICROS' | 'DATE' | 'DECIMAL';
  logical_type?:
    | { type: 'JSON' }
    | { type: 'UUID' }
    | { type: 'DECIMAL'; precision: number; scale: number }
    | { type: 'TIMESTAMP'; isAdjustedToUTC: boolean; unit: 'MICROS' };
  precision?: number;
  scale?: number;
  repetition_type?: 'REQUIRED' | 'OPTIONAL';
  num_children?: number;
}

/**
 * The largest precision written as Parquet DECIMAL: 38 digits, what DuckDB, Spark, Arrow's decimal128 and most
 * readers hold. A wider or unbounded `decimal` stays exact UTF8 text.
 */
export const PARQUET_DECIMAL_MAX_PRECISION = 38;

/** A bounded `decimal` field written as Parquet DECIMAL(precision, scale), or undefined (exact text). */
export function decimalOf(f: FieldSchema): { precision: number; scale: number } | undefined {
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

/** The flat Parquet schema (root + one leaf per field) of a {@link RecordSchema}. */
export function toParquetSchema(
  schema: RecordSchema,
  exactJson: ReadonlySet<string> = new Set(),
): ParquetSchemaElement[] {
  return [
    { name: 'root', num_children: schema.fields.length },
    ...schema.fields.map((f) => ({
      name: f.name,
      ...(exactJson.has(f.name)
        ? // the text verbatim, as bytes: logical type JSON without the writer's own JSON conversion
          { type: 'BYTE_ARRAY' as const, logical_type: { type: 'JSON' as const } }
        : decimalOf(f)
          ? decimalElement(decimalOf(f)!.precision, decimalOf(f)!.scale)
          : PHYSICAL[f.type]),
      ...(f.type === 'timestamp'
        ? {
            logical_type: {
              type: 'TIMESTAMP' as const,
              isAdjustedToUTC: f.logical?.withTimeZone !== false,
              unit: 'MICROS' as const,
            },
          }
        : {}),
      repetition_type: f.nullable ? ('OPTIONAL' as const) : ('REQUIRED' as const),
    })),
  ];
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
      columns[c]![r] = convertValue(Object.hasOwn(row, f.name) ? row[f.name] : null, f, firstRow + r, exactJson);
    }
  }
  return columns;
}

function convertValue(v: Value | undefined, f: FieldSchema, row: number, exactJson: ReadonlySet<string>): unknown {
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
        `is ${JSON.stringify(String(v))}, which DECIMAL(${d.precision},${d.scale}) cannot hold exactly`,
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
  throw reject(f, row, `is ${describe(v)}, not ${f.type}`);
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

function reject(f: FieldSchema, row: number, problem: string): IngestError {
  return new IngestError('row_rejected', `Parquet row ${row}, column "${f.name}" ${problem}`, {
    details: { row, column: f.name, type: f.type },
  });
}
