import type { FieldSchema, LogicalType, RecordSchema } from '../contracts/values.js';
import type { TableName } from './identifiers.js';
import { type PgTypeInfo, pgLogicalType, pgTypeToFieldType } from './type-mapping.js';

/** One column as the catalog describes it. */
export interface ColumnInfo extends PgTypeInfo {
  name: string;
  nullable: boolean;
  /** `format_type()` of the declared type, e.g. `character varying(20)`; safe to splice into SQL. */
  formatted: string;
  /** Declared type (before domain resolution), `format_type()`-quoted. */
  declared: string;
  /** Base type without modifiers (`numeric`, `character varying`), for casting parameters. */
  basetype: string;
  /**
   * The declared type as a target of another database can name it: `format_type()` for built-in types, and
   * schema-qualified (`public.mood`, `app.posint[]`) for user-defined ones (enums, domains, composites).
   */
  native?: string;
  /** Labels of an enum type (or of an array's enum element), in order. */
  enumLabels?: string[] | null;
  /** pg_type.typcategory of an array's element type. */
  elemcategory?: string | null;
  /** `STORED` for a generated column (a sink never writes it: it computes its own value). */
  generated?: string;
  /** An identity column: `always` (`GENERATED ALWAYS AS IDENTITY`) or `by default`. */
  identity?: 'always' | 'by default';
  /** The column has a default or is an identity column (a target's own column: schema evolution leaves it alone). */
  hasDefault?: boolean;
  /** An array column's declared dimensions (pg_attribute.attndims: `integer[][]` → 2); PostgreSQL does not enforce them. */
  dimensions?: number;
}

/** A table or view with its columns, primary key and row estimate. */
export interface TableInfo extends TableName {
  oid: number;
  kind: 'table' | 'view' | 'materialized view' | 'foreign table' | 'partitioned table';
  columns: ColumnInfo[];
  primaryKey: string[];
  /** pg_class.reltuples, or undefined when never analyzed. */
  estimatedRows?: number;
}

interface Queryable {
  query(text: string, values?: unknown[]): Promise<{ rows: any[] }>;
}

const KINDS: Record<string, TableInfo['kind']> = {
  r: 'table',
  v: 'view',
  m: 'materialized view',
  f: 'foreign table',
  p: 'partitioned table',
};

const RELATIONS_SQL = `
SELECT c.oid::int8::text AS oid, n.nspname AS schema, c.relname AS name, c.relkind AS relkind, c.reltuples::float8 AS reltuples
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'v', 'm', 'f', 'p')`;

const COLUMNS_SQL = `
SELECT a.attrelid::int8::text AS relid, a.attname AS name, bt.oid::int AS typid, bt.typname, bt.typcategory,
       bt.typelem::int AS typelem, et.typname AS elemname, NOT a.attnotnull AS nullable,
       format_type(bt.oid, CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END) AS formatted,
       format_type(a.atttypid, a.atttypmod) AS declared, format_type(bt.oid, NULL) AS basetype,
       et.typcategory AS elemcategory, a.attgenerated::text AS generated, a.attidentity::text AS identity,
       a.atthasdef OR a.attidentity <> '' AS hasdefault, a.attndims::int AS ndims,
       CASE WHEN ut.typnamespace = 'pg_catalog'::regnamespace THEN format_type(a.atttypid, a.atttypmod)
            ELSE quote_ident(un.nspname) || '.' || quote_ident(ut.typname)
                 || CASE WHEN ut.oid <> t.oid THEN repeat('[]', greatest(a.attndims, 1)) ELSE '' END
       END AS native,
       (SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder) FROM pg_catalog.pg_enum e
         WHERE e.enumtypid = CASE WHEN bt.typcategory = 'A' THEN bt.typelem ELSE bt.oid END) AS enum_labels
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
JOIN pg_catalog.pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
LEFT JOIN pg_catalog.pg_type et ON et.oid = bt.typelem AND bt.typcategory = 'A'
-- the user-visible type: the declared type, or an array's element type
JOIN pg_catalog.pg_type ut ON ut.oid = CASE WHEN t.typcategory = 'A' AND t.typelem <> 0 THEN t.typelem ELSE t.oid END
JOIN pg_catalog.pg_namespace un ON un.oid = ut.typnamespace
WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum`;

const PK_SQL = `
SELECT i.indrelid::int8::text AS relid, a.attname AS name
FROM pg_catalog.pg_index i
CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = ANY($1::oid[]) AND i.indisprimary
ORDER BY i.indrelid, k.ord`;

async function describe(db: Queryable, rels: any[]): Promise<TableInfo[]> {
  if (!rels.length) return [];
  const oids = rels.map((r) => r.oid);
  const [cols, pks] = await Promise.all([db.query(COLUMNS_SQL, [oids]), db.query(PK_SQL, [oids])]);
  const byRel = new Map<string, TableInfo>();
  const out: TableInfo[] = rels.map((r) => {
    const info: TableInfo = {
      oid: Number(r.oid),
      schema: r.schema,
      name: r.name,
      kind: KINDS[r.relkind] ?? 'table',
      columns: [],
      primaryKey: [],
      estimatedRows: r.reltuples >= 0 ? Math.round(r.reltuples) : undefined,
    };
    byRel.set(r.oid, info);
    return info;
  });
  for (const c of cols.rows) {
    const column: ColumnInfo = {
      name: c.name,
      typid: c.typid,
      typname: c.typname,
      typcategory: c.typcategory,
      typelem: c.typelem,
      elemname: c.elemname,
      nullable: c.nullable,
      formatted: c.formatted,
      declared: c.declared,
      basetype: c.basetype,
      native: c.native,
      enumLabels: c.enum_labels,
      elemcategory: c.elemcategory,
      hasDefault: c.hasdefault === true,
    };
    if (c.ndims > 1) column.dimensions = c.ndims;
    if (c.generated === 's') column.generated = 'STORED';
    if (c.identity === 'a' || c.identity === 'd') column.identity = c.identity === 'a' ? 'always' : 'by default';
    byRel.get(c.relid)?.columns.push(column);
  }
  for (const p of pks.rows) byRel.get(p.relid)?.primaryKey.push(p.name);
  return out;
}

/** One table or view, or undefined when it does not exist. */
export async function describeTable(db: Queryable, t: TableName): Promise<TableInfo | undefined> {
  const rels = await db.query(`${RELATIONS_SQL} AND n.nspname = $1 AND c.relname = $2`, [t.schema, t.name]);
  return (await describe(db, rels.rows))[0];
}

/** Every table and view outside the system schemas (or only in `schemas`). */
export async function describeTables(db: Queryable, schemas?: string[]): Promise<TableInfo[]> {
  const rels = schemas?.length
    ? await db.query(`${RELATIONS_SQL} AND n.nspname = ANY($1::text[]) ORDER BY n.nspname, c.relname`, [schemas])
    : await db.query(
        `${RELATIONS_SQL} AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%' ORDER BY n.nspname, c.relname`,
      );
  return describe(db, rels.rows);
}

/**
 * The {@link FieldSchema} of a column: its FieldType, the details a sink needs (`logical`: precision/scale, time
 * zone, length, array element, enum labels) and the PostgreSQL type itself (`native`).
 */
export function fieldSchema(c: ColumnInfo): FieldSchema {
  const field: FieldSchema = { name: c.name, type: pgTypeToFieldType(c), nullable: c.nullable };
  const formatted = c.formatted ?? '';
  let logical: LogicalType;
  if (c.typcategory === 'A') {
    const elemFormatted = formatted.replace(/(\[\])+$/, '');
    const element = pgTypeToFieldType({ typname: c.elemname ?? '', typcategory: c.elemcategory ?? '' });
    logical = { element };
    // declared `integer[][]`: a hint for targets with fixed nesting (Parquet LIST), not enforced by PostgreSQL
    if (c.dimensions && c.dimensions > 1) logical.dimensions = c.dimensions;
    const details = pgLogicalType(elemFormatted);
    if (Object.keys(details).length) logical.elementLogical = details;
  } else {
    logical = pgLogicalType(formatted);
  }
  if (c.enumLabels?.length) logical.enumLabels = [...c.enumLabels];
  if (Object.keys(logical).length) field.logical = logical;
  const native = c.native ?? c.declared;
  if (native) field.native = { dialect: 'postgres', type: native };
  return field;
}

/** The {@link RecordSchema} of some columns of a table. */
export function recordSchema(columns: ColumnInfo[], primaryKey: string[]): RecordSchema {
  const schema: RecordSchema = { fields: columns.map(fieldSchema) };
  if (primaryKey.length) schema.primaryKey = [...primaryKey];
  return schema;
}
