import type { FieldSchema, LogicalType, RecordSchema } from '../contracts/values.js';

/**
 * How one column's type moved between two schemas of a unit:
 * - `widened`: every old value fits the new type (`varchar(10)` → `text`, `int32` → `int64`, `numeric(10,2)` →
 *   `numeric(12,2)`, `real` → `double precision`, `timestamp(3)` → `timestamp(6)`);
 * - `narrowed`: every new value fits the old type, not the other way round (the reverse of the above);
 * - `typeChanged`: neither (`integer` → `text`, `timestamp` → `timestamptz`, `text` → `integer`).
 * @public
 */
export type TypeChangeKind = 'widened' | 'narrowed' | 'typeChanged';

/** One column whose type changed. @public */
export interface ColumnTypeChange {
  name: string;
  kind: TypeChangeKind;
  /** The column's type before and after, as text (`character varying(10)`, `int64`, `decimal(12,2)`). */
  from: string;
  to: string;
}

/** One column whose nullability changed. @public */
export interface ColumnNullabilityChange {
  name: string;
  /** `true`: the column now allows NULL (it did not before). */
  nullable: boolean;
}

/**
 * The difference between the schema recorded for a unit and the schema of a run (by column name; a rename is a
 * drop plus an add).
 * @public
 */
export interface SchemaDiff {
  /** Columns in the new schema only, as the new schema describes them. */
  added: FieldSchema[];
  /** Names of columns in the old schema only. */
  dropped: string[];
  widened: ColumnTypeChange[];
  narrowed: ColumnTypeChange[];
  typeChanged: ColumnTypeChange[];
  nullabilityChanged: ColumnNullabilityChange[];
  /** The same columns in another order (no action is needed: columns are matched by name). */
  reordered: boolean;
}

/** Whether a diff holds any change at all (a reorder counts). @public */
export function hasChanges(d: SchemaDiff): boolean {
  return (
    d.added.length > 0 ||
    d.dropped.length > 0 ||
    d.widened.length > 0 ||
    d.narrowed.length > 0 ||
    d.typeChanged.length > 0 ||
    d.nullabilityChanged.length > 0 ||
    d.reordered
  );
}

/**
 * The difference from `before` to `after`, column by column (matched by exact name).
 * @example
 * ```ts
 * import { diffSchemas } from '@nucleus/ingestion';
 * const d = diffSchemas(
 *   { fields: [{ name: 'id', type: 'int32', nullable: false }] },
 *   { fields: [{ name: 'id', type: 'int64', nullable: false }, { name: 'region', type: 'string', nullable: true }] },
 * );
 * // d.added[0].name === 'region', d.widened[0] → { name: 'id', kind: 'widened', from: 'int32', to: 'int64' }
 * ```
 * @public
 */
export function diffSchemas(before: RecordSchema, after: RecordSchema): SchemaDiff {
  const old = new Map(before.fields.map((f) => [f.name, f]));
  const now = new Map(after.fields.map((f) => [f.name, f]));
  const d: SchemaDiff = {
    added: after.fields.filter((f) => !old.has(f.name)),
    dropped: before.fields.filter((f) => !now.has(f.name)).map((f) => f.name),
    widened: [],
    narrowed: [],
    typeChanged: [],
    nullabilityChanged: [],
    reordered: false,
  };
  for (const f of after.fields) {
    const o = old.get(f.name);
    if (!o) continue;
    const kind = typeChange(o, f);
    if (kind) d[kind].push({ name: f.name, kind, from: typeText(o), to: typeText(f) });
    if (o.nullable !== f.nullable) d.nullabilityChanged.push({ name: f.name, nullable: f.nullable });
  }
  const common = (s: RecordSchema, other: Map<string, FieldSchema>) =>
    s.fields.filter((f) => other.has(f.name)).map((f) => f.name);
  d.reordered = common(before, now).join('\u0000') !== common(after, old).join('\u0000');
  return d;
}

/** A field's type as text: its native type when it has one, else the logical type with its details. @public */
export function typeText(f: FieldSchema): string {
  if (f.native) return f.native.type;
  const l = f.logical ?? {};
  const parts: string[] = [];
  if (l.precision !== undefined) parts.push(String(l.precision));
  if (l.scale !== undefined) parts.push(String(l.scale));
  if (l.length !== undefined) parts.push(String(l.length));
  let t = `${f.type}${parts.length ? `(${parts.join(',')})` : ''}`;
  if (l.withTimeZone) t += ' with time zone';
  if (l.fixedLength) t += ' fixed';
  if (l.element) t += ` of ${l.element}`;
  return t;
}

/** How a column's type moved from `a` to `b`, or undefined when it did not. */
export function typeChange(a: FieldSchema, b: FieldSchema): TypeChangeKind | undefined {
  const sameNative = (a.native?.type ?? '') === (b.native?.type ?? '');
  if (a.type === b.type && sameLogical(a.logical, b.logical) && sameNative) return undefined;
  // the native types of one dialect are the finest description: compare them when both have one
  if (a.native && b.native && a.native.dialect === b.native.dialect) {
    const k = sqlTypeChange(a.native.type, b.native.type);
    if (k !== 'same') return k;
  }
  if (a.type === b.type) return logicalChange(a.type, a.logical ?? {}, b.logical ?? {});
  return crossChange(a, b);
}

/**
 * Declared array dimensions are left out: PostgreSQL does not enforce them (an `integer[]` column may hold
 * `{{1},{2}}`), and a source that starts to report them (`integer[][]` → 2) has not changed its column.
 */
function sameLogical(a: LogicalType | undefined, b: LogicalType | undefined): boolean {
  return canonical({ ...a, dimensions: undefined }) === canonical({ ...b, dimensions: undefined });
}

function canonical(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  return `{${Object.keys(v)
    .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
    .join(',')}}`;
}

const INF = Number.POSITIVE_INFINITY;

/** Two limits compared: undefined is unbounded. */
function order(a: number | undefined, b: number | undefined): -1 | 0 | 1 {
  const x = a ?? INF;
  const y = b ?? INF;
  return x === y ? 0 : x < y ? 1 : -1;
}

/** Combine per-dimension moves (1: wider, -1: narrower) into one kind. */
function combine(moves: Array<-1 | 0 | 1>): TypeChangeKind | undefined {
  const up = moves.includes(1);
  const down = moves.includes(-1);
  if (up && down) return 'typeChanged';
  return up ? 'widened' : down ? 'narrowed' : undefined;
}

function logicalChange(type: FieldSchema['type'], a: LogicalType, b: LogicalType): TypeChangeKind | undefined {
  if (!!a.withTimeZone !== !!b.withTimeZone) return 'typeChanged';
  if (a.element !== b.element) return 'typeChanged';
  switch (type) {
    case 'string':
    case 'binary': {
      if (!!a.fixedLength !== !!b.fixedLength) return 'typeChanged';
      const enumMove = enumChange(a.enumLabels, b.enumLabels);
      if (enumMove === 'typeChanged') return enumMove;
      return combine([order(a.length, b.length), enumMove === 'widened' ? 1 : enumMove === 'narrowed' ? -1 : 0]);
    }
    case 'decimal':
      return combine([order(a.scale, b.scale), order(intDigits(a), intDigits(b))]);
    case 'timestamp':
    case 'time':
      return combine([order(a.precision ?? 6, b.precision ?? 6)]);
    default:
      return canonical(a) === canonical(b) ? undefined : 'typeChanged';
  }
}

const intDigits = (l: LogicalType) =>
  l.precision === undefined ? undefined : l.precision - (l.scale === undefined ? 0 : l.scale);

/** Enum labels: more labels at the end widen, fewer narrow, others change the type. */
function enumChange(a: string[] | undefined, b: string[] | undefined): TypeChangeKind | undefined {
  if (!a && !b) return undefined;
  if (!a || !b) return 'typeChanged';
  const sa = new Set(a);
  const sb = new Set(b);
  const aInB = a.every((x) => sb.has(x));
  const bInA = b.every((x) => sa.has(x));
  if (aInB && bInA) return undefined;
  return aInB ? 'widened' : bInA ? 'narrowed' : 'typeChanged';
}

/** Moves between logical types: integers into larger integers, decimals and doubles. */
function crossChange(a: FieldSchema, b: FieldSchema): TypeChangeKind {
  const fits = (x: FieldSchema, y: FieldSchema): boolean => {
    const digits = x.type === 'int32' ? 10 : x.type === 'int64' ? 19 : undefined;
    if (digits === undefined) return false;
    if (y.type === 'int64') return x.type === 'int32';
    if (y.type === 'float64') return x.type === 'int32';
    if (y.type === 'decimal') return (intDigits(y.logical ?? {}) ?? INF) >= digits;
    return false;
  };
  return fits(a, b) ? 'widened' : fits(b, a) ? 'narrowed' : 'typeChanged';
}

/** A SQL column type, parsed into what the widening rules compare. */
interface SqlType {
  family: 'int' | 'decimal' | 'float' | 'string' | 'binary' | 'timestamp' | 'timestamptz' | 'time' | 'other';
  /** int: value bits (an unsigned type has one more); float: mantissa bits; string/binary: max length. */
  size?: number;
  precision?: number;
  scale?: number;
  text: string;
}

const INT_BITS: Record<string, number> = {
  tinyint: 7,
  int1: 7,
  smallint: 15,
  int2: 15,
  mediumint: 23,
  integer: 31,
  int: 31,
  int4: 31,
  bigint: 63,
  int8: 63,
  serial: 31,
  bigserial: 63,
  smallserial: 15,
};
const TEXT_SIZE: Record<string, number> = {
  text: INF,
  tinytext: 255,
  mediumtext: 16_777_215,
  longtext: 4_294_967_295,
  'character varying': INF,
  varchar: INF,
  string: INF,
};
const BLOB_SIZE: Record<string, number> = {
  bytea: INF,
  tinyblob: 255,
  blob: 65_535,
  mediumblob: 16_777_215,
  longblob: 4_294_967_295,
  varbinary: INF,
};

/**
 * Parse a PostgreSQL (`format_type`) or MySQL (`COLUMN_TYPE`) column type into family and size. MySQL's `text` is
 * 65,535 bytes; PostgreSQL's is unbounded: pass `mysql` for MySQL types.
 */
export function parseSqlType(text: string, mysql = false): SqlType {
  const t = text.trim().toLowerCase().replace(/\s+/g, ' ');
  const m =
    /^([a-z_ ]+?)\s*(?:\((\d+)(?:\s*,\s*(\d+))?\))?\s*(unsigned)?(?: zerofill)?(?: (with|without) time zone)?$/.exec(t);
  if (!m) return { family: 'other', text: t };
  const [, name = '', n1, n2, unsigned, tz] = m;
  const a = n1 === undefined ? undefined : Number(n1);
  const b = n2 === undefined ? undefined : Number(n2);
  if (name in INT_BITS) return { family: 'int', size: INT_BITS[name]! + (unsigned ? 1 : 0), text: t };
  if (name === 'numeric' || name === 'decimal')
    return {
      family: 'decimal',
      ...(a !== undefined ? { precision: a, scale: b ?? 0 } : mysql ? { precision: 10, scale: 0 } : {}),
      text: t,
    };
  if (name === 'real' || name === 'float4') return { family: 'float', size: 24, text: t };
  if (name === 'float') return { family: 'float', size: a !== undefined && a > 24 ? 53 : mysql ? 24 : 53, text: t };
  if (name === 'double precision' || name === 'double' || name === 'float8')
    return { family: 'float', size: 53, text: t };
  if (name === 'text' && mysql) return { family: 'string', size: 65_535, text: t };
  if (name === 'character varying' || name === 'varchar') return { family: 'string', size: a ?? INF, text: t };
  if (name in TEXT_SIZE) return { family: 'string', size: TEXT_SIZE[name], text: t };
  if (name === 'varbinary') return { family: 'binary', size: a ?? INF, text: t };
  if (name === 'blob' && a !== undefined) return { family: 'binary', size: a, text: t };
  if (name in BLOB_SIZE) return { family: 'binary', size: BLOB_SIZE[name], text: t };
  if (name === 'timestamp' || name === 'datetime' || name === 'timestamptz') {
    const withTz = name === 'timestamptz' || tz === 'with';
    return {
      family: withTz ? 'timestamptz' : 'timestamp',
      precision: a ?? (mysql ? 0 : 6),
      text: t,
    };
  }
  if (name === 'time' && tz !== 'with') return { family: 'time', precision: a ?? (mysql ? 0 : 6), text: t };
  return { family: 'other', text: t };
}

/**
 * How a SQL column type moves from `from` to `to` (both of one engine): `same`, `widened` (lossless: every value of
 * `from` fits `to` and reads back the same), `narrowed` (the reverse), or `typeChanged`. Integers widen into larger
 * integers, into decimals with enough integer digits and (up to 24 bits) into doubles; decimals widen when neither
 * the integer digits nor the scale shrink; floats from single to double; `varchar(n)` into a longer varchar or
 * text; binary likewise; timestamps and times when the fractional digits grow. Everything else is `typeChanged`.
 * @example
 * ```ts
 * import { sqlTypeChange } from '@nucleus/ingestion';
 * sqlTypeChange('character varying(10)', 'text'); // 'widened'
 * sqlTypeChange('bigint', 'integer'); // 'narrowed'
 * ```
 * @public
 */
export function sqlTypeChange(from: string, to: string, opts: { mysql?: boolean } = {}): TypeChangeKind | 'same' {
  const a = parseSqlType(from, opts.mysql);
  const b = parseSqlType(to, opts.mysql);
  if (a.text === b.text) return 'same';
  const k = sqlMove(a, b);
  if (k !== undefined) return k;
  const back = sqlMove(b, a);
  return back === 'widened' ? 'narrowed' : 'typeChanged';
}

/** `widened` when every value of `a` fits `b`, `same` when both hold the same values, else undefined. */
function sqlMove(a: SqlType, b: SqlType): TypeChangeKind | 'same' | undefined {
  const bigger = (x: number | undefined, y: number | undefined) => (x ?? INF) <= (y ?? INF);
  if (a.family === b.family) {
    switch (a.family) {
      case 'int':
      case 'float':
      case 'string':
      case 'binary': {
        if (a.size === b.size) return 'same';
        return bigger(a.size, b.size) ? 'widened' : undefined;
      }
      case 'decimal': {
        const ai = a.precision === undefined ? undefined : a.precision - (a.scale ?? 0);
        const bi = b.precision === undefined ? undefined : b.precision - (b.scale ?? 0);
        if (b.precision === undefined && a.precision !== undefined) return 'widened';
        if (a.precision === undefined) return b.precision === undefined ? 'same' : undefined;
        if (ai === bi && a.scale === b.scale) return 'same';
        return bigger(ai, bi) && (a.scale ?? 0) <= (b.scale ?? 0) ? 'widened' : undefined;
      }
      case 'timestamp':
      case 'timestamptz':
      case 'time':
        if (a.precision === b.precision) return 'same';
        return (a.precision ?? 6) <= (b.precision ?? 6) ? 'widened' : undefined;
      default:
        return undefined;
    }
  }
  if (a.family === 'int' && b.family === 'decimal') {
    const digits = Math.ceil(((a.size ?? 63) + 1) * Math.log10(2));
    const bi = b.precision === undefined ? INF : b.precision - (b.scale ?? 0);
    return bi >= digits ? 'widened' : undefined;
  }
  if (a.family === 'int' && b.family === 'float') return (a.size ?? 63) <= (b.size ?? 53) ? 'widened' : undefined;
  return undefined;
}
