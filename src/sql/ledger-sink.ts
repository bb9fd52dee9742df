import type { IngestionContext } from '../contracts/context.js';
import type { ImportRequest, ImportResult, ImportSlice } from '../contracts/sink-endpoint.js';
import type { RecordSchema } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { throwIfAborted } from '../util/abort.js';
import { runBounded } from '../util/concurrency.js';
import type { SqlTable } from './dialect.js';
import { ImportProgress } from './import-progress.js';
import { inferSchema } from './infer-schema.js';
import {
  type LedgerColumn,
  type LedgerSession,
  type LedgerSinkDialect,
  type LedgerTableInfo,
  type LoadPlan,
  RowProblem,
  type SliceLoader,
} from './ledger-dialect.js';

const DEFAULT_LEDGER = '_nucleus_ingest_ledger';
const DISPOSITIONS = ['append', 'replace', 'merge'];

/** The options every ledger sink takes. @internal */
export interface LedgerSinkConfig {
  schema?: string;
  tables?: Record<string, string>;
  ledgerTable?: string;
  importConcurrency?: number;
}

/**
 * The exactly-once SQL sink, one algorithm for every engine (docs/decisions/0009-one-sql-layer.md); the engine's part
 * is its {@link LedgerSinkDialect}. Creates the ledger and the missing target (from the staged or inferred schema),
 * then: `append` and `merge` commit per slice — in ONE transaction it claims `(run_id, unit_id, slice)` in the
 * ledger (a slice already there is skipped), loads the slice (for `merge` into a temporary stage table, then upserts
 * it keeping the last row of a key), writes the slice's row count in the ledger and commits; `append` slices load in
 * parallel, each on its own connection. `replace` empties the target and loads every slice in one transaction.
 * @internal
 */
export class LedgerSink<S extends LedgerSession, C extends LedgerColumn> {
  #schema: string | undefined;
  #ledger: SqlTable | undefined;
  #ledgerReady: Promise<void> | undefined;
  #closed = false;

  constructor(
    readonly dialect: LedgerSinkDialect<S, C>,
    readonly config: LedgerSinkConfig,
    /** Ends the pool the sink owns (none for an injected pool). */
    readonly end?: () => Promise<void>,
  ) {
    const d = dialect;
    this.#schema = config.schema ?? d.defaultSchema;
    if (this.#schema !== undefined) d.quote(this.#schema, 'sink schema name');
    for (const t of Object.values(config.tables ?? {})) d.parse(t, d.tablesNeedSchema ? undefined : 'x');
    if (config.ledgerTable) d.parse(config.ledgerTable, this.#schema ?? 'x');
  }

  /** The target of a unit: `tables[unitId]`, else the sink schema + the unit's table name. @throws IngestError `config_invalid` */
  targetOf(unitId: string, schema = this.#schema ?? ''): SqlTable {
    const { tables } = this.config;
    const explicit = tables?.[unitId];
    if (explicit !== undefined && Object.hasOwn(tables!, unitId))
      return this.dialect.parse(explicit, this.dialect.tablesNeedSchema ? undefined : schema);
    return { schema, name: this.dialect.parse(unitId, schema).name };
  }

  /** Import the staged slices, idempotent per `(ctx.runId, unitId, slice)` through the ledger. */
  async import(req: ImportRequest, ctx: IngestionContext): Promise<ImportResult> {
    const d = this.dialect;
    if (this.#closed) throw new IngestError('config_invalid', `${d.sinkName} already closed`);
    let what = `${d.sinkName}.import of ${JSON.stringify(req.unitId)} (run ${ctx.runId})`;
    if (!DISPOSITIONS.includes(req.disposition)) {
      throw new IngestError(
        'config_invalid',
        `${what}: unknown disposition ${JSON.stringify(req.disposition)} (append, replace or merge)`,
      );
    }
    if (d.maxRunIdBytes !== undefined && Buffer.byteLength(ctx.runId, 'utf8') > d.maxRunIdBytes) {
      throw new IngestError(
        'config_invalid',
        `${d.sinkName}: run id ${JSON.stringify(ctx.runId.slice(0, 40))}… is longer than ${d.maxRunIdBytes} bytes`,
      );
    }
    throwIfAborted(ctx.signal, what);
    const details = { unitId: req.unitId, endpointId: ctx.endpointId, sinkId: ctx.sinkId, runId: ctx.runId };
    const s = await d.open(what, details);
    let healthy = true;
    try {
      this.#schema ??= await d.currentSchema?.(s);
      const target = this.targetOf(req.unitId);
      const targetSql = d.qualified(target);
      what = `${d.sinkName}.import of ${JSON.stringify(req.unitId)} into ${targetSql} (run ${ctx.runId})`;
      const fields = req.schema?.fields.length ? req.schema : await inferSchema(req.slices);
      for (const f of fields?.fields ?? []) d.quote(f.name, 'column name');
      await this.#ensureLedger(s);
      const info =
        (await d.describe(s, target)) ?? (await this.#createTarget(s, target, targetSql, fields, req.primaryKey, ctx));
      const plan = this.#plan(target, targetSql, info, fields);
      const progress = new ImportProgress(
        ctx,
        req.slices.reduce((n, x) => n + x.rows, 0),
      );
      const loader = await d.loader(s, plan, req, ctx, progress);
      if (req.disposition === 'replace') return await this.#replace(s, req, ctx, plan, loader, progress);
      return await this.#perSlice(s, req, ctx, plan, loader, progress);
    } catch (err) {
      healthy = d.reusableAfter(err);
      if (IngestError.is(err)) throw err;
      throw d.importError?.(err, what, details) ?? d.wrap(err, 'sink_failed', `${what} failed`, details);
    } finally {
      s.release(healthy);
    }
  }

  /** End the pool the sink built (an injected pool is left open). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.end?.();
  }

  async #ensureLedger(s: S): Promise<void> {
    const d = this.dialect;
    const ledger = (this.#ledger ??= d.parse(this.config.ledgerTable ?? DEFAULT_LEDGER, this.#schema));
    this.#ledgerReady ??= d.createTable(s, ledger, d.ledgerDdl(d.qualified(ledger)));
    try {
      await this.#ledgerReady;
    } catch (err) {
      this.#ledgerReady = undefined;
      throw err;
    }
  }

  async #createTarget(
    s: S,
    target: SqlTable,
    targetSql: string,
    schema: RecordSchema | undefined,
    primaryKey: string[] | undefined,
    ctx: IngestionContext,
  ): Promise<LedgerTableInfo<C>> {
    const d = this.dialect;
    if (!schema?.fields.length) {
      throw new IngestError(
        'config_invalid',
        `Target ${targetSql} does not exist and the staged data has no schema to create it from`,
      );
    }
    const pk = primaryKey ?? schema.primaryKey ?? [];
    const cols: string[] = [];
    for (const f of schema.fields) {
      const inKey = pk.includes(f.name);
      const type = await d.columnType(s, f, inKey, targetSql, ctx);
      cols.push(`${d.quote(f.name, 'column name')} ${type}${f.nullable && !inKey ? ' NULL' : ' NOT NULL'}`);
    }
    if (pk.length) cols.push(`PRIMARY KEY (${pk.map((k) => d.quote(k, 'primary key column')).join(', ')})`);
    await d.createTable(s, target, `CREATE TABLE IF NOT EXISTS ${targetSql} (${cols.join(', ')})${d.tableOptions}`);
    const info = await d.describe(s, target);
    if (!info) throw new IngestError('internal', `Created ${targetSql} but cannot find it in the catalog`);
    return info;
  }

  /** The target's columns of the staged fields, in their order; generated columns compute their own values. */
  #plan(target: SqlTable, targetSql: string, info: LedgerTableInfo<C>, schema: RecordSchema | undefined): LoadPlan<C> {
    const fold = this.dialect.caseInsensitiveColumns ? (n: string) => n.toLowerCase() : (n: string) => n;
    const byName = new Map(info.columns.map((c) => [fold(c.name), c]));
    const names = schema?.fields.length ? schema.fields.map((f) => f.name) : info.columns.map((c) => c.name);
    const missing = names.filter((n) => !byName.has(fold(n)));
    if (missing.length) {
      throw new IngestError(
        'config_invalid',
        `Target ${targetSql} has no column ${missing.map((m) => JSON.stringify(m)).join(', ')} for the staged field${missing.length > 1 ? 's' : ''}`,
        { details: { table: targetSql, missing } },
      );
    }
    // the staged field's name is used to read rows
    const columns = names.map((n) => ({ ...byName.get(fold(n))!, name: n })).filter((c) => !c.generated);
    return { target, targetSql, columns, info, schema };
  }

  #mergeKey(req: ImportRequest, plan: LoadPlan<C>): string[] {
    const { info, targetSql } = plan;
    const pk = req.primaryKey ?? req.schema?.primaryKey ?? info.primaryKey;
    if (!pk?.length) {
      throw new IngestError(
        'config_invalid',
        `merge into ${targetSql} needs a primary key (none given, none staged, none on the table)`,
      );
    }
    for (const k of pk) this.dialect.quote(k, 'primary key column');
    const same = (a: string[]) =>
      a.length === pk.length && [...a].sort().join('\u0000') === [...pk].sort().join('\u0000');
    if (info.uniqueKeys && !same(info.primaryKey) && !info.uniqueKeys.some(same)) {
      throw new IngestError(
        'config_invalid',
        `merge into ${targetSql} on ${JSON.stringify(pk)} needs a primary key or unique index on exactly those columns`,
        { details: { table: targetSql, primaryKey: pk } },
      );
    }
    return pk;
  }

  async #perSlice(
    first: S,
    req: ImportRequest,
    ctx: IngestionContext,
    plan: LoadPlan<C>,
    loader: SliceLoader<S>,
    progress: ImportProgress,
  ): Promise<ImportResult> {
    const d = this.dialect;
    const pk = req.disposition === 'merge' ? this.#mergeKey(req, plan) : [];
    // merge keeps slice order (a later slice's version of a key wins); append slices are independent. Connections
    // beyond the caller's are never waited for: a pool of one, or one busy with the application, cannot deadlock.
    const limit = pk.length ? 1 : Math.min(this.config.importConcurrency ?? 2, d.poolSize());
    let committed = 0;
    let skipped = 0;
    const what = `${d.sinkName}.import of ${JSON.stringify(req.unitId)}`;
    await runBounded(
      req.slices,
      limit,
      async (slice, s) => {
        if ((await this.#slice(s, req, ctx, plan, pk, slice, loader, progress)) === undefined) skipped++;
        else committed++;
      },
      { first, more: () => d.open(what, { runId: ctx.runId }), release: (s, healthy) => s.release(healthy) },
    );
    return {
      rowsImported: progress.rows,
      provenance: this.#provenance(plan, req, committed, skipped, progress.committedRows, loader),
    };
  }

  /** One slice in one transaction: claim it in the ledger (or skip it: returns undefined), load it, commit. */
  async #slice(
    s: S,
    req: ImportRequest,
    ctx: IngestionContext,
    plan: LoadPlan<C>,
    pk: string[],
    slice: ImportSlice,
    loader: SliceLoader<S>,
    progress: ImportProgress,
  ): Promise<number | undefined> {
    const d = this.dialect;
    throwIfAborted(ctx.signal, `${d.sinkName}.import of ${JSON.stringify(req.unitId)}`);
    const stage = pk.length ? d.stage : undefined;
    if (stage?.drop) await s.query(stage.drop);
    await s.query(d.begin);
    let open = true;
    try {
      if (!(await this.#claim(s, req, ctx, plan, [slice.index]))) {
        await s.query('ROLLBACK');
        open = false;
        progress.add(slice.rows, slice.index, true);
        return undefined;
      }
      let rows: number;
      if (stage) {
        const cols = plan.columns.map((c) => d.quote(c.name));
        await s.query(stage.create(cols.join(', '), plan.targetSql));
        rows = await loader.load(s, stage.table, slice);
        const rest = plan.columns.filter((c) => !pk.includes(c.name)).map((c) => d.quote(c.name));
        await s.query(
          stage.merge(
            plan.targetSql,
            cols,
            pk.map((k) => d.quote(k)),
            rest,
          ),
        );
      } else rows = await loader.load(s, plan.targetSql, slice);
      await this.#setRows(s, req, ctx, slice.index, rows);
      await s.query('COMMIT');
      open = false;
      progress.commit(rows, slice.index);
      return rows;
    } catch (err) {
      if (open) await s.query('ROLLBACK').catch(() => s.poison?.());
      throw this.#rowError(err, plan, slice.index, ctx.runId);
    } finally {
      if (stage?.drop) await s.query(stage.drop).catch(() => s.poison?.());
    }
  }

  /** Every slice after emptying the target, in one transaction with the ledger rows. */
  async #replace(
    s: S,
    req: ImportRequest,
    ctx: IngestionContext,
    plan: LoadPlan<C>,
    loader: SliceLoader<S>,
    progress: ImportProgress,
  ): Promise<ImportResult> {
    const d = this.dialect;
    await s.query(d.begin);
    let open = true;
    let current = -1;
    try {
      if (!(await this.#claim(s, req, ctx, plan, req.slices.length ? req.slices.map((x) => x.index) : [-1]))) {
        await s.query('ROLLBACK');
        open = false;
        for (const x of req.slices) progress.add(x.rows, x.index, true);
        return {
          rowsImported: progress.rows,
          provenance: this.#provenance(plan, req, 0, req.slices.length, 0, loader),
        };
      }
      await s.query(d.clear(plan.targetSql));
      let imported = 0;
      for (const slice of req.slices) {
        current = slice.index;
        const rows = await loader.load(s, plan.targetSql, slice);
        await this.#setRows(s, req, ctx, slice.index, rows);
        imported += rows;
      }
      await s.query('COMMIT');
      open = false;
      progress.commit(imported, current);
      return {
        rowsImported: imported,
        provenance: this.#provenance(plan, req, req.slices.length, 0, imported, loader),
      };
    } catch (err) {
      if (open) await s.query('ROLLBACK').catch(() => s.poison?.());
      throw this.#rowError(err, plan, current, ctx.runId);
    }
  }

  #claim(s: S, req: ImportRequest, ctx: IngestionContext, plan: LoadPlan<C>, slices: number[]): Promise<boolean> {
    const { runId } = ctx;
    const { unitId, disposition } = req;
    return this.dialect.claim(s, this.#ledger!, {
      runId,
      unitId,
      slices,
      target: this.dialect.format(plan.target),
      disposition,
    });
  }

  async #setRows(s: S, req: ImportRequest, ctx: IngestionContext, slice: number, rows: number): Promise<void> {
    const d = this.dialect;
    await s.query(
      `UPDATE ${d.qualified(this.#ledger!)} SET ${d.quote('rows')} = ${d.param(1)} WHERE run_id = ${d.param(2)} AND unit_id = ${d.param(3)} AND slice = ${d.param(4)}`,
      [rows, ctx.runId, req.unitId, slice],
    );
  }

  #provenance(
    plan: LoadPlan<C>,
    req: ImportRequest,
    committed: number,
    skipped: number,
    rows: number,
    loader: SliceLoader<S>,
  ) {
    return {
      target: this.dialect.format(plan.target),
      ledger: this.dialect.format(this.#ledger!),
      disposition: req.disposition,
      ...loader.provenance?.(),
      slicesCommitted: committed,
      slicesSkipped: skipped,
      rowsCommitted: rows,
    };
  }

  /** A failure inside a slice: a row that does not fit becomes `row_rejected` naming the column, row and slice. */
  #rowError(err: unknown, plan: LoadPlan<C>, slice: number, runId: string): unknown {
    if (IngestError.is(err)) return err;
    const p = err instanceof RowProblem ? err : this.dialect.rowProblem(err);
    if (!p) return err;
    const { column, row } = p;
    return new IngestError(
      'row_rejected',
      `Slice ${slice} of run ${runId}: a row does not fit ${plan.targetSql}${column ? ` column ${JSON.stringify(column)}` : ''}${row ? ` (row ${row} of the slice)` : ''}: ${p.message}`,
      { cause: p.cause ?? p, details: { table: plan.targetSql, column, slice, row, ...p.code } },
    );
  }
}
