import type { IngestionContext } from '../contracts/context.js';
import type { EndpointDescriptor } from '../contracts/endpoint.js';
import type {
  ImportRequest,
  ImportResult,
  ImportSlice,
  ImportSlicesRequest,
  SinkEndpoint,
} from '../contracts/sink-endpoint.js';
import type { RecordSchema } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { type ColumnTypeChange, type SchemaDiff, sqlTypeChange } from '../schema/schema-diff.js';
import { throwIfAborted } from '../util/abort.js';
import { runBounded } from '../util/concurrency.js';
import {
  applyChangeSlices,
  type ChangeApplyConfig,
  changeImport,
  changesUnsupported,
  stagePlan,
} from './change-apply.js';
import type { SqlTable } from './dialect.js';
import { evolveTarget } from './evolve-target.js';
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

/** One import under way. */
interface Job<S, C extends LedgerColumn> {
  req: ImportRequest;
  /** The slices: the request's, or — streamed (`importSlices`) — as they are staged. */
  slices: Slices;
  /** Every slice index of the import, in the order `merge` and `replace` take them. */
  indices: number[];
  ctx: IngestionContext;
  plan: LoadPlan<C>;
  loader: SliceLoader<S>;
  progress: ImportProgress;
}

/** The options every ledger sink takes. @internal */
export interface LedgerSinkConfig {
  schema?: string;
  tables?: Record<string, string>;
  ledgerTable?: string;
  importConcurrency?: number;
  /** How change rows (of a change-capture source) are applied with `merge` and `replace`. */
  changes?: ChangeApplyConfig;
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
  import(req: ImportRequest, ctx: IngestionContext): Promise<ImportResult> {
    const total = req.slices.reduce((n, x) => n + x.rows, 0);
    return this.#import(
      req,
      ctx,
      req.slices,
      req.slices.map((x) => x.index),
      total,
    );
  }

  /**
   * Import slices as they are staged (ADR 0018): `append` and `merge` of a known schema commit each slice as it
   * arrives, on a connection taken for that slice only — no connection waits for the export, which may share the
   * pool (a pool of one serves source, sink and KvStore). `replace` (one transaction across every slice), change rows
   * and a schema still to infer gather the slices first, then import as {@link LedgerSink.import} does.
   */
  async importSlices(req: ImportSlicesRequest, ctx: IngestionContext): Promise<ImportResult> {
    const { slices, sliceIndices, rowsTotal, ...rest } = req;
    const head = headOf(rest);
    const known = req.schema?.fields.length ? req.schema : undefined;
    if (req.disposition === 'replace' || !known || changeImport(known, req.disposition)?.apply) {
      const got: ImportSlice[] = [];
      for await (const x of slices) got.push(x);
      return this.import({ ...head, slices: got }, ctx);
    }
    return this.#import(head, ctx, slices, sliceIndices, rowsTotal ?? 0);
  }

  async #import(
    req: ImportRequest,
    ctx: IngestionContext,
    streamed: Slices,
    indices: number[],
    rowsTotal: number,
  ): Promise<ImportResult> {
    const d = this.dialect;
    const slices = streamed;
    // a streamed append or merge loads its slices after the setup's connection went back to the pool
    let streamedJob: Job<S, C> | undefined;
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
      const staged = req.schema?.fields.length ? req.schema : await inferSchema(req.slices);
      // change rows are applied (merge, replace) to a target of the table's fields (docs/decisions/0015-postgres-cdc.md)
      const change = changeImport(staged, req.disposition);
      if (change?.apply && !d.changes) throw changesUnsupported(d.sinkName, req.unitId);
      const fields = change?.fields ?? staged;
      for (const f of fields?.fields ?? []) d.quote(f.name, 'column name');
      await this.#ensureLedger(s);
      const existing = await d.describe(s, target);
      // Nothing staged, no schema and no target (a stream run whose records were all dead-lettered): nothing to
      // append or merge, and nothing to create the target from.
      if (!existing && !fields?.fields.length && indices.length === 0 && req.disposition !== 'replace')
        return { rowsImported: 0 };
      const progress = new ImportProgress(ctx, rowsTotal);
      // the schema the target must hold: the staged one, or the table's own for change rows (ADR 0015)
      const wanted = change ? fields : req.schema;
      // replace after a change the target cannot take in place: rebuilt beside it and swapped in (ADR 0013)
      if (
        !change?.apply &&
        existing &&
        req.disposition === 'replace' &&
        wanted?.fields.length &&
        needsRebuild(req.schemaDiff)
      ) {
        if (d.swap) return await this.#replaceBySwap(s, req, ctx, target, targetSql, existing, wanted, progress);
        const unfit = await this.#unfit(s, existing, wanted, req.schemaDiff?.typeChanged ?? [], targetSql, ctx);
        if (unfit.length) throw cannotRebuild(d.sinkName, targetSql, unfit);
      }
      let info = existing ?? (await this.#createTarget(s, target, targetSql, fields, req, ctx));
      // a staged schema that differs from the target's evolves it before the first slice (evolve-target.ts)
      if (existing && wanted?.fields.length)
        info = (await evolveTarget(d, s, target, targetSql, existing, wanted, req, ctx)).info;
      const plan = this.#plan(target, targetSql, info, fields, !!wanted?.fields.length);
      if (change?.apply) {
        const loader = await d.loader(s, stagePlan(plan, d.changes!.metaColumns()), req, ctx, progress);
        return await this.#changes(s, { req, slices, indices, ctx, plan, progress, loader });
      }
      const loader = await d.loader(s, plan, req, ctx, progress);
      const job: Job<S, C> = { req, slices, indices, ctx, plan, progress, loader };
      if (req.disposition === 'replace') return await this.#replace(s, job);
      if (Array.isArray(slices)) return await this.#perSlice(s, job);
      streamedJob = job;
    } catch (err) {
      healthy = d.reusableAfter(err);
      throw this.#failure(err, what, details);
    } finally {
      s.release(healthy);
    }
    try {
      return await this.#perSlice(undefined, streamedJob!);
    } catch (err) {
      throw this.#failure(err, what, details);
    }
  }

  #failure(err: unknown, what: string, details: Record<string, unknown>): unknown {
    if (IngestError.is(err)) return err;
    const d = this.dialect;
    return d.importError?.(err, what, details) ?? d.wrap(err, 'sink_failed', `${what} failed`, details);
  }

  /** Delete the ledger rows of `runIds` of a unit (in chunks of 500 run ids). */
  async forgetRuns(req: { unitId: string; runIds: string[] }): Promise<void> {
    const d = this.dialect;
    if (req.runIds.length === 0) return;
    const what = `${d.sinkName}.forgetRuns of ${JSON.stringify(req.unitId)}`;
    const details = { unitId: req.unitId, runs: req.runIds.length };
    const s = await d.open(what, details);
    let healthy = true;
    try {
      this.#schema ??= await d.currentSchema?.(s);
      await this.#ensureLedger(s);
      const ledger = d.qualified(this.#ledger!);
      for (let i = 0; i < req.runIds.length; i += 500) {
        const ids = req.runIds.slice(i, i + 500);
        const list = ids.map((_, j) => d.param(j + 2)).join(', ');
        await s.query(`DELETE FROM ${ledger} WHERE unit_id = ${d.param(1)} AND run_id IN (${list})`, [
          req.unitId,
          ...ids,
        ]);
      }
    } catch (err) {
      healthy = d.reusableAfter(err);
      if (IngestError.is(err)) throw err;
      throw d.wrap(err, 'sink_failed', `${what} failed`, details);
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
    req: ImportRequest,
    ctx: IngestionContext,
  ): Promise<LedgerTableInfo<C>> {
    const d = this.dialect;
    if (!schema?.fields.length) {
      throw new IngestError(
        'config_invalid',
        `Target ${targetSql} does not exist and the staged data has no schema to create it from`,
      );
    }
    const cols = await this.#columnsDdl(s, targetSql, schema, req, ctx);
    await d.createTable(s, target, `CREATE TABLE IF NOT EXISTS ${targetSql} (${cols})${d.tableOptions}`);
    const info = await d.describe(s, target);
    if (!info) throw new IngestError('internal', `Created ${targetSql} but cannot find it in the catalog`);
    return info;
  }

  /**
   * The changed types the target's columns cannot hold: a column the user already altered to the new type (or a
   * wider one) fits, so a resumed run after that remedy loads.
   */
  async #unfit(
    s: S,
    info: LedgerTableInfo<C>,
    schema: RecordSchema,
    changes: ColumnTypeChange[],
    targetSql: string,
    ctx: IngestionContext,
  ): Promise<ColumnTypeChange[]> {
    const d = this.dialect;
    const fold = d.caseInsensitiveColumns ? (n: string) => n.toLowerCase() : (n: string) => n;
    const out: ColumnTypeChange[] = [];
    for (const c of changes) {
      const col = info.columns.find((x) => fold(x.name) === fold(c.name));
      const f = schema.fields.find((x) => x.name === c.name);
      if (!col || !f) continue;
      const want = await d.columnType(s, f, info.primaryKey.includes(col.name), targetSql, ctx);
      const move = sqlTypeChange(d.columnTypeOf(col), want, { mysql: d.typeRules === 'mysql' });
      if (move !== 'same' && move !== 'narrowed') out.push(c);
    }
    return out;
  }

  /** The column list of a target created from the staged schema (with its primary key, but not for append). */
  async #columnsDdl(
    s: S,
    targetSql: string,
    schema: RecordSchema,
    req: ImportRequest,
    ctx: IngestionContext,
  ): Promise<string> {
    const d = this.dialect;
    // append keeps history (a key may repeat): no unique key on a target it creates
    const pk = req.disposition === 'append' ? [] : (req.primaryKey ?? schema.primaryKey ?? []);
    const cols: string[] = [];
    for (const f of schema.fields) {
      const inKey = pk.includes(f.name);
      const type = await d.columnType(s, f, inKey, targetSql, ctx);
      cols.push(`${d.quote(f.name, 'column name')} ${type}${f.nullable && !inKey ? ' NULL' : ' NOT NULL'}`);
    }
    if (pk.length) cols.push(`PRIMARY KEY (${pk.map((k) => d.quote(k, 'primary key column')).join(', ')})`);
    return cols.join(', ');
  }

  /**
   * `replace` after a change the target cannot take in place (a type changed or narrowed, a column dropped): build the
   * new table beside the target from the staged schema, load every slice into it, and swap it in (the old table is
   * dropped). Where DDL is transactional (PostgreSQL) all of it runs in ONE transaction with the ledger rows: readers
   * see the old table until the commit; a crash leaves it as it was. Where it is not (MySQL): {@link #replaceByRename}.
   */
  async #replaceBySwap(
    s: S,
    req: ImportRequest,
    ctx: IngestionContext,
    target: SqlTable,
    targetSql: string,
    info: LedgerTableInfo<C>,
    schema: RecordSchema,
    progress: ImportProgress,
  ): Promise<ImportResult> {
    const d = this.dialect;
    const swap = d.swap!;
    const fresh = { schema: target.schema, name: swap.name(target.name, 'new') };
    const freshSql = d.qualified(fresh);
    const placeholder = this.#plan(target, targetSql, info, undefined, false);
    const job: Job<S, C> = {
      req,
      slices: req.slices,
      indices: req.slices.map((x) => x.index),
      ctx,
      plan: placeholder,
      progress,
      loader: { load: async () => 0 },
    };
    const n = req.slices.length;
    const slices = n ? req.slices.map((x) => x.index) : [-1];
    const at = { slice: -1 };
    const build = async () => {
      await s.query(
        `CREATE TABLE ${freshSql} (${await this.#columnsDdl(s, freshSql, schema, req, ctx)})${d.tableOptions}`,
      );
      const built = await d.describe(s, fresh);
      if (!built) throw new IngestError('internal', `Created ${freshSql} but cannot find it in the catalog`);
      job.loader = await d.loader(s, this.#plan(fresh, freshSql, built, schema, true), req, ctx, progress);
    };
    const load = async () => {
      const counts: number[] = [];
      for (const slice of req.slices) {
        at.slice = slice.index;
        counts.push(await job.loader.load(s, freshSql, slice));
      }
      return counts;
    };
    const rows = swap.lock
      ? await this.#replaceByRename(s, job, slices, at, fresh, build, load)
      : await this.#transaction(s, job, slices, at, async () => {
          await s.query(`DROP TABLE IF EXISTS ${freshSql}`);
          await build();
          const counts = await load();
          for (const sql of swap.statements(target, fresh)) await s.query(sql);
          return counts;
        });
    if (rows === undefined) {
      for (const x of req.slices) progress.add(x.rows, x.index, true);
      return { rowsImported: progress.rows, provenance: { ...this.#provenance(job, 0, n, 0), rebuilt: false } };
    }
    progress.commit(rows, at.slice);
    ctx.logger?.info?.(`${d.sinkName}: replaced ${targetSql} by a table built from the staged schema`, {
      table: targetSql,
    });
    return { rowsImported: rows, provenance: { ...this.#provenance(job, n, 0, rows), rebuilt: true } };
  }

  /**
   * The swap where DDL commits implicitly (MySQL), under the dialect's rebuild lock of the target: drop what a crashed
   * rebuild left (the new and the old table); skip a run whose ledger rows are there (never rebuild from its slices
   * after it was loaded, by another holder or before a crash); create the new table, load every slice into it in one
   * transaction and commit; swap it in with ONE atomic rename and drop the old table; only then write the ledger rows.
   * So the ledger never says "done" while the target is the old table: a crash before the rename leaves the old table
   * (and a new one the rerun drops), a crash after it the new table without ledger rows, which the rerun (replace is
   * idempotent) builds again from the same slices. Returns undefined when the run was loaded before.
   */
  async #replaceByRename(
    s: S,
    job: Job<S, C>,
    slices: number[],
    at: { slice: number },
    fresh: SqlTable,
    build: () => Promise<void>,
    load: () => Promise<number[]>,
  ): Promise<number | undefined> {
    const d = this.dialect;
    const swap = d.swap!;
    const { req, ctx, plan } = job;
    const [rename, ...after] = swap.statements(plan.target, fresh);
    const stale = [fresh, { schema: plan.target.schema, name: swap.name(plan.target.name, 'old') }];
    const release = await swap.lock!(s, plan.target, `${d.sinkName}.import of ${JSON.stringify(req.unitId)}`);
    try {
      for (const t of stale) await s.query(`DROP TABLE IF EXISTS ${d.qualified(t)}`);
      const claim = { runId: ctx.runId, unitId: req.unitId, slices, target: d.format(plan.target) };
      let loaded: boolean;
      await s.query(d.begin);
      try {
        loaded = !(await d.claim(s, this.#ledger!, { ...claim, disposition: req.disposition }));
      } finally {
        await s.query('ROLLBACK'); // a probe: the claim is written after the swap
      }
      if (loaded) return undefined;
      let counts: number[];
      try {
        await build();
        await s.query(d.begin);
        counts = await load();
        await s.query('COMMIT');
      } catch (err) {
        await s.query('ROLLBACK').catch(() => s.poison?.());
        await s.query(`DROP TABLE IF EXISTS ${d.qualified(fresh)}`).catch(() => s.poison?.());
        throw this.#rowError(err, plan, at.slice, ctx.runId);
      }
      // a rename that failed leaves the old table in place: the new one goes (a no-op when it was renamed after all)
      await s.query(rename).catch(async (err) => {
        await s.query(`DROP TABLE IF EXISTS ${d.qualified(fresh)}`).catch(() => s.poison?.());
        throw err;
      });
      for (const sql of after) await s.query(sql);
      return await this.#transaction(s, job, slices, at, async () => counts);
    } finally {
      await release().catch(() => s.poison?.());
    }
  }

  /** The target's columns of the staged fields, in their order; generated columns compute their own values. */
  #plan(
    target: SqlTable,
    targetSql: string,
    info: LedgerTableInfo<C>,
    schema: RecordSchema | undefined,
    staged: boolean,
  ): LoadPlan<C> {
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
    const written = new Set(names.map(fold));
    const key = new Set(info.primaryKey.map(fold));
    const absent = staged
      ? info.columns
          .filter((c) => !c.generated && !c.hasDefault && !written.has(fold(c.name)) && !key.has(fold(c.name)))
          .map((c) => c.name)
      : [];
    return { target, targetSql, columns, info, schema, absent };
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

  /**
   * `append` and `merge`, one transaction per slice. `first`: the caller's connection, with more taken from the pool
   * but never waited for; none (streamed slices): each slice takes a connection once it arrived, and gives it back.
   */
  async #perSlice(first: S | undefined, job: Job<S, C>): Promise<ImportResult> {
    const { req, ctx, plan, loader, progress } = job;
    let handed = 0;
    const d = this.dialect;
    const pk = req.disposition === 'merge' ? this.#mergeKey(req, plan) : [];
    // merge keeps slice order (a later slice's version of a key wins); append slices are independent. Connections
    // beyond the caller's are never waited for: a pool of one, or one busy with the application, cannot deadlock.
    const limit = pk.length ? 1 : Math.min(this.config.importConcurrency ?? 2, d.poolSize());
    const stage = pk.length ? d.stage : undefined;
    const what = `${d.sinkName}.import of ${JSON.stringify(req.unitId)}`;
    let committed = 0;
    const one = async (slice: ImportSlice, s: S) => {
      handed++;
      throwIfAborted(ctx.signal, what);
      if (stage?.drop) await s.query(stage.drop);
      try {
        const rows = await this.#transaction(s, job, [slice.index], { slice: slice.index }, async () => {
          if (!stage) return [await loader.load(s, plan.targetSql, slice)];
          const cols = plan.columns.map((c) => d.quote(c.name));
          await s.query(stage.create(cols.join(', '), plan.targetSql));
          const rows = await loader.load(s, stage.table, slice);
          const rest = plan.columns.filter((c) => !pk.includes(c.name)).map((c) => d.quote(c.name));
          const nulls = plan.absent.filter((c) => !pk.includes(c)).map((c) => d.quote(c));
          await s.query(
            stage.merge(
              plan.targetSql,
              cols,
              pk.map((k) => d.quote(k)),
              rest,
              nulls,
            ),
          );
          return [rows];
        });
        if (rows === undefined) progress.add(slice.rows, slice.index, true);
        else {
          committed++;
          progress.commit(rows, slice.index);
        }
      } finally {
        if (stage?.drop) await s.query(stage.drop).catch(() => s.poison?.());
      }
    };
    const more = () => d.open(what, { runId: ctx.runId });
    if (first) await runBounded(job.slices, limit, one, { first, more, release: (s, healthy) => s.release(healthy) });
    else {
      await runBounded(job.slices, limit, async (slice: ImportSlice) => {
        const s = await more();
        let healthy = true;
        try {
          await one(slice, s);
        } catch (err) {
          healthy = d.reusableAfter(err);
          throw err;
        } finally {
          s.release(healthy);
        }
      });
    }
    const skipped = handed - committed;
    return {
      rowsImported: progress.rows,
      provenance: this.#provenance(job, committed, skipped, progress.committedRows),
    };
  }

  /** Change rows applied in order (docs/decisions/0015-postgres-cdc.md): per slice, or all after emptying for `replace`. */
  async #changes(s: S, job: Job<S, C>): Promise<ImportResult> {
    const { req, ctx, plan, loader, progress } = job;
    const d = this.dialect;
    const deletes = this.config.changes?.deletes ?? 'delete';
    const r = await applyChangeSlices({
      s,
      dialect: d.changes!,
      quote: (n) => d.quote(n),
      target: { targetSql: plan.targetSql, columns: plan.columns, keys: this.#mergeKey(req, plan), deletes },
      slices: job.slices as ImportSlice[],
      loader,
      replace: req.disposition === 'replace' ? { clear: d.clear(plan.targetSql) } : undefined,
      config: this.config.changes ?? {},
      signal: ctx.signal,
      what: `${d.sinkName}.import of ${JSON.stringify(req.unitId)}`,
      transaction: (slices, at, load) => this.#transaction(s, job, slices, at, load),
      onSlice: (slice, rows) =>
        rows === undefined ? progress.add(slice.rows, slice.index, true) : progress.commit(rows, slice.index),
    });
    return {
      rowsImported: progress.rows,
      provenance: this.#provenance(job, r.committed, job.indices.length - r.committed, r.rows),
    };
  }

  /**
   * Every slice after emptying the target, in one transaction with the ledger rows (claimed up front, by the indices
   * the import announced); streamed slices are loaded as they arrive, the commit waits for the last.
   */
  async #replace(s: S, job: Job<S, C>): Promise<ImportResult> {
    const { plan, loader, progress, indices } = job;
    const n = indices.length;
    const at = { slice: -1 };
    const rows = await this.#transaction(s, job, n ? indices : [-1], at, async () => {
      await s.query(this.dialect.clear(plan.targetSql));
      const counts: number[] = [];
      for await (const slice of job.slices) {
        if (slice.index !== indices[counts.length]) throw outOfOrder(slice.index, indices, counts.length);
        at.slice = slice.index;
        counts.push(await loader.load(s, plan.targetSql, slice));
      }
      if (counts.length !== n) throw outOfOrder(undefined, indices, counts.length);
      return counts;
    });
    if (rows === undefined) {
      // claimed before: the slices still arrive (a streamed import must not leave its feed waiting)
      for await (const x of job.slices) progress.add(x.rows, x.index, true);
      return { rowsImported: progress.rows, provenance: this.#provenance(job, 0, n, 0) };
    }
    progress.commit(rows, at.slice);
    return { rowsImported: rows, provenance: this.#provenance(job, n, 0, rows) };
  }

  /**
   * In one transaction: claim `slices` in the ledger — or roll back and return undefined when one was claimed
   * before — then `load` them (their row counts, in order), write the counts in the ledger and commit; returns the
   * rows loaded. A row that does not fit is `row_rejected` naming `at.slice`.
   */
  async #transaction(
    s: S,
    job: Job<S, C>,
    slices: number[],
    at: { slice: number },
    load: () => Promise<number[]>,
  ): Promise<number | undefined> {
    const d = this.dialect;
    const { req, ctx, plan } = job;
    const ledger = this.#ledger!;
    const target = d.format(plan.target);
    await s.query(d.begin);
    let open = true;
    try {
      const claim = { runId: ctx.runId, unitId: req.unitId, slices, target, disposition: req.disposition };
      if (!(await d.claim(s, ledger, claim))) {
        await s.query('ROLLBACK');
        open = false;
        return undefined;
      }
      const counts = await load();
      const [p1, p2, p3, p4] = [1, 2, 3, 4].map((i) => d.param(i));
      for (let i = 0; i < counts.length; i++) {
        await s.query(
          `UPDATE ${d.qualified(ledger)} SET ${d.quote('rows')} = ${p1} WHERE run_id = ${p2} AND unit_id = ${p3} AND slice = ${p4}`,
          [counts[i], ctx.runId, req.unitId, slices[i]],
        );
      }
      await s.query('COMMIT');
      open = false;
      return counts.reduce((a, b) => a + b, 0);
    } catch (err) {
      if (open) await s.query('ROLLBACK').catch(() => s.poison?.());
      throw this.#rowError(err, plan, at.slice, ctx.runId);
    }
  }

  #provenance(job: Job<S, C>, committed: number, skipped: number, rows: number) {
    const d = this.dialect;
    return {
      target: d.format(job.plan.target),
      ledger: d.format(this.#ledger!),
      disposition: job.req.disposition,
      ...job.loader.provenance?.(),
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

/** The slices of an import: a list, or streamed as they are staged. */
type Slices = readonly ImportSlice[] | AsyncIterable<ImportSlice>;

/**
 * A streamed import's request as the loaders and the DDL see it: they read its head (unit, schema, disposition,
 * primary key), never its slices, whole-session reader or handles — which a streamed import does not have.
 */
function headOf(req: Omit<ImportSlicesRequest, 'slices' | 'sliceIndices' | 'rowsTotal'>): ImportRequest {
  const none = (): never => {
    throw new IngestError('internal', 'A streamed import has no whole-session reader');
  };
  return { ...req, reader: { iterBatches: none }, slices: [], handles: [] };
}

function outOfOrder(got: number | undefined, indices: number[], at: number): IngestError {
  return new IngestError(
    'internal',
    got === undefined
      ? `replace was handed ${at} slices, expected ${indices.length}`
      : `replace was handed slice ${got} where slice ${indices[at]} was expected`,
    { details: { got: got ?? null, expected: indices[at] ?? null } },
  );
}

/** Whether a schema change needs the target rebuilt (`replace`): a type that changed or narrowed, a dropped column. */
function needsRebuild(diff: SchemaDiff | undefined): boolean {
  return !!diff && diff.typeChanged.length + diff.narrowed.length + diff.dropped.length > 0;
}

function cannotRebuild(sink: string, targetSql: string, changes: ColumnTypeChange[]): IngestError {
  const list = changes.map((c) => `${JSON.stringify(c.name)} (${c.from} → ${c.to})`).join(', ');
  return new IngestError(
    'schema_conflict',
    `${sink} cannot rebuild ${targetSql} for replace (its DDL is not transactional) after the type of column ${list} changed; ALTER the target column yourself, or drop the target so the next run creates it`,
    { retryable: false, details: { table: targetSql, changes: changes.map((c) => ({ ...c })) } },
  );
}

/**
 * What the SQL sinks (`PostgresSink`, `MySqlSink`) have in common: `import` and `close` answered by the one ledger
 * sink algorithm with the engine's dialect (docs/decisions/0009-one-sql-layer.md). Not constructed directly.
 * @public
 */
export abstract class SqlLedgerSink implements SinkEndpoint {
  abstract readonly descriptor: EndpointDescriptor;
  readonly #core: LedgerSink<any, any>;

  /** @internal */
  protected constructor(core: LedgerSink<any, any>) {
    this.#core = core;
  }

  /**
   * Import the staged slices. Idempotent per `(ctx.runId, unitId, slice)` through the ledger.
   * @throws IngestError `row_rejected` (naming column, row and slice), `config_invalid`, `sink_failed` (retryable for
   * connection errors), `sink_busy` (retryable: a claim, or on MySQL a replace rebuild, held by another importer),
   * `schema_conflict` (a replace rebuild refused), `aborted`
   */
  import(req: ImportRequest, ctx: IngestionContext): Promise<ImportResult> {
    return this.#core.import(req, ctx);
  }

  /**
   * Import slices as they are staged, so the run's import overlaps its export (docs/decisions/0018-overlapped-import.md);
   * the same ledger and transactions as {@link SqlLedgerSink.import}.
   * @throws IngestError as {@link SqlLedgerSink.import}
   */
  importSlices(req: ImportSlicesRequest, ctx: IngestionContext): Promise<ImportResult> {
    return this.#core.importSlices(req, ctx);
  }

  /** End the pool the sink built from `connectionString` (an injected pool is left open). Idempotent. */
  close(): Promise<void> {
    return this.#core.close();
  }

  /** `await using sink = new PostgresSink({ connectionString })`: `close()` at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Delete the ledger rows of these runs of a unit: `pruneState` calls it before it deletes the runs' receipts.
   * @throws IngestError `sink_failed`
   */
  forgetRuns(req: { unitId: string; runIds: string[] }): Promise<void> {
    return this.#core.forgetRuns(req);
  }

  /** @internal */
  protected target(unitId: string, schema?: string): SqlTable {
    return this.#core.targetOf(unitId, schema);
  }
}
