import { parsePgTimestamp, parsePgTimestamptz } from '../codecs/timestamp-text.js';
import type { FieldType, LogicalType, Value } from '../contracts/values.js';
import { JsonText } from '../values/json-text.js';
import { Timestamp } from '../values/timestamp.js';

/** What the catalog says about a column's type (after resolving domains to their base type). */
export interface PgTypeInfo {
  /** OID of the (base) type. */
  typid: number;
  /** `int8`, `numeric`, `_int4`, … */
  typname: string;
  /** pg_type.typcategory: `A` array, `E` enum, `N` numeric, `S` string, … */
  typcategory: string;
  /** Element type OID for arrays, else 0. */
  typelem: number;
  /** Element type name for arrays. */
  elemname?: string | null;
}

/**
 * The logical {@link FieldType} of a PostgreSQL type. The table in docs/postgresql.md is the reference:
 * `int2`/`int4` → `int32`, `int8` and `oid` → `int64`, `numeric` → `decimal` (exact string), `float4`/`float8` → `float64`,
 * `bool` → `boolean`, `timestamp`/`timestamptz` → `timestamp` ({@link Timestamp}), `date` → `date` ('YYYY-MM-DD'),
 * `time`/`timetz` → `time`, `interval` → `interval`, `uuid` → `uuid` (PostgreSQL's text), `json`/`jsonb` and every
 * array → `json`, `bytea` → `binary`; text-like types, enums and anything else → `string` (PostgreSQL's text form).
 * @example
 * ```ts
 * import { pgTypeToFieldType } from '@nucleus/ingestion/postgres';
 * pgTypeToFieldType({ typname: 'int8', typcategory: 'N' }); // 'int64'
 * ```
 * @public
 */
export function pgTypeToFieldType(t: Pick<PgTypeInfo, 'typname' | 'typcategory'>): FieldType {
  if (t.typcategory === 'A') return 'json';
  switch (t.typname) {
    case 'int2':
    case 'int4':
      return 'int32';
    case 'int8':
    case 'oid':
      return 'int64';
    case 'numeric':
      return 'decimal';
    case 'float4':
    case 'float8':
      return 'float64';
    case 'bool':
      return 'boolean';
    case 'timestamp':
    case 'timestamptz':
      return 'timestamp';
    case 'date':
      return 'date';
    case 'json':
    case 'jsonb':
      return 'json';
    case 'bytea':
      return 'binary';
    case 'time':
    case 'timetz':
      return 'time';
    case 'uuid':
      return 'uuid';
    case 'interval':
      return 'interval';
    default:
      return 'string';
  }
}

/**
 * The type details of a PostgreSQL column from its `format_type()` text (modifiers included):
 * `numeric(12,2)` → `{ precision: 12, scale: 2 }`, `character(8)` → `{ length: 8, fixedLength: true }`,
 * `timestamp(3) without time zone` → `{ precision: 3, withTimeZone: false }`, arrays → the element's details.
 * @example
 * ```ts
 * import { pgLogicalType } from '@nucleus/ingestion/postgres';
 * pgLogicalType('numeric(12,2)'); // { precision: 12, scale: 2 }
 * ```
 * @public
 */
export function pgLogicalType(formatted: string): LogicalType {
  const out: LogicalType = {};
  const m = /^(.*?)(?:\((\d+)(?:,(-?\d+))?\))?( with(?:out)? time zone)?((?:\[\])*)$/.exec(formatted.trim());
  if (!m) return out;
  const [, base, a, b, zone] = m;
  const n = a === undefined ? undefined : Number(a);
  switch (base) {
    case 'numeric':
      if (n !== undefined) {
        out.precision = n;
        out.scale = b === undefined ? 0 : Number(b);
      }
      break;
    case 'timestamp':
    case 'time':
      if (n !== undefined) out.precision = n;
      out.withTimeZone = zone === ' with time zone';
      break;
    case 'character varying':
    case 'bit varying':
      if (n !== undefined) out.length = n;
      break;
    case 'character':
    case 'bit':
      out.length = n ?? 1;
      out.fixedLength = true;
      break;
    case 'interval':
      if (n !== undefined) out.precision = n;
      break;
  }
  return out;
}

/**
 * The column type the sink creates for a {@link FieldType} and its {@link LogicalType} details (when the staged
 * schema has no PostgreSQL `native` type it can use): `decimal` with precision → `numeric(p,s)`, `timestamp` →
 * `timestamptz` unless `withTimeZone: false`, `time` → `time`/`timetz`, `string` with a length → `varchar(n)` /
 * `char(n)`, `json` with an element type → `element[]`.
 * @example
 * ```ts
 * import { fieldTypeToPgType } from '@nucleus/ingestion/postgres';
 * fieldTypeToPgType('json'); // 'jsonb'
 * fieldTypeToPgType('decimal', { precision: 12, scale: 2 }); // 'numeric(12,2)'
 * fieldTypeToPgType('json', { element: 'int32' }); // 'integer[]'
 * ```
 * @public
 */
export function fieldTypeToPgType(type: FieldType, logical: LogicalType = {}): string {
  const int = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 0;
  const precision = int(logical.precision) ? `(${logical.precision})` : '';
  switch (type) {
    case 'string':
      if (int(logical.length) && logical.length > 0)
        return logical.fixedLength ? `character(${logical.length})` : `character varying(${logical.length})`;
      return 'text';
    case 'decimal':
      if (int(logical.precision) && logical.precision >= 1 && logical.precision <= 1000)
        return `numeric(${logical.precision},${Number.isInteger(logical.scale) ? logical.scale : 0})`;
      return 'numeric';
    case 'timestamp':
      return logical.withTimeZone === false
        ? `timestamp${precision} without time zone`
        : `timestamp${precision} with time zone`;
    case 'time':
      return logical.withTimeZone ? `time${precision} with time zone` : `time${precision} without time zone`;
    case 'uuid':
      return 'uuid';
    case 'interval':
      return 'interval';
    case 'json':
      if (logical.element && logical.element !== 'json')
        return `${fieldTypeToPgType(logical.element, logical.elementLogical ?? {})}[]`;
      if (logical.element === 'json') return 'jsonb[]';
      return 'jsonb';
    case 'int32':
      return 'integer';
    case 'int64':
      return 'bigint';
    case 'float64':
      return 'double precision';
    case 'boolean':
      return 'boolean';
    case 'date':
      return 'date';
    case 'binary':
      return 'bytea';
    default:
      return 'text';
  }
}

type Parser = (text: string) => Value;

const identity: Parser = (s) => s;
const int: Parser = (s) => Number.parseInt(s, 10);
const bigint: Parser = (s) => BigInt(s);
const float: Parser = (s) => Number.parseFloat(s);
const bool: Parser = (s) => s === 't' || s === 'true';

const TS =
  /^(\d{4,})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?(?:([+-])(\d\d)(?::?(\d\d))?(?::?(\d\d))?|Z)?( BC)?$/;

/**
 * Parse PostgreSQL's ISO timestamp text (DateStyle ISO) into a `Date`. Without an offset (`timestamp without time
 * zone`) the value is read as UTC. Sub-millisecond digits are truncated (a JS Date holds milliseconds): the source
 * uses {@link Timestamp} instead; this stays for callers that want a Date.
 * @throws RangeError for `infinity`, `-infinity` and values a Date cannot hold.
 */
export function parseTimestamp(s: string): Date {
  const fast = fastTimestamp(s);
  if (fast !== undefined) return fast;
  const m = TS.exec(s);
  if (!m) throw new RangeError(`Cannot represent timestamp ${JSON.stringify(s)} as a Date`);
  let year = Number(m[1]);
  if (m[12]) year = 1 - year;
  const ms = m[7] ? Number(m[7].padEnd(3, '0').slice(0, 3)) : 0;
  const d = new Date(Date.UTC(2000, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]), ms));
  d.setUTCFullYear(year);
  if (m[8]) {
    const sign = m[8] === '-' ? -1 : 1;
    const offset = sign * (Number(m[9]) * 3600 + Number(m[10] ?? 0) * 60 + Number(m[11] ?? 0)) * 1000;
    d.setTime(d.getTime() - offset);
  }
  if (Number.isNaN(d.getTime())) throw new RangeError(`Cannot represent timestamp ${JSON.stringify(s)} as a Date`);
  return d;
}

const digit = (s: string, i: number) => s.charCodeAt(i) - 48;
const two = (s: string, i: number) => digit(s, i) * 10 + digit(s, i + 1);

/**
 * The common shape, without a regex: `YYYY-MM-DD HH:MM:SS[.f{1,6}][+HH]` (4-digit year, offset in whole hours or
 * absent). Returns undefined for anything else (the general parser handles it).
 */
function fastTimestamp(s: string): Date | undefined {
  const n = s.length;
  if (n < 19 || s.charCodeAt(4) !== 45 || s.charCodeAt(10) !== 32 || s.charCodeAt(13) !== 58) return undefined;
  let i = 19;
  let ms = 0;
  if (s.charCodeAt(i) === 46) {
    let scale = 100;
    i++;
    while (i < n) {
      const d = s.charCodeAt(i) - 48;
      if (d < 0 || d > 9) break;
      ms += d * scale;
      scale /= 10;
      i++;
    }
    ms = Math.floor(ms);
  }
  let offset = 0;
  if (i < n) {
    const sign = s.charCodeAt(i);
    if ((sign !== 43 && sign !== 45) || n !== i + 3) return undefined;
    offset = (sign === 45 ? -1 : 1) * two(s, i + 1) * 3_600_000;
  }
  const year = digit(s, 0) * 1000 + two(s, 1) * 10 + digit(s, 3);
  if (year < 100) return undefined;
  const t = Date.UTC(year, two(s, 5) - 1, two(s, 8), two(s, 11), two(s, 14), two(s, 17), ms) - offset;
  return Number.isNaN(t) ? undefined : new Date(t);
}

/** Decode bytea hex output (`\x0102…`) into a fresh Uint8Array. */
export function parseBytea(s: string): Uint8Array {
  if (s.startsWith('\\x')) return new Uint8Array(Buffer.from(s.slice(2), 'hex'));
  // escape format (bytea_output = escape): octal escapes and doubled backslashes
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\\') {
      if (s[i + 1] === '\\') {
        out.push(92);
        i++;
      } else {
        out.push(Number.parseInt(s.slice(i + 1, i + 4), 8));
        i += 3;
      }
    } else out.push(s.charCodeAt(i));
  }
  return new Uint8Array(out);
}

/**
 * Parse an array literal (`{1,2,NULL,"a\"b",{3}}`, optionally with a `[1:2]=` bounds prefix) into nested JS arrays.
 */
export function parseArrayLiteral(text: string, element: Parser): Value[] {
  let i = 0;
  if (text[0] === '[') i = text.indexOf('=') + 1;
  const arr = (): Value[] => {
    if (text[i] !== '{') throw new SyntaxError(`Malformed array literal at ${i}`);
    i++;
    const out: Value[] = [];
    if (text[i] === '}') {
      i++;
      return out;
    }
    while (true) {
      if (text[i] === '{') out.push(arr());
      else if (text[i] === '"') {
        i++;
        let s = '';
        while (i < text.length && text[i] !== '"') {
          if (text[i] === '\\') i++;
          s += text[i++];
        }
        i++;
        out.push(element(s));
      } else {
        let j = i;
        while (j < text.length && text[j] !== ',' && text[j] !== '}') j++;
        const raw = text.slice(i, j);
        i = j;
        out.push(raw === 'NULL' ? null : element(raw));
      }
      if (text[i] === ',') i++;
      else if (text[i] === '}') {
        i++;
        return out;
      } else throw new SyntaxError(`Malformed array literal at ${i}`);
    }
  };
  return arr();
}

const json: Parser = (s) => new JsonText(s);

/** Element types whose array delimiter is not `,` (pg_type.typdelim): `box` separates elements with `;`. */
const OWN_DELIMITER = new Set(['box']);

/**
 * The parser of an array type: nested JS arrays of the element's values when they hold the array exactly, else
 * PostgreSQL's array text as a string (ADR 0014) — an array with a non-default lower bound (`[0:2]={1,2,3}`: JS
 * arrays start at 0 and carry no bounds) and arrays of element types with their own delimiter (`box[]`, whose
 * elements contain commas). The sink writes such a string back verbatim; a sink with no array type refuses it.
 */
function arrayParser(elemName: string): Parser {
  if (OWN_DELIMITER.has(elemName)) return identity;
  const elem = BY_NAME[elemName] ?? identity;
  return (s) => (s.charCodeAt(0) === 0x5b /* [ */ ? s : parseArrayLiteral(s, elem));
}

/**
 * The text parsers of the type mapping, by what they do: transcoders (docs/decisions/0008-transcoded-row-paths.md)
 * recognise a column's parser by identity to pick a fast path that writes what the parser's value would be written as.
 * @internal
 */
export const TEXT_PARSERS = Object.freeze({
  identity,
  int,
  bigint,
  float,
  bool,
  timestamp: parsePgTimestamp as Parser,
  timestamptz: parsePgTimestamptz as Parser,
  json,
  bytea: parseBytea as Parser,
});

const BY_NAME: Record<string, Parser> = {
  int2: int,
  int4: int,
  oid: bigint,
  int8: bigint,
  numeric: identity,
  float4: float,
  float8: float,
  bool,
  date: identity,
  timestamp: TEXT_PARSERS.timestamp,
  timestamptz: TEXT_PARSERS.timestamptz,
  json,
  jsonb: json,
  bytea: TEXT_PARSERS.bytea,
};

/** Built-in type OIDs → type names, for result columns the catalog did not describe (expressions). */
const BUILTIN_OIDS: Record<number, string> = {
  16: 'bool',
  17: 'bytea',
  20: 'int8',
  21: 'int2',
  23: 'int4',
  26: 'oid',
  114: 'json',
  700: 'float4',
  701: 'float8',
  1082: 'date',
  1114: 'timestamp',
  1184: 'timestamptz',
  1700: 'numeric',
  3802: 'jsonb',
};

/** Built-in array OIDs → element type names. */
const BUILTIN_ARRAYS: Record<number, string> = {
  1000: 'bool',
  1001: 'bytea',
  1005: 'int2',
  1007: 'int4',
  1016: 'int8',
  1021: 'float4',
  1022: 'float8',
  1182: 'date',
  1115: 'timestamp',
  1185: 'timestamptz',
  1231: 'numeric',
  199: 'json',
  3807: 'jsonb',
  1009: 'text',
  1015: 'varchar',
  1014: 'bpchar',
  2951: 'uuid',
  1002: 'char',
  1003: 'name',
  1183: 'time',
  1270: 'timetz',
  1187: 'interval',
  1041: 'inet',
  651: 'cidr',
  1040: 'macaddr',
  1561: 'bit',
  1563: 'varbit',
  791: 'money',
  143: 'xml',
  1028: 'oid',
};

/** A `pg` custom type-parser set (the `types` option of a query), built without touching pg's global parsers. */
export interface TypeParsers {
  /** The parser `pg` applies to a value of type `oid` in `format` ('text' or 'binary'). */
  getTypeParser(oid: number, format?: string): (value: string) => any;
}

/**
 * Type parsers implementing the documented mapping, for one query. `columns` adds the catalog's knowledge of
 * non-built-in array types (arrays of enums, domains, …) so that every array becomes a JSON array.
 * @example
 * ```ts
 * import { createTypeParsers } from '@nucleus/ingestion/postgres';
 * const res = await client.query({ text: 'SELECT 9223372036854775807::int8 AS n', types: createTypeParsers() });
 * res.rows[0].n; // 9223372036854775807n
 * ```
 * @public
 */
export function createTypeParsers(columns: readonly PgTypeInfo[] = []): TypeParsers {
  const extra = new Map<number, Parser>();
  for (const c of columns) {
    if (c.typcategory === 'A' && !BUILTIN_ARRAYS[c.typid]) extra.set(c.typid, arrayParser(c.elemname ?? ''));
  }
  return {
    getTypeParser(oid: number, format?: string) {
      if (format === 'binary') return (v: any) => v;
      const name = BUILTIN_OIDS[oid];
      if (name) return BY_NAME[name];
      const elemName = BUILTIN_ARRAYS[oid];
      if (elemName) return arrayParser(elemName);
      return extra.get(oid) ?? identity;
    },
  };
}
