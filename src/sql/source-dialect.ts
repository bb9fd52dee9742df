/**
 * What a SQL source asks of its engine beyond {@link SqlDialect} (docs/decisions/0005-incremental-boundaries.md): the
 * shared source (`source-base.ts`, `source-plan.ts`, `boundary.ts`) writes every query of the boundary algorithm from
 * these few expressions and sessions; `src/postgres/source.ts` and `src/mysql/source.ts` answer them.
 * @internal
 */
import type { IngestionContext } from '../contracts/context.js';
import type { RecordSchema, Row, Value } from '../contracts/values.js';
import type { SqlDialect, SqlTable } from './dialect.js';

/** A column as the shared code needs it (each engine's catalog column extends it). */
export interface SourceColumn {
  name: string;
}

/** Bound parameters of one statement (`Params` in boundary.ts). */
export interface SqlParams {
  readonly values: unknown[];
  /** A parameter as it is; returns its placeholder. */
  raw(value: unknown): string;
  /** A text value cast to the column's type. */
  add(value: string, c: SourceColumn): string;
}

/** Which copies of each fingerprint a region keeps: those after the `seen` copies, at most `expect` copies in all. */
export interface Dedupe {
  seen: string;
  expect: string | null;
}

/** A table or view as the engine's catalog describes it (`schema` is MySQL's database). */
export interface SourceTable<C extends SourceColumn> extends SqlTable {
  kind: string;
  columns: C[];
  primaryKey: string[];
  /** The catalog's row estimate, when it has one. */
  estimatedRows?: number;
}

/** `lag` checked against its cursor column: SQL for the window start (as text) below `upper`, never below `floor`. */
export type LagStart = (p: SqlParams, upper: string, floor: string | null) => string;

/** A unit resolved against the catalog. */
export interface SourceUnit<C extends SourceColumn> {
  unitId: string;
  info: SourceTable<C>;
  /** The qualified table name. */
  table: string;
  columns: C[];
  cursor: C[];
  key: C[];
  /** Columns of the row fingerprint: exported, cursor and key columns, in table order. */
  fingerprint: C[];
  schema: RecordSchema;
  lag?: LagStart;
  boundaryMaxRows: number;
}

/** One SELECT of a read; `dedupe` when the engine filters fingerprints on the client (the last column is the fingerprint). */
export interface SliceQuery {
  text: string;
  values: unknown[];
  dedupe?: Dedupe;
}

/** The engine's part of a SQL source: sessions, catalog, the few expressions that differ, and streaming rows. */
export interface SourceDialect<C extends SourceColumn, S> extends SqlDialect {
  /** Check out a session (`source_failed` when the server cannot be reached). */
  connect(what: string, ctx: IngestionContext): Promise<S>;
  /** Start one consistent, read-only snapshot with settings that make every text form exact. */
  begin(s: S): Promise<void>;
  /** Commit (`ok`) or roll back, and give the session back (destroyed when not `ok`). */
  finish(s: S, ok: boolean): Promise<void>;
  /** Rows of a SELECT as text (arrays, NULL as null). */
  texts(s: S, sql: string, values: unknown[]): Promise<(string | null)[][]>;
  describe(s: S, t: SqlTable): Promise<SourceTable<C> | undefined>;
  /** Every table and view the source lists (its `schemas` / `databases` filter). */
  describeAll(s: S): Promise<SourceTable<C>[]>;
  recordSchema(columns: C[], primaryKey: string[]): RecordSchema;
  /** `row`: `ROW(a, b) > ROW(x, y)`; `expanded`: `(a > x) OR (a = x AND b > y)` (what MySQL's index ranges use). */
  readonly tupleCompare: 'row' | 'expanded';
  /** Trust the catalog's estimate instead of counting a first run's rows. */
  readonly trustEstimate: boolean;
  /** A parameter (`param` is its placeholder) cast so that comparing it with the column is exact. */
  cast(param: string, c: C): string;
  /** The exact text of a column value (what checkpoints hold). */
  text(ref: string, c: C): string;
  /**
   * The select-list item reading column `c` (`ref` is `t.<quoted name>`), aliased to the column's name, where the
   * engine's wire form of the bare column is not exact (MySQL's FLOAT: 6 digits). Absent or returning `ref`: the column.
   */
  select?(ref: string, c: C): string;
  /** The non-finite values of the column's type (SQL list), which never become the position. */
  sentinels(c: C): string | undefined;
  /** 16 hex digits: the first 8 bytes of the md5 of the row's text. */
  fingerprint(refs: string[], cols: C[]): string;
  /** Check `lag` against the first cursor column. @throws IngestError `config_invalid` */
  lag(unitId: string, c: C | undefined, lag: string | number): LagStart;
  /** n−1 distinct primary-key cut points splitting the rows of `where` into n ranges of about `rows / n` rows. */
  splitPoints(s: S, unit: SourceUnit<C>, where: string, p: SqlParams, n: number, rows: number): Promise<string[]>;
  /**
   * Dedupe in SQL: the columns `names` (quoted) of the rows of `from` (`table t WHERE …`) minus the copies in
   * `d.seen`, at most `d.expect` copies. Absent: the client filters by the fingerprint column ({@link SliceQuery.dedupe}).
   */
  dedupeSql?(names: string[], fp: string, from: string, p: SqlParams, d: Dedupe): string;
  /** Stream the rows of one query in batches of at most `batchRows`. */
  stream(s: S, unit: SourceUnit<C>, q: SliceQuery, ctx: IngestionContext, batchRows: number): AsyncIterable<Row[]>;
  /** End a pool the source built itself. */
  close(): Promise<void>;
}

/** Build row objects from array rows; column names are data (`__proto__` stays an own property). */
export function rowBuilder(names: string[]): (values: unknown[]) => Row {
  if (!names.includes('__proto__')) {
    return (values) => {
      const row: Row = {};
      for (let i = 0; i < names.length; i++) row[names[i]] = values[i] as Value;
      return row;
    };
  }
  return (values) => {
    const row: Row = {};
    for (let i = 0; i < names.length; i++)
      Object.defineProperty(row, names[i], { value: values[i], enumerable: true, writable: true, configurable: true });
    return row;
  };
}
