/* The engine's part of applying change rows (docs/decisions/0015-postgres-cdc.md); imports nothing, so the ledger
 * dialect can name it without an import circle. */

/** A session as applying changes uses it (structural: `LedgerSession` fits). @internal */
interface ChangeSession {
  query(sql: string, params?: readonly unknown[]): Promise<unknown>;
}

/** A column as applying changes reads it (structural: `LedgerColumn` fits). @internal */
interface ChangeColumn {
  name: string;
}

/** A change that is applied on its own, between set-wise segments: a truncate, or an update that moved the key. @internal */
export interface ChangeBarrier {
  lsn: bigint;
  seq: number;
  op: string;
}

/** What one segment or barrier statement needs to know. @internal */
export interface ChangeTarget<C extends ChangeColumn> {
  targetSql: string;
  /** The target's columns being written (the staged table fields), in order. */
  columns: C[];
  /** The merge key. */
  keys: string[];
  /** `delete` removes deleted rows; `soft` keeps them with `_deleted_at` set. */
  deletes: 'delete' | 'soft';
}

/**
 * What applying change rows needs from an engine (docs/decisions/0015-postgres-cdc.md). Everything runs inside the
 * slice's ledger transaction, on the stage table the slice was loaded into.
 * @internal
 */
export interface ChangeApplyDialect<S extends ChangeSession, C extends ChangeColumn> {
  /** The change fields as stage columns (typed for the engine's loader), in `CHANGE_FIELDS` order. */
  metaColumns(): C[];
  /** The stage table's name, as the loader writes it. */
  readonly stageTable: string;
  /** Create the stage: the target's columns (every one nullable: a delete carries only its key) + the change fields. */
  createStage(s: S, t: ChangeTarget<C>): Promise<void>;
  /** Remove the stage (when it outlives the transaction). */
  dropStage?(s: S): Promise<void>;
  /** The changes of the stage that must be applied one by one, in order. */
  barriers(s: S): Promise<ChangeBarrier[]>;
  /** Apply the changes strictly between `from` and `to` (by `_lsn`, `_seq`) set-wise: the last change of each key wins. */
  applySegment(s: S, t: ChangeTarget<C>, from: ChangeBarrier | undefined, to: ChangeBarrier | undefined): Promise<void>;
  /** Apply one barrier change. */
  applyBarrier(s: S, t: ChangeTarget<C>, b: ChangeBarrier, truncate: 'apply' | 'ignore'): Promise<void>;
  /** Soft-delete columns the target needs (`_deleted_at`, `_op`, `_lsn`), created when missing. */
  ensureSoftDeleteColumns?(s: S, targetSql: string): Promise<void>;
}

/** How a sink applies change rows. @internal */
export interface ChangeApplyConfig {
  /** `delete` (default) deletes target rows; `soft` keeps them with `_deleted_at`, `_op`, `_lsn`. */
  deletes?: 'delete' | 'soft';
  /** `apply` (default): a truncate at the source empties the target; `ignore` keeps the target's rows. */
  truncate?: 'apply' | 'ignore';
}
