/**
 * A JSON value: what checkpoints, session refs, provenance and config are made of.
 * @public
 */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * A row value. Richer than {@link Json}: `bigint`, `Date` and `Uint8Array` survive staging exactly.
 * @public
 */
export type Value = null | boolean | number | bigint | string | Date | Uint8Array | Value[] | { [key: string]: Value };

/**
 * One record. Keys are data: a key such as `__proto__` is an own property, never a prototype.
 * @public
 */
export type Row = Record<string, Value>;

/**
 * Logical field types of a {@link RecordSchema}.
 *
 * - `int64` values are `bigint`; `decimal` values are exact decimal strings (never a lossy float);
 * - `timestamp` values are `Date`; `date` values are `YYYY-MM-DD` strings;
 * - `json` values are any {@link Value}; `binary` values are `Uint8Array`.
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
  | 'binary';

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
];
