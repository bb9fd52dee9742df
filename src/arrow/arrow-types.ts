import {
  Binary,
  Bool,
  type DataType,
  Field,
  Float64,
  Int32,
  Int64,
  TimestampMillisecond,
  Type,
  Utf8,
} from 'apache-arrow';
import { decodeTaggedJson, encodeTaggedJson } from '../codecs/value-encoding.js';
import type { FieldType, Value } from '../contracts/values.js';

/** Arrow field metadata key holding the logical {@link FieldType} of a column. */
export const LOGICAL_TYPE_KEY = 'nucleus.type';

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** The Arrow type that stores a logical type. */
export function arrowTypeOf(type: FieldType): DataType {
  switch (type) {
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

/** An Arrow field for a logical field (always nullable; the logical type rides in the metadata). */
export function arrowField(name: string, type: FieldType): Field {
  const metadata = new Map<string, string>([[LOGICAL_TYPE_KEY, type]]);
  // Arrow JS reads an empty field name back as "null": keep the real name in the metadata too.
  if (name === '') metadata.set(NAME_KEY, name);
  return new Field(name, arrowTypeOf(type), true, metadata);
}

/** The row key of an Arrow field. */
export function keyOf(field: Field): string {
  return field.metadata.get(NAME_KEY) ?? field.name;
}

/** Whether `v` (not null) can be stored in a column of `type` and read back identical. */
export function fits(type: FieldType, v: unknown): boolean {
  switch (type) {
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

/** The narrowest logical type for one non-null value. */
export function inferType(v: unknown): FieldType {
  if (typeof v === 'string') return 'string';
  if (typeof v === 'number') return 'float64';
  if (typeof v === 'boolean') return 'boolean';
  if (fits('int64', v)) return 'int64';
  if (fits('timestamp', v)) return 'timestamp';
  if (v instanceof Uint8Array) return 'binary';
  return 'json';
}

/** The value a builder of `type` takes for `v` (not null, already checked with {@link fits}). */
export function toArrowValue(type: FieldType, v: unknown): unknown {
  switch (type) {
    case 'timestamp':
      return (v as Date).getTime();
    case 'json':
      return encodeTaggedJson(v as Value);
    default:
      return v;
  }
}

/** The logical type of an Arrow field: from our metadata, or derived from the Arrow type for foreign data. */
export function logicalTypeOf(field: Field): FieldType {
  const meta = field.metadata.get(LOGICAL_TYPE_KEY);
  if (meta) return meta as FieldType;
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

/** Convert one cell read from Arrow (`Vector.get`) back into a {@link Value}. */
export function fromArrowValue(type: FieldType, v: unknown): Value {
  if (v === null || v === undefined) return null;
  switch (type) {
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
