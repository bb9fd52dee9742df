export type { Json, Row, Value } from '../values/value.js';

/**
 * Logical field types of a {@link RecordSchema}.
 *
 * - `int32` values are numbers, `int64` values are `bigint`; `float64` values are numbers (`NaN`, `±Infinity`, `-0`
 *   kept); `decimal` values are exact decimal strings (`'NaN'`, `'Infinity'`, `'-Infinity'` included; never a float);
 * - `timestamp` values are {@link Timestamp} (exact, µs, ±infinity; `logical.withTimeZone` says which kind) or
 *   `Date` (user data, ms); `date` values are `YYYY-MM-DD` strings (`'infinity'`, `'-infinity'`, `'YYYY-MM-DD BC'`);
 * - `time` (with `logical.withTimeZone` for `timetz`), `interval` and `uuid` values are the database's text;
 * - `json` values are {@link JsonText} or any {@link Value}; arrays are `json` with `logical.element`;
 * - `binary` values are `Uint8Array`; `string` values are strings (enums, inet, ranges, … as their text).
 * @public
 */
export type FieldType =
  | 'string'
  | 'int32'
  | 'int64'
  | 'float64'
  | 'decimal'
  | 'boolean'
  | 'timestamp'
  | 'date'
  | 'json'
  | 'binary'
  | 'time'
  | 'uuid'
  | 'interval';

/**
 * Details of a field's type that a sink needs to recreate the column faithfully. Every member is optional: a sink
 * uses what is there and maps the rest from {@link FieldSchema.type}.
 * @public
 */
export interface LogicalType {
  /** `decimal`: total digits (`numeric(12,2)` → 12); `timestamp`/`time`: fractional second digits (`timestamp(3)` → 3). */
  precision?: number;
  /** `decimal`: digits after the point (`numeric(12,2)` → 2). */
  scale?: number;
  /** `timestamp`/`time`: an instant / a time with offset (`timestamptz`, `timetz`) rather than a local one. */
  withTimeZone?: boolean;
  /** `string`/`binary`: the declared length (`varchar(20)` → 20, `char(8)` → 8). */
  length?: number;
  /** `string`: `true` for a blank-padded fixed-length type (`char(n)`). */
  fixedLength?: boolean;
  /** Arrays (type `json`): the element type (`integer[]` → `int32`). */
  element?: FieldType;
  /** Arrays: the element's own details (`numeric(12,2)[]` → `{ precision: 12, scale: 2 }`). */
  elementLogical?: Omit<LogicalType, 'element' | 'elementLogical'>;
  /** Arrays: the number of dimensions, when the source knows it. */
  dimensions?: number;
  /** Enums: the labels, in order. */
  enumLabels?: string[];
}

/**
 * The column's type in the source's own SQL dialect, for a sink of the same dialect.
 * @public
 */
export interface NativeType {
  /** `postgres` or `mysql`. */
  dialect: 'postgres' | 'mysql';
  /**
   * PostgreSQL: `format_type()` text (`numeric(12,2)`, `character(8)`, `timestamp(3) without time zone`,
   * `integer[]`, `public.mood`); MySQL: `COLUMN_TYPE` (`decimal(12,2)`, `datetime(6)`, `enum('a','b')`).
   */
  type: string;
}

/**
 * One field of a {@link RecordSchema}.
 * @public
 */
export interface FieldSchema {
  /** Column name, exactly as in the source. */
  name: string;
  /** Logical type. */
  type: FieldType;
  /** Whether `null` is allowed. */
  nullable: boolean;
  /** Type details (precision/scale, time zone, length, array element, enum labels), when the source knows them. */
  logical?: LogicalType;
  /** The source's own column type, for a sink of the same dialect. */
  native?: NativeType;
}

/**
 * Schema of the rows of a unit, when the source knows it.
 * @public
 */
export interface RecordSchema {
  /** Fields in source order. */
  fields: FieldSchema[];
  /** Primary key columns, when the source has one. */
  primaryKey?: string[];
}

/** All field types, in declaration order. @public */
export const FIELD_TYPES: readonly FieldType[] = [
  'string',
  'int32',
  'int64',
  'float64',
  'decimal',
  'boolean',
  'timestamp',
  'date',
  'json',
  'binary',
  'time',
  'uuid',
  'interval',
];
