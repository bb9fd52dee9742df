import type { IngestionContext } from '../contracts/context.js';
import type { ImportRequest, ImportSlice } from '../contracts/sink-endpoint.js';
import type { FieldSchema, Json, RecordSchema } from '../contracts/values.js';
import type { IngestError } from '../errors/ingest-error.js';
import type { ChangeApplyDialect } from './change-dialect.js';
import type { SqlDialect, SqlTable } from './dialect.js';
import type { ImportProgress } from './import-progress.js';

/** One checked-out connection as the ledger sink uses it (statements only: the results are the dialect's). @internal */
export interface LedgerSession {
  query(sql: string, params?: readonly unknown[]): Promise<unknown>;
  /** Give the connection back (destroyed when not `healthy`). */
  release(healthy?: boolean): void;
  /** Mark the connection unusable (a failed ROLLBACK). */
  poison?(): void;
}

/** A target column, as far as the shared algorithm reads it. @internal */
export interface LedgerColumn {
  name: string;
  /** Set on a generated column: never written. */
  generated?: string;
  /** Whether the column takes NULL. */
  nullable?: boolean;
  /** The column has a default (or is an identity / auto-increment column): the target's own, never nulled. */
  hasDefault?: boolean;
}

/** A target table as its catalog describes it. @internal */
export interface LedgerTableInfo<C extends LedgerColumn> {
  columns: C[];
  primaryKey: string[];
  /** Other unique keys; when the catalog gives them, a merge key must match the primary key or one of them. */
  uniqueKeys?: string[][];
}

/** What an import writes: the target, the staged fields' columns in order (generated ones left out). @internal */
export interface LoadPlan<C extends LedgerColumn> {
  target: SqlTable;
  targetSql: string;
  columns: C[];
  info: LedgerTableInfo<C>;
  /** The staged (or inferred) schema the plan was built from. */
  schema: RecordSchema | undefined;
  /**
   * Target columns the staged schema does not have (a column dropped at the source), outside the key and without a
   * default of their own: `merge` sets them to NULL, so no row written from now on keeps a stale value. Empty without
   * a staged schema.
   */
  absent: string[];
}

/** Loads one slice into a table inside the caller's transaction; returns the rows loaded. @internal */
export interface SliceLoader<S> {
  load(s: S, table: string, slice: ImportSlice): Promise<number>;
  /** Fields the loader adds to the import's provenance. */
  provenance?(): Record<string, Json>;
}

/** The ledger rows one transaction claims. @internal */
export interface LedgerClaim {
  runId: string;
  unitId: string;
  slices: number[];
  /** The readable name of the target. */
  target: string;
  disposition: string;
}

/** A row that does not fit its target, before it is named with the slice and run. @internal */
export class RowProblem extends Error {
  constructor(
    message: string,
    readonly column: string | undefined,
    readonly row: number | undefined,
    /** The server's code, as details (`{ sqlstate }`, `{ errno }`). */
    readonly code: Record<string, unknown> = {},
    override readonly cause?: unknown,
  ) {
    super(message);
  }
}

/**
 * What the ledger sink ({@link LedgerSink}) needs from an engine beyond {@link SqlDialect}: sessions, the ledger and
 * target DDL, the claim, the merge stage, the bulk loader and where a rejected row is. One instance per sink (it may
 * hold the sink's pool and options).
 * @internal
 */
export interface LedgerSinkDialect<S extends LedgerSession, C extends LedgerColumn> extends SqlDialect {
  /** The public class named in messages (`PostgresSink`). */
  readonly sinkName: string;
  /** The schema of targets when the sink names none; else {@link currentSchema} is asked. */
  readonly defaultSchema?: string;
  /** Explicit targets (`tables`) name their schema (`schema.table`), else they are in the sink's schema. */
  readonly tablesNeedSchema?: boolean;
  /** Column names match case-insensitively. */
  readonly caseInsensitiveColumns?: boolean;
  /** Most bytes of a run id the ledger holds. */
  readonly maxRunIdBytes?: number;
  /** The statement that opens a transaction. */
  readonly begin: string;
  /** Appended to the `CREATE TABLE` of a target. */
  readonly tableOptions: string;
  /** The temporary table `merge` loads a slice into, and the statement that merges it into the target. */
  readonly stage: {
    table: string;
    /** `cols`: the quoted target columns, comma-separated. */
    create(cols: string, targetSql: string): string;
    /**
     * Upsert the stage into the target, the last staged row of a key winning (arguments quoted); `nulls` are set to
     * NULL in rows the upsert updates.
     */
    merge(targetSql: string, cols: string[], keys: string[], rest: string[], nulls: string[]): string;
    /** Run before the slice transaction and after it, when the stage outlives a transaction. */
    drop?: string;
  };
  /** Check out a connection; failures are `sink_failed` naming `what`. */
  open(what: string, details: Record<string, unknown>): Promise<S>;
  /** The connection's own schema (asked once when neither the sink nor {@link defaultSchema} names one). */
  currentSchema?(s: S): Promise<string>;
  /** The pool's size, capping the connections an import uses. */
  poolSize(): number;
  /** `CREATE TABLE IF NOT EXISTS` of the ledger. */
  ledgerDdl(ledgerSql: string): string;
  /** Run a `CREATE TABLE IF NOT EXISTS` of `t` (creating what it needs, safe against concurrent importers). */
  createTable(s: S, t: SqlTable, ddl: string): Promise<void>;
  /** The column type of a staged field in a target the sink creates. */
  columnType(s: S, f: FieldSchema, inKey: boolean, targetSql: string, ctx: IngestionContext): Promise<string>;
  /** The target as the catalog describes it, or undefined when missing. */
  describe(s: S, t: SqlTable): Promise<LedgerTableInfo<C> | undefined>;
  /** Insert the ledger rows in the open transaction: false when one is there already (the slices are skipped). */
  claim(s: S, ledger: SqlTable, claim: LedgerClaim): Promise<boolean>;
  /** The statement that empties the target in `replace`'s transaction. */
  clear(targetSql: string): string;
  /** The bulk loader of one import. */
  loader(
    s: S,
    plan: LoadPlan<C>,
    req: ImportRequest,
    ctx: IngestionContext,
    progress: ImportProgress,
  ): Promise<SliceLoader<S>>;
  /** Where a failed statement went wrong, when the error means a row does not fit. */
  rowProblem(err: unknown): RowProblem | undefined;
  /** A failure with a meaning of its own, else undefined (wrapped as `sink_failed`). */
  importError?(err: unknown, what: string, details: Record<string, unknown>): IngestError | undefined;
  /** How change rows are applied (merge/replace of a change-capture source); absent: refused as `unsupported`. */
  readonly changes?: ChangeApplyDialect<S, C>;
  /** Which widening rules compare this engine's column types (`sqlTypeChange`). */
  readonly typeRules: 'postgres' | 'mysql';
  /** A target column's type as the catalog writes it (`character varying(10)`, `varchar(10)`). */
  columnTypeOf(c: C): string;
  /** The statement giving column `c` of the target the (wider) type `type`, keeping its nullability. */
  alterType(targetSql: string, c: C, type: string): string;
  /** The statement dropping NOT NULL from column `c`. */
  dropNotNull(targetSql: string, c: C): string;
  /** Run one `ALTER TABLE` of `t`; a change another importer made meanwhile (a duplicate column) is no error. */
  alterTable(s: S, t: SqlTable, sql: string): Promise<void>;
  /**
   * How `replace` swaps a table built beside the target into its place after a change the target cannot take in
   * place (docs/decisions/0013-schema-evolution.md). Absent: such a change is `schema_conflict`.
   */
  readonly swap?: {
    /** The name of the table built beside `name` (`new`), or of the old one while it is swapped out (`old`). */
    name(name: string, role: 'new' | 'old'): string;
    /**
     * The statements that swap `fresh` in for `target` and drop the old table. With {@link lock} absent (DDL is
     * transactional, PostgreSQL) they run in the load's transaction, before the ledger rows; else (MySQL) the first
     * one is the single atomic rename, run after the load committed, and the ledger rows are written after them all.
     */
    statements(target: SqlTable, fresh: SqlTable): string[];
    /**
     * Where DDL commits implicitly (MySQL): take the session lock that serializes rebuilds of `target` (held across
     * commits, released with the connection), after refusing what the swap would break (`schema_conflict`); resolves
     * to its release. `sink_busy` (retryable) when another session holds it past the wait.
     */
    lock?(s: S, target: SqlTable, what: string): Promise<() => Promise<void>>;
  };
  /** Whether the import's first connection may go back to the pool after `err`. */
  reusableAfter(err: unknown): boolean;
}
