import type { FieldSchema, FieldType, LogicalType, Value } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { mySqlDecimalForPostgres, mySqlTextType } from '../sql/cross-types.js';
import { stringifyJsonExact } from '../values/value.js';
import {
  float4Text,
  isJsonText,
  isTimestamp,
  jsonText,
  mysqlTimestampText,
  timestampFromMySql,
  ValueRejected,
} from './values.js';

export { ValueRejected };

/** How a column's values are read and written. @internal */
export type MySqlKind =
  | 'int'
  | 'bigint'
  | 'decimal'
  | 'float'
  | 'bit'
  | 'string'
  | 'binary'
  | 'date'
  | 'datetime'
  | 'timestamp'
  | 'time'
  | 'year'
  | 'json'
  | 'enum'
  | 'set'
  | 'uuid';

/** A column type as the catalog describes it. @internal */
export interface MySqlColumnType {
  dataType: string;
  /** information_schema.COLUMNS.COLUMN_TYPE, e.g. `decimal(65,30)`, `bigint(20) unsigned`, `enum('a','b')`. */
  columnType: string;
  kind: MySqlKind;
  unsigned: boolean;
  length?: number;
  precision?: number;
  scale?: number;
  /** Fractional seconds digits of DATETIME/TIMESTAMP/TIME. */
  fsp?: number;
  /** Width of BIT(n). */
  bits?: number;
  enumLabels?: string[];
  charset?: string;
  collation?: string;
}

const INT_TYPES = new Set(['tinyint', 'smallint', 'mediumint', 'int', 'integer']);
const STRING_TYPES = new Set(['char', 'varchar', 'tinytext', 'text', 'mediumtext', 'longtext', 'inet4', 'inet6']);
const BINARY_TYPES = new Set([
  'binary',
  'varbinary',
  'tinyblob',
  'blob',
  'mediumblob',
  'longblob',
  'geometry',
  'point',
  'linestring',
  'polygon',
  'multipoint',
  'multilinestring',
  'multipolygon',
  'geometrycollection',
]);

/** Classify a column from its information_schema row. @internal */
export function parseColumnType(c: {
  dataType: string;
  columnType: string;
  charLength?: number;
  precision?: number;
  scale?: number;
  datetimePrecision?: number;
  charset?: string;
  collation?: string;
  json?: boolean;
}): MySqlColumnType {
  const dataType = c.dataType.toLowerCase();
  const columnType = c.columnType;
  const unsigned = /\bunsigned\b/i.test(columnType);
  const base: Omit<MySqlColumnType, 'kind'> = { dataType, columnType, unsigned };
  if (c.charset) base.charset = c.charset;
  if (c.collation) base.collation = c.collation;
  const paren = /\((\d+)(?:,(\d+))?\)/.exec(columnType);
  if (c.json || dataType === 'json') return { ...base, kind: 'json' };
  if (INT_TYPES.has(dataType))
    return { ...base, kind: dataType === 'int' || dataType === 'integer' ? (unsigned ? 'bigint' : 'int') : 'int' };
  if (dataType === 'bigint') return { ...base, kind: 'bigint' };
  if (dataType === 'decimal' || dataType === 'numeric' || dataType === 'fixed')
    return { ...base, kind: 'decimal', precision: c.precision ?? 10, scale: c.scale ?? 0 };
  if (dataType === 'float' || dataType === 'double' || dataType === 'real' || dataType === 'double precision')
    return { ...base, kind: 'float' };
  if (dataType === 'bit') return { ...base, kind: 'bit', bits: paren ? Number(paren[1]) : (c.precision ?? 1) };
  if (dataType === 'year') return { ...base, kind: 'year' };
  if (dataType === 'date') return { ...base, kind: 'date' };
  if (dataType === 'datetime') return { ...base, kind: 'datetime', fsp: c.datetimePrecision ?? 0 };
  if (dataType === 'timestamp') return { ...base, kind: 'timestamp', fsp: c.datetimePrecision ?? 0 };
  if (dataType === 'time') return { ...base, kind: 'time', fsp: c.datetimePrecision ?? 0 };
  if (dataType === 'enum' || dataType === 'set')
    return { ...base, kind: dataType, enumLabels: parseLabels(columnType) };
  if (dataType === 'uuid') return { ...base, kind: 'uuid' };
  if (BINARY_TYPES.has(dataType)) {
    const out: MySqlColumnType = { ...base, kind: 'binary' };
    if ((dataType === 'binary' || dataType === 'varbinary') && paren) out.length = Number(paren[1]);
    return out;
  }
  if (c.charset === 'binary') return { ...base, kind: 'binary' };
  const out: MySqlColumnType = { ...base, kind: 'string' };
  if ((dataType === 'char' || dataType === 'varchar') && c.charLength !== undefined) out.length = c.charLength;
  if (!STRING_TYPES.has(dataType)) out.kind = 'string'; // unknown types: their text form
  return out;
}

/** `enum('a','it''s')` → ['a', "it's"]. */
function parseLabels(columnType: string): string[] {
  const body = columnType.slice(columnType.indexOf('(') + 1, columnType.lastIndexOf(')'));
  const out: string[] = [];
  const re = /'((?:[^'\\]|''|\\.)*)'/g;
  for (let m = re.exec(body); m; m = re.exec(body)) out.push(m[1].replace(/''/g, "'").replace(/\\(.)/g, '$1'));
  return out;
}

const FIELD_TYPES: Record<MySqlKind, FieldType> = {
  int: 'int32',
  bigint: 'int64',
  decimal: 'decimal',
  float: 'float64',
  bit: 'string',
  string: 'string',
  binary: 'binary',
  date: 'date',
  datetime: 'timestamp',
  timestamp: 'timestamp',
  time: 'time',
  year: 'int32',
  json: 'json',
  enum: 'string',
  set: 'string',
  uuid: 'uuid',
};

/** The charsets a target gets by default; other column charsets (latin1, …) are kept in `native.type`. */
const DEFAULT_CHARSETS = new Set(['utf8mb4', 'utf8mb3', 'utf8', 'binary']);

/** The native type text a MySQL sink recreates: COLUMN_TYPE, plus the character set when it is not UTF-8. @internal */
export function nativeTypeOf(c: MySqlColumnType): string {
  if (c.kind === 'json') return 'json';
  if (
    c.charset &&
    !DEFAULT_CHARSETS.has(c.charset.toLowerCase()) &&
    (c.kind === 'string' || c.kind === 'enum' || c.kind === 'set')
  )
    return `${c.columnType} CHARACTER SET ${c.charset}${c.collation ? ` COLLATE ${c.collation}` : ''}`;
  return c.columnType;
}

/** The {@link FieldSchema} of a column: type, nullability, logical details and the native type. @internal */
export function mySqlFieldSchema(
  c: MySqlColumnType & { name: string; nullable: boolean },
  zeroDatesAsNull: boolean,
): FieldSchema {
  const dateLike = c.kind === 'date' || c.kind === 'datetime' || c.kind === 'timestamp';
  const logical: LogicalType = {};
  // BIGINT UNSIGNED reaches 2^64−1, beyond every signed 64-bit type (Arrow, Parquet, PostgreSQL bigint): a decimal(20,0)
  const wide = isUnsignedBigint(c);
  if (c.kind === 'decimal') Object.assign(logical, { precision: c.precision, scale: c.scale });
  if (wide) Object.assign(logical, { precision: 20, scale: 0 });
  if (c.kind === 'datetime' || c.kind === 'timestamp' || c.kind === 'time') logical.precision = c.fsp;
  if (c.kind === 'datetime') logical.withTimeZone = false;
  if (c.kind === 'timestamp') logical.withTimeZone = true;
  if (c.length !== undefined) logical.length = c.length;
  if (c.dataType === 'char' || c.dataType === 'binary') logical.fixedLength = true;
  if (c.kind === 'bit') logical.length = c.bits;
  if (c.kind === 'enum' && c.enumLabels) logical.enumLabels = [...c.enumLabels];
  const field: FieldSchema = {
    name: c.name,
    type: wide ? 'decimal' : FIELD_TYPES[c.kind],
    nullable: c.nullable || (zeroDatesAsNull && dateLike),
    native: { dialect: 'mysql', type: nativeTypeOf(c) },
  };
  if (Object.keys(logical).length) field.logical = logical;
  return field;
}

/** `BIGINT UNSIGNED`: staged as a `decimal` of precision 20 (exact text), since it does not fit a signed int64. @internal */
export function isUnsignedBigint(c: Pick<MySqlColumnType, 'dataType' | 'unsigned'>): boolean {
  return c.unsigned && c.dataType === 'bigint';
}

/** `FLOAT` (an IEEE float4, `FLOAT(M,D)` included): the source selects it as a DOUBLE to read it exactly. @internal */
export function isFloat4(c: Pick<MySqlColumnType, 'dataType'>): boolean {
  return c.dataType === 'float';
}

/** A mysql2 typeCast field (the part we use). */
export interface CastField {
  name: string;
  string(encoding?: string): string | null;
  buffer(): Buffer | null;
}

/** What to do with a zero or partial-zero date (`0000-00-00`, `2024-00-10`). @public */
export type ZeroDatePolicy = 'null' | 'error';

const ZERO_DATE = /^(\d{4})-(\d{2})-(\d{2})/;

function isZeroDate(s: string): boolean {
  const m = ZERO_DATE.exec(s);
  return m ? m[1] === '0000' || m[2] === '00' || m[3] === '00' : false;
}

/**
 * A zero date (`0000-00-00`, a zero month or day) read from `column`: `source_failed` under `zeroDates: 'error'`,
 * else reported to `onZeroDate` (the caller stages NULL).
 * @internal
 */
export function zeroDateSeen(
  column: string,
  text: string,
  zeroDates: ZeroDatePolicy,
  onZeroDate: (column: string, text: string) => void,
): void {
  if (zeroDates === 'error')
    throw new IngestError(
      'source_failed',
      `Column ${JSON.stringify(column)} holds the zero date ${JSON.stringify(text)}, which is not a date (zeroDates: 'error')`,
      { retryable: false, details: { column, value: text } },
    );
  onZeroDate(column, text);
}

/**
 * The value of a DATETIME / TIMESTAMP column's wire text: a `Timestamp` (zoned for TIMESTAMP), or a zero date as
 * `zeroDates` says (null and `onZeroDate`, or `source_failed`). @internal
 */
export function timestampOfText(
  c: MySqlColumnType & { name: string },
  zeroDates: ZeroDatePolicy,
  onZeroDate: (column: string, text: string) => void,
): (s: string) => Value {
  const zoned = c.kind === 'timestamp';
  return (s) => {
    if (!isZeroDate(s)) return timestampFromMySql(s, zoned);
    zeroDateSeen(c.name, s, zeroDates, onZeroDate);
    return null;
  };
}

/** Read one column's value from the wire text/bytes exactly. @internal */
export function columnDecoder(
  c: MySqlColumnType & { name: string },
  zeroDates: ZeroDatePolicy,
  onZeroDate: (column: string, text: string) => void,
): (f: CastField) => Value {
  const zero = (s: string): null => {
    zeroDateSeen(c.name, s, zeroDates, onZeroDate);
    return null;
  };
  switch (c.kind) {
    case 'int':
    case 'year':
      return (f) => {
        const s = f.string();
        return s === null ? null : Number(s);
      };
    case 'bigint':
      if (isUnsignedBigint(c)) return (f) => f.string(); // a decimal(20,0): its exact text
      return (f) => {
        const s = f.string();
        return s === null ? null : BigInt(s);
      };
    case 'float':
      if (isFloat4(c))
        return (f) => {
          // read as CAST(… AS DOUBLE): the float4's exact value, kept as its shortest round-trip text
          const s = f.string();
          return s === null ? null : Number(float4Text(s));
        };
      return (f) => {
        const s = f.string();
        return s === null ? null : Number(s);
      };
    case 'bit': {
      const n = c.bits ?? 1;
      return (f) => {
        const b = f.buffer();
        if (b === null) return null;
        let bits = '';
        for (const byte of b) bits += byte.toString(2).padStart(8, '0');
        return bits.slice(bits.length - n).padStart(n, '0');
      };
    }
    case 'binary':
      return (f) => {
        const b = f.buffer();
        return b === null ? null : new Uint8Array(b);
      };
    case 'date':
      return (f) => {
        const s = f.string();
        if (s === null) return null;
        return isZeroDate(s) ? zero(s) : s;
      };
    case 'datetime':
    case 'timestamp': {
      const value = timestampOfText(c, zeroDates, onZeroDate);
      return (f) => {
        const s = f.string();
        return s === null ? null : value(s);
      };
    }
    case 'json':
      return (f) => {
        const s = f.string('utf8');
        return s === null ? null : jsonText(s);
      };
    default:
      // decimal (exact text), strings, enum, set, time, uuid, inet: the server's text form
      return (f) => f.string();
  }
}

/** The text MySQL reads back as exactly this value for a column of this type, or null. Bytes come back as bytes. @internal */
export function sinkValue(v: Value | undefined, c: MySqlColumnType & { name: string }): string | Uint8Array | null {
  if (v === null || v === undefined) return null;
  if (c.kind === 'binary') {
    if (v instanceof Uint8Array) return v;
    if (typeof v === 'string') return Buffer.from(v, 'utf8');
  }
  if (c.kind === 'bit') {
    if (typeof v === 'string' && /^[01]+$/.test(v)) return v;
    if (typeof v === 'number' || typeof v === 'bigint') return BigInt(v).toString(2);
    if (typeof v === 'boolean') return v ? '1' : '0';
    throw new ValueRejected(c.name, `expected a bit string such as '0101', got ${describe(v)}`);
  }
  if (typeof v === 'string') {
    if (c.kind === 'json' && isPgArrayText(v))
      throw new ValueRejected(
        c.name,
        `PostgreSQL array text ${describe(v)} has no JSON form (a lower bound other than 1, or elements with their own delimiter)`,
      );
    return v;
  }
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'boolean') return v ? '1' : '0';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new ValueRejected(c.name, `MySQL cannot store ${v}`);
    // into a FLOAT: the float4 value itself (MySQL refuses 3.4028235e38, the shortest text of the float4 maximum,
    // as a double above FLT_MAX); a double beyond the float4 range is refused, not clipped
    const n = isFloat4(c) ? Math.fround(v) : v;
    if (!Number.isFinite(n)) throw new ValueRejected(c.name, `${v} is outside the range of FLOAT`);
    return Object.is(n, -0) ? '-0' : String(n);
  }
  if (isTimestamp(v)) return mysqlTimestampText(v, c.name);
  if (v instanceof Date) return mysqlTimestampText(v, c.name);
  if (isJsonText(v)) return (v as { text: string }).text;
  if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8');
  const bad = nonFiniteIn(v);
  if (bad !== undefined)
    throw new ValueRejected(c.name, `JSON has no form for ${bad} (inside an array or object); it would become null`);
  return stringifyJsonExact(v);
}

/** PostgreSQL array text the source keeps as a string (ADR 0014): `[0:2]={1,2,3}`, `{(1,1),(0,0);(2,2),(1,1)}`. */
function isPgArrayText(v: string): boolean {
  if (/^(\[-?\d+:-?\d+\])+=\{/.test(v)) return true;
  if (v[0] !== '{') return false;
  try {
    JSON.parse(v);
    return false;
  } catch {
    return true;
  }
}

/** The first NaN or ±Infinity inside an array or record value (JSON text, timestamps and bytes are leaves). */
function nonFiniteIn(v: Value): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? undefined : v;
  if (v === null || typeof v !== 'object' || isJsonText(v) || isTimestamp(v) || v instanceof Date) return undefined;
  if (v instanceof Uint8Array) return undefined;
  for (const child of Array.isArray(v) ? v : Object.values(v)) {
    const bad = nonFiniteIn(child);
    if (bad !== undefined) return bad;
  }
  return undefined;
}

function describe(v: Value): string {
  const s = typeof v === 'string' ? JSON.stringify(v) : String(v);
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}

/** Quote a value for a SQL statement (backslash escapes; the session's sql_mode allows them). @internal */
export function sqlLiteral(v: string | Uint8Array | null, c: MySqlColumnType): string {
  if (v === null) return 'NULL';
  if (v instanceof Uint8Array)
    return v.length ? `X'${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')}'` : "''";
  if (c.kind === 'bit') return `b'${v}'`;
  return `'${escapeString(v)}'`;
}

const ESCAPES: Record<string, string> = {
  '\0': '\\0',
  '\n': '\\n',
  '\r': '\\r',
  '\x1a': '\\Z',
  "'": "\\'",
  '\\': '\\\\',
};

// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL and Ctrl-Z are what MySQL string literals escape
const NEEDS_ESCAPE = /[\0\n\r\x1a'\\]/g;

function escapeString(s: string): string {
  NEEDS_ESCAPE.lastIndex = 0;
  return NEEDS_ESCAPE.test(s) ? s.replace(NEEDS_ESCAPE, (ch) => ESCAPES[ch]) : s;
}

const TSV_ESCAPES: Record<string, string> = { '\0': '\\0', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\\': '\\\\' };

/** One field of a LOAD DATA file (tab separated, backslash escaped, `\N` for NULL, bytes and bits as text). @internal */
export function tsvField(v: string | Uint8Array | null): string {
  if (v === null) return '\\N';
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex');
  return /[\0\n\r\t\\]/.test(v) ? v.replace(/[\0\n\r\t\\]/g, (ch) => TSV_ESCAPES[ch]) : v;
}

/**
 * The MySQL column type a sink creates for a field: `native.type` when the field comes from MySQL, else from the
 * field type and its logical details (see docs/mysql.md).
 * @internal
 */
export function mySqlTargetType(f: FieldSchema, inKey: boolean): string {
  const x = f as FieldSchema & {
    logical?: {
      precision?: number;
      scale?: number;
      withTimeZone?: boolean;
      length?: number;
      element?: string;
      enumLabels?: string[];
    };
    native?: { dialect: string; type: string };
  };
  if (x.native?.dialect === 'mysql' && safeNativeType(x.native.type)) {
    const t = x.native.type;
    if (inKey && /^(tiny|medium|long)?(text|blob)\b/i.test(t))
      return /blob/i.test(t) ? 'VARBINARY(3072)' : 'VARCHAR(768)';
    return t;
  }
  const l = x.logical ?? {};
  const pgNative = x.native?.dialect === 'postgres' ? x.native.type : undefined;
  if (pgNative === 'oid') return 'INT UNSIGNED';
  switch (f.type) {
    case 'int32':
      return x.native?.type === 'smallint' ? 'SMALLINT' : 'INT';
    case 'int64':
      return 'BIGINT';
    case 'float64':
      return x.native?.type === 'real' ? 'FLOAT' : 'DOUBLE';
    case 'decimal':
      // a DECIMAL that holds every finite value, else the exact text (unbounded numeric, > 65 digits, > 30 decimals)
      return mySqlDecimalForPostgres(l.precision, l.scale) ?? mySqlTextType(inKey);
    case 'boolean':
      return 'BOOLEAN';
    case 'timestamp':
      return `DATETIME(${l.precision !== undefined && l.precision >= 0 && l.precision <= 6 ? l.precision : 6})`;
    case 'date':
      return 'DATE';
    case 'time':
      // a time with its offset (timetz) has no MySQL type: its text
      if (l.withTimeZone) return 'VARCHAR(32)';
      return `TIME(${l.precision !== undefined && l.precision >= 0 && l.precision <= 6 ? l.precision : 6})`;
    case 'uuid':
      return 'CHAR(36) CHARACTER SET ascii';
    case 'interval':
      return 'VARCHAR(255)';
    case 'json':
      return 'JSON';
    case 'binary':
      if (l.length !== undefined && l.length <= 255) return `VARBINARY(${l.length})`;
      return inKey ? 'VARBINARY(3072)' : 'LONGBLOB';
    default:
      if (l.enumLabels?.length) return `ENUM(${l.enumLabels.map((e) => `'${escapeString(e)}'`).join(',')})`;
      if (l.length !== undefined && l.length >= 1 && l.length <= 16_383) {
        const native = x.native?.type ?? '';
        return /^(character|char|bpchar)\b(?! varying)/i.test(native) && l.length <= 255
          ? `CHAR(${l.length})`
          : `VARCHAR(${l.length})`;
      }
      return inKey ? 'VARCHAR(768)' : 'LONGTEXT';
  }
}

/**
 * Binary NO PAD collations, preferred first: MariaDB ≥ 10.2 has `utf8mb4_nopad_bin`, MySQL 8's `utf8mb4_0900_bin` is
 * NO PAD. Created text key columns use one, so keys compare as PostgreSQL (deterministic) and the source compare
 * them: `'a'` ≠ `'a '` ≠ `'A'`, NFC ≠ NFD. @internal
 */
export const NOPAD_BIN = ['utf8mb4_nopad_bin', 'utf8mb4_0900_bin'] as const;

/**
 * A created key column's type with a binary NO PAD collation when it is a UTF-8 `VARCHAR` (the table's
 * `utf8mb4_bin` is PAD SPACE: `'a'` and `'a '` would be one key); other types, and columns that name their own
 * character set, are left as they are. @internal
 */
export function keyCollated(type: string, collation: string | undefined): string {
  if (!collation || !/^varchar\(\d+\)$/i.test(type.trim())) return type;
  return `${type} CHARACTER SET utf8mb4 COLLATE ${collation}`;
}

/** A native type text that is safe to splice into DDL: a known shape, quoted labels only. */
function safeNativeType(t: string): boolean {
  return /^[a-z][a-z ]*(\((\d+(,\d+)?|'(?:[^'\\]|''|\\.)*'(,'(?:[^'\\]|''|\\.)*')*)\))?( unsigned)?( zerofill)?( CHARACTER SET [a-z0-9_]+)?( COLLATE [a-z0-9_]+)?$/i.test(
    t,
  );
}
