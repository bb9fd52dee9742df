import type { ImportSlice } from '../contracts/sink-endpoint.js';
import type { RecordSchema } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { throwIfAborted } from '../util/abort.js';
import type { ChangeApplyConfig, ChangeApplyDialect, ChangeBarrier, ChangeTarget } from './change-dialect.js';
import { CHANGE_FIELDS, isChangeSchema, tableSchemaOf } from './change-rows.js';
import type { LedgerColumn, LedgerSession, LoadPlan, SliceLoader } from './ledger-dialect.js';

export type { ChangeApplyConfig, ChangeApplyDialect, ChangeBarrier, ChangeTarget } from './change-dialect.js';

/**
 * How an import of `schema` treats change rows, or undefined when they are not change rows (a schema with every change
 * field). `merge` and `replace` apply them (`apply`, to a target of the table's fields); `append` keeps them as a change
 * log, the change fields as columns, every column nullable (a delete carries only its key, a truncate nothing) and no
 * primary key (a key changes many times).
 * @internal
 */
export function changeImport(
  schema: RecordSchema | undefined,
  disposition: string,
): { fields: RecordSchema; apply: boolean } | undefined {
  if (!isChangeSchema(schema)) return undefined;
  if (disposition === 'append') {
    // a log holds many changes of a key: no primary key
    const fields = schema.fields.map((f) => ({ ...f, nullable: true }));
    return { fields: { fields }, apply: false };
  }
  return { fields: tableSchemaOf(schema), apply: true };
}

/** The loader plan of a change import: the target's columns, then the change fields (the staged order). @internal */
export function stagePlan<C extends LedgerColumn>(plan: LoadPlan<C>, meta: C[]): LoadPlan<C> {
  return {
    ...plan,
    columns: [...plan.columns, ...meta],
    info: { ...plan.info, columns: [...plan.info.columns, ...meta] },
  };
}

/**
 * Apply change slices to the target, in order, each slice in its own ledger transaction (or, for `replace`, every
 * slice after emptying the target in one): load the slice into the stage, then apply it — set-wise per key between
 * barriers (truncates and key-moving updates, applied one by one), so the result is what applying every change in
 * order gives. Unchanged TOASTed values keep the target's (or an earlier change's) value, never NULL.
 * @internal
 */
export async function applyChangeSlices<S extends LedgerSession, C extends LedgerColumn>(opts: {
  s: S;
  dialect: ChangeApplyDialect<S, C>;
  quote: (name: string) => string;
  target: ChangeTarget<C>;
  slices: ImportSlice[];
  loader: SliceLoader<S>;
  replace?: { clear: string };
  config: ChangeApplyConfig;
  signal?: AbortSignal;
  what: string;
  /** The ledger transaction: claims `slices`, runs `load`, records the counts; undefined when already claimed. */
  transaction: (slices: number[], at: { slice: number }, load: () => Promise<number[]>) => Promise<number | undefined>;
  onSlice: (slice: ImportSlice, rows: number | undefined) => void;
}): Promise<{ committed: number; rows: number }> {
  const { s, dialect: d, target, loader } = opts;
  if (target.deletes === 'soft') await d.ensureSoftDeleteColumns?.(s, target.targetSql);
  const applyOne = async (slice: ImportSlice) => {
    await d.createStage(s, target);
    const rows = await loader.load(s, d.stageTable, slice);
    const barriers = await d.barriers(s);
    let from: ChangeBarrier | undefined;
    for (const b of barriers) {
      await d.applySegment(s, target, from, b);
      await d.applyBarrier(s, target, b, opts.config.truncate ?? 'apply');
      from = b;
    }
    await d.applySegment(s, target, from, undefined);
    await d.dropStage?.(s);
    return rows;
  };
  let committed = 0;
  let total = 0;
  if (opts.replace) {
    const at = { slice: -1 };
    const indexes = opts.slices.length ? opts.slices.map((x) => x.index) : [-1];
    const rows = await opts.transaction(indexes, at, async () => {
      await s.query(opts.replace!.clear);
      const counts: number[] = [];
      for (const slice of opts.slices) {
        throwIfAborted(opts.signal, opts.what);
        at.slice = slice.index;
        counts.push(await applyOne(slice));
      }
      return counts.length ? counts : [0];
    });
    for (const slice of opts.slices) opts.onSlice(slice, rows === undefined ? undefined : slice.rows);
    return { committed: rows === undefined ? 0 : opts.slices.length, rows: rows ?? 0 };
  }
  for (const slice of opts.slices) {
    throwIfAborted(opts.signal, opts.what);
    const rows = await opts.transaction([slice.index], { slice: slice.index }, async () => [await applyOne(slice)]);
    opts.onSlice(slice, rows);
    if (rows !== undefined) {
      committed++;
      total += rows;
    }
  }
  return { committed, rows: total };
}

/** Refuse change rows a sink cannot apply. @internal */
export function changesUnsupported(sinkName: string, unitId: string): IngestError {
  return new IngestError(
    'unsupported',
    `${sinkName} cannot apply change rows (unit ${JSON.stringify(unitId)}) with merge or replace yet; use disposition 'append' to keep them as a change log`,
    { details: { unitId, changeFields: [...CHANGE_FIELDS] } },
  );
}
