import type { RecordSchema } from '../contracts/values.js';
import type { TableName } from './identifiers.js';
import { type MySqlColumnType, mySqlFieldSchema, parseColumnType } from './type-mapping.js';

/** One column as information_schema describes it. @internal */
export interface MySqlColumnInfo extends MySqlColumnType {
  name: string;
  nullable: boolean;
  /** `VIRTUAL` / `STORED` for generated columns (the sink never writes them). */
  generated?: 'VIRTUAL' | 'STORED';
  /** The generation expression of a generated column. */
  expression?: string;
  /** `auto_increment` is set on the column. */
  autoIncrement: boolean;
  /** The column has a default of its own or is `auto_increment` (a target's own column: schema evolution leaves it alone). */
  hasDefault?: boolean;
}

/** A table or view with its columns and keys. @internal */
export interface MySqlTableInfo extends TableName {
  kind: 'table' | 'view' | 'system versioned' | 'sequence';
  columns: MySqlColumnInfo[];
  primaryKey: string[];
  /** Other unique keys, each as its columns in order. */
  uniqueKeys: string[][];
  /** information_schema.TABLES.TABLE_ROWS (InnoDB: an estimate). */
  estimatedRows?: number;
  engine?: string;
}

/** Anything that runs a query and returns rows (a MySqlSession). */
interface Queryable {
  query(sql: string, values?: unknown[]): Promise<{ rows: any }>;
}

const KINDS: Record<string, MySqlTableInfo['kind']> = {
  'BASE TABLE': 'table',
  VIEW: 'view',
  'SYSTEM VERSIONED': 'system versioned',
  SEQUENCE: 'sequence',
};

const SYSTEM_DATABASES = ['information_schema', 'mysql', 'performance_schema', 'sys'];

const TABLES_SQL = `SELECT TABLE_SCHEMA AS db, TABLE_NAME AS name, TABLE_TYPE AS kind, TABLE_ROWS AS est, ENGINE AS engine
  FROM information_schema.TABLES`;

const COLUMNS_SQL = `SELECT TABLE_SCHEMA AS db, TABLE_NAME AS tbl, COLUMN_NAME AS name, IS_NULLABLE AS nullable,
    DATA_TYPE AS dataType, COLUMN_TYPE AS columnType, CHARACTER_MAXIMUM_LENGTH AS charLength,
    NUMERIC_PRECISION AS numPrecision, NUMERIC_SCALE AS numScale, DATETIME_PRECISION AS dtPrecision,
    CHARACTER_SET_NAME AS charset, COLLATION_NAME AS collation, EXTRA AS extra, GENERATION_EXPRESSION AS expr,
    COLUMN_DEFAULT AS dflt
  FROM information_schema.COLUMNS`;

const KEYS_SQL = `SELECT TABLE_SCHEMA AS db, TABLE_NAME AS tbl, INDEX_NAME AS idx, COLUMN_NAME AS col
  FROM information_schema.STATISTICS WHERE NON_UNIQUE = 0`;

/** MariaDB's JSON is LONGTEXT plus a `json_valid()` check constraint; MySQL's is a real type. */
const JSON_CHECKS_SQL = `SELECT CONSTRAINT_SCHEMA AS db, TABLE_NAME AS tbl, CHECK_CLAUSE AS clause
  FROM information_schema.CHECK_CONSTRAINTS`;

const text = (v: unknown): string =>
  v === null || v === undefined ? '' : typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString('utf8') : String(v);

async function describe(db: Queryable, where: string, values: unknown[]): Promise<MySqlTableInfo[]> {
  const rels = (await db.query(`${TABLES_SQL} WHERE ${where} ORDER BY TABLE_SCHEMA, TABLE_NAME`, values)).rows as any[];
  if (!rels.length) return [];
  const [cols, keys, checks] = await Promise.all([
    db.query(`${COLUMNS_SQL} WHERE ${where} ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION`, values),
    db.query(
      `${KEYS_SQL} AND ${where} ORDER BY TABLE_SCHEMA, TABLE_NAME, INDEX_NAME = 'PRIMARY' DESC, INDEX_NAME, SEQ_IN_INDEX`,
      values,
    ),
    db
      .query(`${JSON_CHECKS_SQL} WHERE ${where.replace(/TABLE_SCHEMA/g, 'CONSTRAINT_SCHEMA')}`, values)
      .catch(() => ({ rows: [] })),
  ]);
  const byRel = new Map<string, MySqlTableInfo>();
  const key = (db: unknown, t: unknown) => `${text(db)}\u0000${text(t)}`;
  const out = rels.map((r) => {
    const info: MySqlTableInfo = {
      database: text(r.db),
      name: text(r.name),
      kind: KINDS[text(r.kind)] ?? 'table',
      columns: [],
      primaryKey: [],
      uniqueKeys: [],
    };
    if (r.est !== null && r.est !== undefined) info.estimatedRows = Number(r.est);
    if (r.engine) info.engine = text(r.engine);
    byRel.set(key(r.db, r.name), info);
    return info;
  });
  const jsonCols = new Set<string>();
  for (const c of checks.rows as any[]) {
    const m = /^\s*json_valid\(\s*`((?:[^`]|``)+)`\s*\)\s*$/i.exec(text(c.clause));
    if (m) jsonCols.add(`${key(c.db, c.tbl)}\u0000${m[1].replace(/``/g, '`')}`);
  }
  for (const c of cols.rows as any[]) {
    const info = byRel.get(key(c.db, c.tbl));
    if (!info) continue;
    const extra = text(c.extra).toUpperCase();
    const name = text(c.name);
    const type = parseColumnType({
      dataType: text(c.dataType),
      columnType: text(c.columnType),
      charLength: c.charLength === null ? undefined : Number(c.charLength),
      precision: c.numPrecision === null ? undefined : Number(c.numPrecision),
      scale: c.numScale === null ? undefined : Number(c.numScale),
      datetimePrecision: c.dtPrecision === null ? undefined : Number(c.dtPrecision),
      charset: c.charset ? text(c.charset) : undefined,
      collation: c.collation ? text(c.collation) : undefined,
      json: jsonCols.has(`${key(c.db, c.tbl)}\u0000${name}`),
    });
    const col: MySqlColumnInfo = {
      ...type,
      name,
      nullable: text(c.nullable) === 'YES',
      autoIncrement: extra.includes('AUTO_INCREMENT'),
      // MariaDB writes a DEFAULT NULL as the text NULL: no default of its own
      hasDefault: extra.includes('AUTO_INCREMENT') || (c.dflt !== null && text(c.dflt).toUpperCase() !== 'NULL'),
    };
    if (extra.includes('VIRTUAL GENERATED') || extra === 'VIRTUAL') col.generated = 'VIRTUAL';
    else if (extra.includes('STORED GENERATED') || extra === 'PERSISTENT' || extra === 'STORED')
      col.generated = 'STORED';
    if (col.generated && c.expr) col.expression = text(c.expr);
    info.columns.push(col);
  }
  const uniques = new Map<string, string[]>();
  for (const k of keys.rows as any[]) {
    const info = byRel.get(key(k.db, k.tbl));
    if (!info) continue;
    if (text(k.idx) === 'PRIMARY') info.primaryKey.push(text(k.col));
    else {
      const id = `${key(k.db, k.tbl)}\u0000${text(k.idx)}`;
      let list = uniques.get(id);
      if (!list) {
        list = [];
        uniques.set(id, list);
        info.uniqueKeys.push(list);
      }
      list.push(text(k.col));
    }
  }
  return out;
}

/** One table or view, or undefined when it does not exist. @internal */
export async function describeMySqlTable(db: Queryable, t: TableName): Promise<MySqlTableInfo | undefined> {
  return (await describe(db, 'TABLE_SCHEMA = ? AND TABLE_NAME = ?', [t.database, t.name]))[0];
}

/** Every table and view outside the system databases (or only in `databases`). @internal */
export async function describeMySqlTables(db: Queryable, databases?: string[]): Promise<MySqlTableInfo[]> {
  if (databases?.length) return describe(db, 'TABLE_SCHEMA IN (?)', [databases]);
  return describe(db, 'TABLE_SCHEMA NOT IN (?)', [SYSTEM_DATABASES]);
}

/**
 * The {@link RecordSchema} of some columns of a table. With `zeroDatesAsNull`, date and time columns are nullable
 * (a zero date is read as null).
 * @internal
 */
export function mySqlRecordSchema(
  columns: MySqlColumnInfo[],
  primaryKey: string[],
  zeroDatesAsNull: boolean,
): RecordSchema {
  const schema: RecordSchema = { fields: columns.map((c) => mySqlFieldSchema(c, zeroDatesAsNull)) };
  if (primaryKey.length) schema.primaryKey = [...primaryKey];
  return schema;
}
