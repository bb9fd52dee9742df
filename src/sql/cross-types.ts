/**
 * Created-target types across SQL engines: for a column of one engine, the type the other engine's sink creates so
 * that every value the source type can hold fits and reads back as the same text (ADR 0014, docs/type-mapping.md).
 * Pure string functions, no driver: the PostgreSQL sink maps a MySQL `COLUMN_TYPE` with
 * {@link postgresTypeForMySql}, the MySQL sink a PostgreSQL field with {@link mySqlDecimalForPostgres} and
 * {@link mySqlTextTypeForPostgres}.
 * @internal
 */

/** MySQL's DECIMAL limits: 65 digits in all, 30 after the point. */
export const MYSQL_DECIMAL_MAX_PRECISION = 65;
export const MYSQL_DECIMAL_MAX_SCALE = 30;

/**
 * The PostgreSQL type a target gets for a MySQL/MariaDB column, from its `COLUMN_TYPE` (`bigint(20) unsigned`,
 * `decimal(12,2)`, `time(6)`, …); `undefined` for a type this table does not know (the caller uses its generic
 * mapping). Unsigned integers get the next wider type (`BIGINT UNSIGNED` → `numeric(20,0)`), `FLOAT` → `real`
 * (MySQL's FLOAT is an IEEE float4), `TIME` → `interval` (MySQL's TIME spans ±838:59:59, PostgreSQL's `time` one
 * day), `JSON` → `json` (the text as written), `BIT(n)` → `bit(n)`.
 */
export function postgresTypeForMySql(columnType: string): string | undefined {
  const m = /^\s*([a-z]+(?: precision)?)\s*(?:\(([^)]*)\))?((?:\s+(?:unsigned|signed|zerofill))*)/i.exec(columnType);
  if (!m) return undefined;
  const base = m[1].toLowerCase();
  const args = (m[2] ?? '').split(',').map((s) => s.trim());
  const n = args[0] !== undefined && /^\d+$/.test(args[0]) ? Number(args[0]) : undefined;
  const unsigned = /\bunsigned\b/i.test(m[3] ?? '');
  switch (base) {
    case 'tinyint':
      return 'smallint';
    case 'smallint':
      return unsigned ? 'integer' : 'smallint';
    case 'mediumint':
      return 'integer';
    case 'int':
    case 'integer':
      return unsigned ? 'bigint' : 'integer';
    case 'bigint':
      return unsigned ? 'numeric(20,0)' : 'bigint';
    case 'decimal':
    case 'numeric':
    case 'fixed': {
      const p = n ?? 10;
      const s = args[1] !== undefined && /^\d+$/.test(args[1]) ? Number(args[1]) : 0;
      return `numeric(${p},${s})`;
    }
    case 'float':
      return 'real';
    case 'double':
    case 'double precision':
    case 'real':
      return 'double precision';
    case 'bit':
      return `bit(${n ?? 1})`;
    case 'year':
      return 'smallint';
    case 'date':
      return 'date';
    case 'datetime':
      return `timestamp(${n ?? 0}) without time zone`;
    case 'timestamp':
      return `timestamp(${n ?? 0}) with time zone`;
    case 'time':
      return 'interval';
    case 'char':
      return n === 0 ? 'text' : `character(${n ?? 1})`;
    case 'varchar':
      return !n ? 'text' : `character varying(${n})`;
    case 'tinytext':
    case 'text':
    case 'mediumtext':
    case 'longtext':
    case 'enum':
    case 'set':
    case 'inet4':
    case 'inet6':
      return 'text';
    case 'json':
      return 'json';
    case 'uuid':
      return 'uuid';
    case 'binary':
    case 'varbinary':
    case 'tinyblob':
    case 'blob':
    case 'mediumblob':
    case 'longblob':
    case 'geometry':
    case 'point':
    case 'linestring':
    case 'polygon':
    case 'multipoint':
    case 'multilinestring':
    case 'multipolygon':
    case 'geometrycollection':
      return 'bytea';
    default:
      return undefined;
  }
}

/**
 * The MySQL `DECIMAL(M,D)` that holds every finite value of PostgreSQL's `numeric(precision, scale)` exactly
 * (a negative scale — PostgreSQL 15 — rounds to tens, hundreds, …: `numeric(5,-2)` → `DECIMAL(7,0)`; a scale
 * above the precision holds only fractions: `numeric(2,5)` → `DECIMAL(5,5)`), or `undefined` when none does
 * (more than 65 digits or 30 after the point) or the numeric is unbounded: the caller stores the exact text.
 */
export function mySqlDecimalForPostgres(precision: number | undefined, scale: number | undefined): string | undefined {
  if (precision === undefined || !Number.isInteger(precision) || precision < 1) return undefined;
  const s = scale ?? 0;
  if (!Number.isInteger(s)) return undefined;
  const fraction = Math.max(s, 0);
  const integer = Math.max(precision - s, 0);
  const m = integer + fraction;
  if (m < 1 || m > MYSQL_DECIMAL_MAX_PRECISION || fraction > MYSQL_DECIMAL_MAX_SCALE) return undefined;
  return `DECIMAL(${m},${fraction})`;
}

/**
 * The MySQL type of a PostgreSQL column stored as its exact text (types MySQL has no lossless equivalent for):
 * `VARCHAR(768)` in a key (InnoDB's 3,072-byte key limit in utf8mb4), else `LONGTEXT`.
 */
export function mySqlTextType(inKey: boolean): string {
  return inKey ? 'VARCHAR(768)' : 'LONGTEXT';
}
