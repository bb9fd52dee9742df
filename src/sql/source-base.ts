/**
 * The skeleton every SQL source shares: catalog metadata, preview, plan and read over one consistent snapshot, with
 * the boundary algorithm of docs/decisions/0005-incremental-boundaries.md. An engine answers {@link SourceDialect}.
 * @internal
 */
import type { IngestionContext } from '../contracts/context.js';
import type { EndpointDescriptor, UnitMetadata } from '../contracts/endpoint.js';
import type { ExportPlan, ReadRequest, SliceSpec, SourceBatch, SourceEndpoint } from '../contracts/source-endpoint.js';
import type { RecordSchema, Row } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { throwIfAborted } from '../util/abort.js';
import { Params, readParts, sliceQueries, toCheckpoint } from './boundary.js';
import type { SqlCheckpoint, SqlUnitConfig } from './source-config.js';
import type { SliceQuery, SourceColumn, SourceDialect, SourceUnit } from './source-dialect.js';
import { planSlices, reach, resumeFrom, type Scope } from './source-plan.js';

const DEFAULT_BATCH = 10_000;
const DEFAULT_BOUNDARY_ROWS = 100_000;

/** What a SQL source reads of its config. */
export interface SqlSourceSettings {
  units?: Record<string, SqlUnitConfig>;
  batchSize?: number;
}

/** How an engine's source differs in behaviour (kept as each shipped). */
export interface SqlSourceTraits {
  /** `PostgresSource`, `MySqlSource`: the name in messages. */
  name: string;
  /** Refuse an incremental read of a unit without `cursorColumns` (else: warn and read everything). */
  requireCursor: boolean;
  /** A read that finds no row still yields one empty batch (with the schema). */
  emptyBatch: boolean;
}

/** A read prepared in its snapshot: the unit, its statements and, for an unplanned read, the position it reaches. */
export interface PreparedRead<C extends SourceColumn> {
  unit: SourceUnit<C>;
  queries: SliceQuery[];
  checkpoint?: SqlCheckpoint;
}

/**
 * A SQL source on one engine (`PostgresSource`, `MySqlSource`): one instance serves every table; a unit id is
 * `schema.table` (`database.table`).
 * @internal
 */
export abstract class SqlSource<C extends SourceColumn, S> implements SourceEndpoint<SqlCheckpoint> {
  readonly descriptor: EndpointDescriptor<any>;
  protected readonly sql: SourceDialect<C, S>;
  readonly #settings: SqlSourceSettings;
  readonly #traits: SqlSourceTraits;
  #closed = false;

  protected constructor(
    sql: SourceDialect<C, S>,
    settings: SqlSourceSettings,
    traits: SqlSourceTraits,
    descriptor: EndpointDescriptor<any>,
  ) {
    this.sql = sql;
    this.#settings = settings;
    this.#traits = traits;
    this.descriptor = descriptor;
  }

  /** Tables and views with their schemas, primary keys and row estimates. @throws IngestError `source_failed` */
  async collectMetadata(ctx: IngestionContext): Promise<UnitMetadata[]> {
    const tables = await this.#session(ctx, `${this.#traits.name}.collectMetadata`, (s) => this.sql.describeAll(s));
    return tables.map((t) => {
      const unitId = this.sql.format(t);
      const cfg = this.#unitConfig(unitId, t);
      const cursor = cfg.cursorColumns;
      const meta: UnitMetadata = {
        unitId,
        title: `${t.schema}.${t.name}`,
        kind: t.kind,
        schema: this.sql.recordSchema(t.columns, cfg.primaryKey ?? t.primaryKey),
        capabilities: cursor?.length
          ? ['metadata.preview', 'ingest.full', 'ingest.incremental']
          : ['metadata.preview', 'ingest.full'],
      };
      if (t.estimatedRows !== undefined) meta.estimatedRows = t.estimatedRows;
      if (cursor?.length) meta.cursorColumns = [...cursor];
      return meta;
    });
  }

  /** Whether the table or view exists (one catalog lookup). @throws IngestError `not_found`, `source_failed` */
  async checkUnit(unitId: string, ctx: IngestionContext): Promise<void> {
    await this.#inSnapshot(unitId, ctx, 'checkUnit', async () => undefined);
  }

  /** The first `limit` rows of a unit in primary-key order (when it has one), typed like `read`. @throws IngestError `source_failed`, `not_found` */
  async preview(
    req: { unitId: string; limit: number },
    ctx: IngestionContext,
  ): Promise<{ rows: Row[]; schema?: RecordSchema }> {
    const limit = Math.max(0, Math.min(Math.floor(req.limit), 10_000));
    return this.#inSnapshot(req.unitId, ctx, 'preview', async (s, unit) => {
      const q = (c: C) => this.sql.quote(c.name);
      const order = unit.key.length ? ` ORDER BY ${unit.key.map(q).join(', ')}` : '';
      const item = (c: C) => this.sql.select?.(q(c), c) ?? q(c);
      const text = `SELECT ${unit.columns.map(item).join(', ')} FROM ${unit.table}${order} LIMIT ${limit}`;
      const rows: Row[] = [];
      for await (const batch of this.sql.stream(s, unit, { text, values: [] }, ctx, Math.max(1, limit)))
        rows.push(...batch);
      return { rows, schema: unit.schema };
    });
  }

  /**
   * Plan a run in one snapshot: the position it reaches (the plan's checkpoint), the rows split into primary-key
   * ranges of about `hints.sliceMaxRows`, each with its part of the boundary window (docs/decisions/0005).
   * @throws IngestError `config_invalid` (incremental without `cursorColumns`, bad `lag`), `checkpoint_invalid`,
   * `source_failed`, `not_found`
   */
  async plan(req: ReadRequest<SqlCheckpoint>, ctx: IngestionContext): Promise<ExportPlan<SqlCheckpoint>> {
    return this.#inSnapshot(req.unitId, ctx, 'plan', (s, unit) => {
      this.#noCursor(unit, req.mode, ctx);
      return planSlices(this.#scope(s, unit), req.mode, req.checkpoint, req.hints?.sliceMaxRows, ctx);
    });
  }

  /**
   * Stream a unit (or one planned slice) in batches of about `hints.chunkSize` rows. Without a slice, the read takes
   * the new position in the same snapshot and reports it as the last batch's checkpoint (no batch, no new checkpoint).
   * @throws IngestError `source_failed` (retryable for connection errors), `aborted`, `not_found`, `config_invalid`,
   * `checkpoint_invalid`
   */
  async *read(
    req: ReadRequest<SqlCheckpoint> & { slice?: SliceSpec },
    ctx: IngestionContext,
  ): AsyncIterable<SourceBatch<SqlCheckpoint>> {
    const what = `${this.#traits.name}.read of ${JSON.stringify(req.unitId)}${req.slice ? ` (slice ${req.slice.index})` : ''}`;
    const s = await this.open(ctx, what);
    let done = false;
    try {
      await this.sql.begin(s);
      const { unit, queries, checkpoint } = await this.prepareRead(s, req, ctx);
      const batchRows = req.hints?.chunkSize ?? this.#settings.batchSize ?? DEFAULT_BATCH;
      let first = true;
      const out = (rows: Row[], ck?: SqlCheckpoint): SourceBatch<SqlCheckpoint> => {
        const b: SourceBatch<SqlCheckpoint> = { rows };
        if (first) b.schema = unit.schema;
        first = false;
        if (ck) b.checkpoint = ck;
        return b;
      };
      // one batch is held back, so the last one carries the checkpoint of an unplanned read
      let held: Row[] | undefined;
      for (const q of queries) {
        for await (const rows of this.sql.stream(s, unit, q, ctx, batchRows)) {
          if (!rows.length) continue;
          if (held) yield out(held);
          held = rows;
          throwIfAborted(ctx?.signal, what);
        }
      }
      if (held) yield out(held, checkpoint);
      else if (this.#traits.emptyBatch) yield out([]);
      await this.sql.finish(s, true);
      done = true;
    } catch (err) {
      throw this.#wrap(err, what, {
        unitId: req.unitId,
        endpointId: ctx?.endpointId,
        runId: ctx?.runId,
        slice: req.slice?.index,
      });
    } finally {
      if (!done) await this.sql.finish(s, false);
    }
  }

  /** End the pool the source built from `connectionString` (an injected pool is left open). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.sql.close();
  }

  /** `await using source = new PostgresSource({ connectionString })`: `close()` at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Resolve the unit and build the statements of a read, in the caller's snapshot. */
  protected async prepareRead(
    s: S,
    req: ReadRequest<SqlCheckpoint> & { slice?: SliceSpec },
    ctx: IngestionContext,
  ): Promise<PreparedRead<C>> {
    const unit = await this.#resolve(s, req.unitId);
    const bounds = req.slice?.bounds as Record<string, unknown> | undefined;
    const planned = !!bounds && typeof bounds === 'object' && (!!bounds.planned || bounds.v === 2);
    if (!planned) this.#noCursor(unit, req.mode, ctx);
    const x = this.#scope(s, unit);
    const resume = unit.cursor.length ? await resumeFrom(x, req.mode === 'incremental' ? req.checkpoint : null) : null;
    const checkpoint = !planned && unit.cursor.length ? toCheckpoint(unit, await reach(x, resume, ctx)) : undefined;
    const shared = this.sql.dedupeSql ? new Params(this.sql) : undefined;
    const parts = readParts(this.sql, unit, resume, planned ? bounds : undefined, () => shared ?? new Params(this.sql));
    return { unit, queries: sliceQueries(this.sql, unit, parts), checkpoint };
  }

  /** Check out a session. @throws IngestError `config_invalid` after `close()`, `aborted`, `source_failed` */
  protected async open(ctx: IngestionContext, what: string): Promise<S> {
    if (this.#closed) throw new IngestError('config_invalid', `${this.#traits.name} already closed`);
    throwIfAborted(ctx?.signal, what);
    return this.sql.connect(what, ctx);
  }

  /** A failure as the source's error: IngestErrors as they are, driver errors as `source_failed`. */
  #wrap(err: unknown, what: string, details: Record<string, unknown>): IngestError {
    return IngestError.is(err) ? err : this.sql.wrap(err, 'source_failed', `${what} failed`, details);
  }

  #scope(s: S, unit: SourceUnit<C>): Scope<C, S> {
    return { d: this.sql, s, unit, name: this.#traits.name };
  }

  async #session<R>(ctx: IngestionContext, what: string, fn: (s: S) => Promise<R>, unitId?: string): Promise<R> {
    const s = await this.open(ctx, what);
    let ok = false;
    try {
      await this.sql.begin(s);
      const out = await fn(s);
      await this.sql.finish(s, true);
      ok = true;
      return out;
    } catch (err) {
      throw this.#wrap(err, what, unitId ? { unitId, endpointId: ctx?.endpointId } : { endpointId: ctx?.endpointId });
    } finally {
      if (!ok) await this.sql.finish(s, false);
    }
  }

  #inSnapshot<R>(unitId: string, ctx: IngestionContext, op: string, fn: (s: S, unit: SourceUnit<C>) => Promise<R>) {
    const what = `${this.#traits.name}.${op} of ${JSON.stringify(unitId)}`;
    return this.#session(ctx, what, async (s) => fn(s, await this.#resolve(s, unitId)), unitId);
  }

  /** Incremental needs a cursor: refused (PostgreSQL), or read whole with a warning (MySQL, as it shipped). */
  #noCursor(unit: SourceUnit<C>, mode: 'full' | 'incremental', ctx: IngestionContext): void {
    if (mode !== 'incremental' || unit.cursor.length) return;
    const { name, requireCursor } = this.#traits;
    if (!requireCursor) {
      ctx?.logger?.warn(`${name}: unit has no cursorColumns; an incremental read reads everything`, {
        unitId: unit.unitId,
      });
      return;
    }
    throw new IngestError(
      'config_invalid',
      `Unit ${JSON.stringify(unit.unitId)} has no cursorColumns, so it cannot be read incrementally: set units[${JSON.stringify(unit.unitId)}].cursorColumns (e.g. ['updated_at']) or run it with mode 'full'`,
      {
        details: {
          unitId: unit.unitId,
          issues: [`units.${unit.unitId}.cursorColumns: required for mode 'incremental'`],
        },
      },
    );
  }

  #unitConfig(unitId: string, name: { schema: string; name: string }): SqlUnitConfig {
    const units = this.#settings.units ?? {};
    if (Object.hasOwn(units, unitId)) return units[unitId];
    for (const [id, cfg] of Object.entries(units)) {
      const t = this.sql.parse(id);
      if (t.schema === name.schema && t.name === name.name) return cfg;
    }
    return {};
  }

  async #resolve(s: S, unitId: string): Promise<SourceUnit<C>> {
    const name = this.sql.parse(unitId);
    const info = await this.sql.describe(s, name);
    if (!info) {
      throw new IngestError('not_found', `${this.#traits.name}: no table or view ${JSON.stringify(unitId)}`, {
        details: { unitId },
      });
    }
    const cfg = this.#unitConfig(unitId, name);
    const byName = new Map(info.columns.map((c) => [c.name, c]));
    const missing: string[] = [];
    const pick = (names: string[]) =>
      names.flatMap((n) => {
        const c = byName.get(n);
        if (!c) missing.push(n);
        return c ? [c] : [];
      });
    const columns = cfg.columns ? pick(cfg.columns) : info.columns;
    const cursor = pick(cfg.cursorColumns ?? []);
    const key = pick(cfg.primaryKey ?? info.primaryKey);
    if (missing.length) {
      throw new IngestError(
        'config_invalid',
        `Unit ${JSON.stringify(unitId)} names unknown columns: ${missing.map((m) => JSON.stringify(m)).join(', ')}`,
        { details: { unitId, missing } },
      );
    }
    const inFingerprint = new Set([...columns, ...cursor, ...key].map((c) => c.name));
    const unit: SourceUnit<C> = {
      unitId,
      info,
      table: this.sql.qualified(info),
      columns,
      cursor,
      key,
      fingerprint: info.columns.filter((c) => inFingerprint.has(c.name)),
      boundaryMaxRows: cfg.boundaryMaxRows ?? DEFAULT_BOUNDARY_ROWS,
      schema: this.sql.recordSchema(
        columns,
        key.map((k) => k.name),
      ),
    };
    if (cfg.lag !== undefined) unit.lag = this.sql.lag(unitId, cursor[0], cfg.lag);
    return unit;
  }
}
