import {
  Binary,
  Bool,
  type Data,
  type DataType,
  Field,
  Float64,
  Int32,
  Int64,
  TimestampMicrosecond,
  TimestampMillisecond,
  TimeUnit,
  Type,
  Utf8,
  type Vector,
} from 'apache-arrow';
import { decodeTaggedJson, encodeTaggedJson } from '../codecs/value-encoding.js';
import type { FieldSchema, FieldType, Value } from '../contracts/values.js';
import { JsonText } from '../values/json-text.js';
import { Timestamp } from '../values/timestamp.js';

/** Arrow field metadata key holding the logical {@link FieldType} of a column. */
export const LOGICAL_TYPE_KEY = 'nucleus.type';

/** Arrow field metadata key naming the JS class of a column's values when a FieldType has several (`Timestamp`, `JsonText`). */
export const VALUE_CLASS_KEY = 'nucleus.value';

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * How a column is stored: a {@link FieldType}, or one of the exact kinds —
 * `ts_utc` / `ts_local`: zoned / unzoned `Timestamp`s as `timestamp[us]` (time zone `UTC` / none), ±infinity as
 * the int64 max/min (as PostgreSQL stores them); `json_text`: `JsonText`s as their text in `utf8`.
 */
export type ColumnKind = FieldType | 'ts_utc' | 'ts_local' | 'json_text';

/** The FieldType a column kind stores. */
export function fieldTypeOf(kind: ColumnKind): FieldType {
  return kind === 'ts_utc' || kind === 'ts_local' ? 'timestamp' : kind === 'json_text' ? 'json' : kind;
}

/** The Arrow type that stores a column kind. */
export function arrowTypeOf(type: ColumnKind): DataType {
  switch (type) {
    case 'ts_utc':
      return new TimestampMicrosecond('UTC');
    case 'ts_local':
      return new TimestampMicrosecond();
    case 'int32':
      return new Int32();
    case 'int64':
      return new Int64();
    case 'float64':
      return new Float64();
    case 'boolean':
      return new Bool();
    case 'timestamp':
      return new TimestampMillisecond();
    case 'binary':
      return new Binary();
    default:
      // string, decimal (exact text), date (YYYY-MM-DD text), json (tagged JSON text)
      return new Utf8();
  }
}

/** Arrow field metadata key holding the exact row key, where the field name cannot. */
export const NAME_KEY = 'nucleus.name';

/** Arrow field metadata key marking our hidden columns. */
export const ROLE_KEY = 'nucleus.role';

/**
 * The hidden column listing, per row, the indices of columns whose key the row does not have
 * (`null` when it has them all). Recognised by its metadata, never by its name.
 */
export function absentField(): Field {
  return new Field('nucleus.absent', new Utf8(), true, new Map([[ROLE_KEY, 'absent']]));
}

/** Whether `field` is the hidden column of {@link absentField}. */
export function isAbsentField(field: Field): boolean {
  return field.metadata.get(ROLE_KEY) === 'absent';
}

/** The Arrow type whose builder collects a column's values (µs timestamps are built as raw int64). */
export function builderTypeOf(type: ColumnKind): DataType {
  return type === 'ts_utc' || type === 'ts_local' ? new Int64() : arrowTypeOf(type);
}

/** Turn what a builder of {@link builderTypeOf} flushed into the column's data (raw int64 → timestamp[us]). */
export function asColumnData(type: ColumnKind, data: Data): Data {
  if (type !== 'ts_utc' && type !== 'ts_local') return data;
  return data.clone(arrowTypeOf(type) as never);
}

/** An Arrow field for a logical field (always nullable; the logical type rides in the metadata). */
export function arrowField(name: string, type: ColumnKind): Field {
  const metadata = new Map<string, string>([[LOGICAL_TYPE_KEY, fieldTypeOf(type)]]);
  if (type === 'ts_utc' || type === 'ts_local') metadata.set(VALUE_CLASS_KEY, 'Timestamp');
  if (type === 'json_text') metadata.set(VALUE_CLASS_KEY, 'JsonText');
  // Arrow JS reads an empty field name back as "null": keep the real name in the metadata too.
  if (name === '') metadata.set(NAME_KEY, name);
  return new Field(name, arrowTypeOf(type), true, metadata);
}

/** The row key of an Arrow field. */
export function keyOf(field: Field): string {
  return field.metadata.get(NAME_KEY) ?? field.name;
}

/** Whether a Timestamp can be stored as an int64 of µs (±infinity as the int64 max/min). */
function inInt64(t: Timestamp): boolean {
  return !t.isFinite || (t.epochMicros > INT64_MIN && t.epochMicros < INT64_MAX);
}

/** Whether `v` (not null) can be stored in a column of `type` and read back identical. */
export function fits(type: ColumnKind, v: unknown): boolean {
  switch (type) {
    case 'ts_utc':
      return v instanceof Timestamp && v.zoned && inInt64(v);
    case 'ts_local':
      return v instanceof Timestamp && !v.zoned && inInt64(v);
    case 'json_text':
      return v instanceof JsonText;
    case 'string':
    case 'decimal':
    case 'date':
    case 'time':
    case 'uuid':
    case 'interval':
      return typeof v === 'string';
    case 'int32':
      return typeof v === 'number' && (v | 0) === v && !Object.is(v, -0);
    case 'int64':
      return typeof v === 'bigint' && v >= INT64_MIN && v <= INT64_MAX;
    case 'float64':
      return typeof v === 'number';
    case 'boolean':
      return typeof v === 'boolean';
    case 'timestamp':
      return v instanceof Date && !Number.isNaN(v.getTime());
    case 'binary':
      return v instanceof Uint8Array;
    case 'json':
      return true;
  }
}

/** The narrowest column kind for one non-null value. */
export function inferType(v: unknown): ColumnKind {
  if (typeof v === 'string') return 'string';
  if (typeof v === 'number') return 'float64';
  if (typeof v === 'boolean') return 'boolean';
  if (fits('int64', v)) return 'int64';
  if (fits('timestamp', v)) return 'timestamp';
  if (v instanceof Timestamp && inInt64(v)) return v.zoned ? 'ts_utc' : 'ts_local';
  if (v instanceof JsonText) return 'json_text';
  if (v instanceof Uint8Array) return 'binary';
  return 'json';
}

/**
 * The column kind for a declared FieldType, given the first non-null value of the column (if any): a `timestamp`
 * field holds `Timestamp`s (µs) or `Date`s (ms), a `json` field `JsonText` or any value.
 */
export function kindForField(field: FieldSchema, first: unknown): ColumnKind {
  const type = field.type;
  if (type === 'timestamp' && first instanceof Timestamp && inInt64(first)) return first.zoned ? 'ts_utc' : 'ts_local';
  if (type === 'json' && first instanceof JsonText) return 'json_text';
  if (first === undefined) {
    // no value yet: what the schema's details promise (a database source gives Timestamps and JsonText)
    if (type === 'timestamp' && field.logical?.withTimeZone !== undefined)
      return field.logical.withTimeZone ? 'ts_utc' : 'ts_local';
    if (type === 'json' && !field.logical?.element && /^jsonb?$/.test(field.native?.type ?? '')) return 'json_text';
  }
  return type;
}

/** Whether `v` (not null) is a value of the declared FieldType, though perhaps not of its column's kind. */
export function belongsTo(type: FieldType, v: unknown): boolean {
  if (type === 'timestamp') return v instanceof Timestamp || fits('timestamp', v);
  return fits(type, v);
}

/** The value a builder of `type` takes for `v` (not null, already checked with {@link fits}). */
export function toArrowValue(type: ColumnKind, v: unknown): unknown {
  switch (type) {
    case 'ts_utc':
    case 'ts_local':
      return (v as Timestamp).epochMicros;
    case 'json_text':
      return (v as JsonText).text;
    case 'timestamp':
      return (v as Date).getTime();
    case 'json':
      return encodeTaggedJson(v as Value);
    default:
      return v;
  }
}

/** The column kind of an Arrow field: from our metadata, or derived from the Arrow type for foreign data. */
export function logicalTypeOf(field: Field): ColumnKind {
  const isMicros =
    field.type.typeId === Type.Timestamp && (field.type as { unit?: TimeUnit }).unit === TimeUnit.MICROSECOND;
  const tz = (field.type as { timezone?: string | null }).timezone;
  const valueClass = field.metadata.get(VALUE_CLASS_KEY);
  if (valueClass === 'JsonText') return 'json_text';
  if (valueClass === 'Timestamp' && isMicros) return tz ? 'ts_utc' : 'ts_local';
  const meta = field.metadata.get(LOGICAL_TYPE_KEY);
  if (meta) return meta as FieldType;
  // foreign data: microsecond timestamps are read exactly
  if (isMicros) return tz ? 'ts_utc' : 'ts_local';
  switch (field.type.typeId) {
    case Type.Int:
      return (field.type as { bitWidth?: number }).bitWidth === 64 ? 'int64' : 'int32';
    case Type.Float:
      return 'float64';
    case Type.Bool:
      return 'boolean';
    case Type.Timestamp:
    case Type.Date:
      return 'timestamp';
    case Type.Binary:
    case Type.LargeBinary:
      return 'binary';
    default:
      return 'string';
  }
}

/**
 * A reader of one column's cells: `Vector.get`, except for µs timestamps, whose raw int64 is read (`get` would
 * divide it into a lossy number of milliseconds).
 */
export function cellReader(type: ColumnKind, vector: Vector): (row: number) => unknown {
  if (type !== 'ts_utc' && type !== 'ts_local') return (r) => vector.get(r);
  const chunks = vector.data;
  if (chunks.length === 1) {
    const d = chunks[0];
    const values = d.values as BigInt64Array;
    return (r) => (d.getValid(r) ? values[d.offset + r] : null);
  }
  return (r) => {
    let at = r;
    for (const d of chunks) {
      if (at < d.length) return d.getValid(at) ? (d.values as BigInt64Array)[d.offset + at] : null;
      at -= d.length;
    }
    return null;
  };
}

/** Convert one cell read with {@link cellReader} back into a {@link Value}. */
export function fromArrowValue(type: ColumnKind, v: unknown): Value {
  if (v === null || v === undefined) return null;
  switch (type) {
    case 'ts_utc':
    case 'ts_local': {
      const us = BigInt(v as bigint);
      const zoned = type === 'ts_utc';
      if (us === INT64_MAX) return Timestamp.infinite(1, { zoned });
      if (us === INT64_MIN) return Timestamp.infinite(-1, { zoned });
      return Timestamp.fromEpochMicros(us, { zoned });
    }
    case 'json_text':
      return new JsonText(v as string);
    case 'int64':
      return typeof v === 'bigint' ? v : BigInt(v as number);
    case 'int32':
    case 'float64':
      return typeof v === 'bigint' ? Number(v) : (v as number);
    case 'timestamp':
      return new Date(typeof v === 'bigint' ? Number(v) : (v as number));
    case 'binary':
      // A copy: never keep the whole record batch alive through a view.
      return (v as Uint8Array).slice();
    case 'json':
      return decodeTaggedJson(v as string);
    default:
      return v as Value;
  }
}
