/**
 * The neutral layer the SQL connectors share (docs/decisions/0009-one-sql-layer.md), on the model of kysely's
 * `Dialect` / `DialectAdapter` split: what every SQL engine must answer is declared here once, without a dependency on
 * a driver; `src/postgres/dialect.ts` and `src/mysql/dialect.ts` answer it for their engine. Each shared algorithm
 * (the ADR-0005 boundary, the ledger sink, the SQL KvStore) declares the few further things it needs in its own
 * interface extending {@link SqlDialect}, so no file of `src/sql` imports from a connector folder.
 * @internal
 */

import type { IngestErrorCode } from '../errors/codes.js';
import type { IngestError } from '../errors/ingest-error.js';

/**
 * A table named in an engine-neutral way: `schema` is PostgreSQL's schema, MySQL's database (the same level of
 * naming in both: `schema.table`).
 */
export interface SqlTable {
  schema: string;
  name: string;
}

/** What a statement returned: the rows of a SELECT (objects keyed by column), and the rows it touched. */
export interface SqlResult<R = Record<string, unknown>> {
  rows: R[];
  rowCount: number;
}

/** One checked-out connection, with the library's session settings applied. */
export interface SqlSession {
  /** Run one statement; `params` are bound (placeholders written with {@link SqlDialect.param}). */
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<SqlResult<R>>;
  /** Give the connection back (destroyed when not `healthy`). */
  release(healthy?: boolean): void;
}

/** What every SQL engine answers: quoting, placeholders, names, sessions and what its errors mean. */
export interface SqlDialect {
  /** `postgres` or `mysql`: the `native.dialect` of fields this engine reads. */
  readonly id: 'postgres' | 'mysql';
  /** The engine's name in messages (`PostgreSQL`, `MySQL`). */
  readonly title: string;
  /** Quote one identifier; refuses names the engine cannot hold (`config_invalid`, naming `what`). */
  quote(name: string, what?: string): string;
  /** `"schema"."table"` / `` `db`.`table` ``. */
  qualified(t: SqlTable): string;
  /** The readable `schema.table` form (for messages, ledger rows and checkpoints). */
  format(t: SqlTable): string;
  /** Parse `table` or `schema.table` (quoted parts allowed) with `defaultSchema` for the first form. */
  parse(ref: string, defaultSchema?: string): SqlTable;
  /** The placeholder of the `i`-th parameter (1-based): `$1` / `?`. */
  param(i: number): string;
  /** Whether the error means the connection or server failed, or a transient conflict (worth a retry). */
  isTransient(err: unknown): boolean;
  /** Whether the error means "this row does not fit the target" (bad value, too long, NOT NULL, …). */
  isRowError(err: unknown): boolean;
  /** Whether the error is a unique-key violation. */
  isUniqueViolation(err: unknown): boolean;
  /** Wrap a driver error as an IngestError with `code` (retryable when transient; the server's code kept). */
  wrap(err: unknown, code: IngestErrorCode, message: string, details?: Record<string, unknown>): IngestError;
}
