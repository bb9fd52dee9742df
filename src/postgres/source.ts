import type pg from 'pg';
import type { IngestionContext } from '../contracts/context.js';
import type { UnitMetadata } from '../contracts/endpoint.js';
import type { ExportPlan, ReadRequest, SliceSpec, SourceBatch, SourceEndpoint } from '../contracts/source-endpoint.js';
import type { RecordSchema, Row, Value } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { throwIfAborted } from '../util/abort.js';
import { type ColumnInfo, describeTable, describeTables, recordSchema, type TableInfo } from './catalog.js';
import { guardClient, type PgPoolLike, parseEndpointOptions } from './connection.js';
import { formatTableName, parseTableName, qualifiedName, quoteIdentifier } from './identifiers.js';
import { wrapPgError } from './pg-errors.js';
import {
  invalidCheckpoint,
  type PostgresCheckpoint,
  type PostgresSourceConfig,
  type PostgresSourceOptions,
  type PostgresUnitConfig,
  postgresSourceConfigSchema,
  postgresSourceDescriptor,
} from './source-config.js';
import { createTypeParsers, type TypeParsers } from './type-mapping.js';

/** Session settings that make every text form we parse predictable, local to the read transaction. */
const READ_SETTINGS =
  "SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL TimeZone = 'UTC'; SET LOCAL bytea_output = 'hex'; SET LOCAL extra_float_digits = 3";

const DEFAULT_BATCH = 10_000;
const DEFAULT_SLICE_ROWS = 500_000;
const MAX_SLICES = 1024;

/** A unit resolved against the catalog. */
interface Unit {
  unitId: string;
  info: TableInfo;
  table: string;
  columns: ColumnInfo[];
  cursor: ColumnInfo[];
  key: ColumnInfo[];
  schema: RecordSchema;
  parsers: TypeParsers;
}

/** The read window of one slice: `(lower, upper]` on the cursor tuple, optionally a primary-key range. */
interface SliceBounds {
  [k: string]: any;
  planned: boolean;
  lower: PostgresCheckpoint | null;
  /** Cursor tuple upper bound (inclusive); null: only rows whose cursor is NULL (nothing else existed). */
  upper: string[] | null;
  /** Also read rows whose cursor columns are NULL (first or full runs). */
  includeNulls: boolean;
  pkGt?: string;
  pkLe?: string;
  empty?: boolean;
}

/**
 * PostgreSQL source (descriptor id `postgres`, family `jdbc`): one instance serves every table of a database;
 * a unit id is `schema.table`.
 *
 * - `collectMetadata` reads the catalog: tables and views, columns mapped to a {@link RecordSchema}, primary keys,
 *   row estimates (`pg_class.reltuples`).
 * - `read` streams through a server-side cursor (`DECLARE … CURSOR` + `FETCH n`) inside one
 *   `REPEATABLE READ, READ ONLY` transaction: never the whole result in memory, one consistent snapshot.
 * - Incremental reads are keyset reads on `cursorColumns` with the primary key as tie-breaker: rows strictly after
 *   the checkpointed tuple, ordered by (cursor, key), so ties across batch boundaries are neither lost nor repeated.
 * - `plan` probes the upper cursor bound (it becomes the run's checkpoint; rows arriving during the export wait for
 *   the next run) and splits large tables into primary-key ranges that can be exported concurrently.
 *
 * Types are mapped as documented in docs/postgresql.md, with per-query parsers (pg's global parsers are untouched).
 *
 * @example
 * ```ts
 * import { PostgresSource } from '@nucleus/ingestion/postgres';
 * const source = new PostgresSource({
 *   connectionString: process.env.DATABASE_URL,
 *   units: { 'public.orders': { cursorColumns: ['updated_at'] } },
 * });
 * ```
 * @throws IngestError `config_invalid` for bad options; reads throw `source_failed` (retryable for connection errors).
 * @public
 */
export class PostgresSource implements SourceEndpoint<PostgresCheckpoint> {
  readonly descriptor = postgresSourceDescriptor;
  readonly #config: PostgresSourceConfig;
  readonly #pool: PgPoolLike;
  readonly #ownsPool: boolean;
  #closed = false;

  constructor(options: PostgresSourceOptions) {
    const { config, connection } = parseEndpointOptions('PostgresSource', postgresSourceConfigSchema, options);
    this.#config = config;
    this.#ownsPool = connection.owned;
    this.#pool = connection.pool;
  }

  /** Tables and views with their schemas, primary keys and row estimates. @throws IngestError `source_failed` */
  async collectMetadata(ctx: IngestionContext): Promise<UnitMetadata[]> {
    try {
      const tables = await describeTables(this.#pool, this.#config.schemas);
      return tables.map((t) => {
        const unitId = formatTableName(t);
        const cfg = this.#unitConfig(unitId, t);
        const cursorColumns = cfg.cursorColumns;
        const meta: UnitMetadata = {
          unitId,
          title: `${t.schema}.${t.name}`,
          kind: t.kind,
          schema: recordSchema(t.columns, cfg.primaryKey ?? t.primaryKey),
          capabilities: cursorColumns?.length
            ? ['metadata.preview', 'ingest.full', 'ingest.incremental']
            : ['metadata.preview', 'ingest.full'],
        };
        if (t.estimatedRows !== undefined) meta.estimatedRows = t.estimatedRows;
        if (cursorColumns?.length) meta.cursorColumns = [...cursorColumns];
        return meta;
      });
    } catch (err) {
      throw wrapPgError(err, 'source_failed', 'PostgresSource.collectMetadata failed', { endpointId: ctx?.endpointId });
    }
  }

  /** The first `limit` rows of a unit in primary-key order (when it has one), typed like `read`. @throws IngestError `source_failed`, `not_found` */
  async preview(
    req: { unitId: string; limit: number },
    ctx: IngestionContext,
  ): Promise<{ rows: Row[]; schema?: RecordSchema }> {
    const limit = Math.max(0, Math.min(Math.floor(req.limit), 10_000));
    return this.#inSnapshot(req.unitId, ctx, 'preview', async (client, unit) => {
      const key = unit.schema.primaryKey ?? [];
      const order = key.length ? ` ORDER BY ${key.map((k) => quoteIdentifier(k)).join(', ')}` : '';
      const res = await client.query({
        text: `SELECT ${unit.columns.map((c) => quoteIdentifier(c.name)).join(', ')} FROM ${unit.table}${order} LIMIT ${limit}`,
        rowMode: 'array',
        types: unit.parsers,
      });
      const build = rowBuilder(unit.columns.map((c) => c.name));
      return { rows: res.rows.map((r: unknown[]) => build(r)), schema: unit.schema };
    });
  }

  /**
   * Probe the upper cursor bound (the plan's checkpoint) and split a table larger than `hints.sliceMaxRows` into
   * primary-key ranges (single-column primary keys).
   * @throws IngestError `source_failed`, `config_invalid` (checkpoint from other cursor columns)
   */
  async plan(req: ReadRequest<PostgresCheckpoint>, ctx: IngestionContext): Promise<ExportPlan<PostgresCheckpoint>> {
    return this.#inSnapshot(req.unitId, ctx, 'plan', async (client, unit) => {
      const lower = req.mode === 'incremental' && unit.cursor.length ? checkCheckpoint(unit, req.checkpoint) : null;
      if (req.mode === 'incremental' && !unit.cursor.length) warnNoCursor(ctx, unit);
      const upper = unit.cursor.length ? await probeUpper(client, unit, lower) : null;
      const checkpoint: PostgresCheckpoint | null = !unit.cursor.length
        ? null
        : upper
          ? { columns: unit.cursor.map((c) => c.name), values: upper, key: null }
          : lower;
      const base: SliceBounds = {
        planned: true,
        lower,
        upper: unit.cursor.length ? (upper ?? null) : null,
        includeNulls: lower === null,
      };
      if (unit.cursor.length && lower && !upper) base.empty = true;
      const plan: ExportPlan<PostgresCheckpoint> = {
        slices: [{ index: 0, bounds: base }],
        checkpoint,
        schema: unit.schema,
      };
      if (unit.info.estimatedRows !== undefined) plan.estimatedRows = unit.info.estimatedRows;
      const sliceRows = req.hints?.sliceMaxRows ?? DEFAULT_SLICE_ROWS;
      if (base.empty) plan.estimatedRows = 0;
      if (base.empty || unit.key.length !== 1) return plan;
      const rows = await estimateRows(client, unit, base, sliceRows);
      plan.estimatedRows = rows;
      if (rows <= sliceRows) return plan;
      const n = Math.min(MAX_SLICES, Math.ceil(rows / sliceRows));
      const cuts = await splitPoints(client, unit, base, n, rows);
      if (!cuts.length) return plan;
      const slices: SliceSpec[] = [];
      for (let i = 0; i <= cuts.length; i++) {
        const b: SliceBounds = { ...base };
        if (i > 0) b.pkGt = cuts[i - 1];
        if (i < cuts.length) b.pkLe = cuts[i];
        slices.push({ index: i, bounds: b });
      }
      plan.slices = slices;
      return plan;
    });
  }

  /**
   * Stream a unit (or one planned slice) in batches of `hints.chunkSize` rows through a server-side cursor.
   * Incremental batches carry the last row's (cursor, key) tuple as their checkpoint.
   * @throws IngestError `source_failed` (retryable for connection errors), `aborted`, `not_found`, `config_invalid`
   */
  async *read(
    req: ReadRequest<PostgresCheckpoint> & { slice?: SliceSpec },
    ctx: IngestionContext,
  ): AsyncIterable<SourceBatch<PostgresCheckpoint>> {
    this.#assertOpen();
    const what = `PostgresSource.read of ${JSON.stringify(req.unitId)}${req.slice ? ` (slice ${req.slice.index})` : ''}`;
    const client = await this.#connect(ctx, what);
    let done = false;
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
      await client.query(READ_SETTINGS);
      const unit = await this.#resolve(client, req.unitId);
      let bounds: SliceBounds;
      let ordered = false;
      let finalCheckpoint: PostgresCheckpoint | null | undefined;
      if (req.slice?.bounds && typeof req.slice.bounds === 'object' && (req.slice.bounds as SliceBounds).planned) {
        bounds = req.slice.bounds as SliceBounds;
      } else {
        const incremental = req.mode === 'incremental' && unit.cursor.length > 0;
        if (req.mode === 'incremental' && !unit.cursor.length) warnNoCursor(ctx, unit);
        const lower = incremental ? checkCheckpoint(unit, req.checkpoint) : null;
        bounds = { planned: false, lower, upper: null, includeNulls: lower === null };
        ordered = incremental;
        if (unit.cursor.length) {
          const upper = await probeUpper(client, unit, lower);
          finalCheckpoint = upper ? { columns: unit.cursor.map((c) => c.name), values: upper, key: null } : lower;
        }
      }
      if (bounds.empty) {
        await client.query('COMMIT');
        done = true;
        return;
      }
      const { text, values, hidden } = selectSql(unit, bounds, ordered);
      await client.query({ text: `DECLARE nucleus_read NO SCROLL CURSOR FOR ${text}`, values });
      const batch = req.hints?.chunkSize ?? this.#config.batchSize ?? DEFAULT_BATCH;
      const build = rowBuilder(unit.columns.map((c) => c.name));
      const nCols = unit.columns.length;
      const fetch = async () => {
        throwIfAborted(ctx.signal, what);
        const res = await client.query({
          text: `FETCH FORWARD ${batch} FROM nucleus_read`,
          rowMode: 'array',
          types: unit.parsers,
        });
        return res.rows as unknown[][];
      };
      let current = await fetch();
      let first = true;
      while (current.length) {
        const next = current.length < batch ? [] : await fetch();
        const rows = current.map((r) => build(r));
        const out: SourceBatch<PostgresCheckpoint> = { rows };
        if (first) out.schema = unit.schema;
        first = false;
        if (ordered && hidden && unit.key.length) {
          const last = current[current.length - 1];
          const tuple = last.slice(nCols) as string[];
          out.checkpoint = {
            columns: unit.cursor.map((c) => c.name),
            values: tuple.slice(0, unit.cursor.length),
            key: { columns: unit.key.map((c) => c.name), values: tuple.slice(unit.cursor.length) },
          };
        }
        if (!next.length && finalCheckpoint && (!ordered || !unit.key.length)) out.checkpoint = finalCheckpoint;
        yield out;
        current = next;
      }
      await client.query('COMMIT');
      done = true;
    } catch (err) {
      if (IngestError.is(err)) throw err;
      throw wrapPgError(err, 'source_failed', `${what} failed`, {
        unitId: req.unitId,
        endpointId: ctx?.endpointId,
        slice: req.slice?.index,
      });
    } finally {
      if (!done) await client.query('ROLLBACK').catch(() => {});
      client.release(done ? undefined : true);
    }
  }

  /** End the pool the source built from `connectionString` (an injected pool is left open). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ownsPool) await this.#pool.end().catch(() => {});
  }

  #assertOpen(): void {
    if (this.#closed) throw new IngestError('config_invalid', 'PostgresSource already closed');
  }

  async #connect(ctx: IngestionContext, what: string): Promise<pg.PoolClient> {
    this.#assertOpen();
    throwIfAborted(ctx?.signal, what);
    try {
      return guardClient(await this.#pool.connect());
    } catch (err) {
      throw wrapPgError(err, 'source_failed', `${what}: cannot connect to PostgreSQL`, { endpointId: ctx?.endpointId });
    }
  }

  async #inSnapshot<R>(
    unitId: string,
    ctx: IngestionContext,
    op: string,
    fn: (client: pg.PoolClient, unit: Unit) => Promise<R>,
  ): Promise<R> {
    const what = `PostgresSource.${op} of ${JSON.stringify(unitId)}`;
    const client = await this.#connect(ctx, what);
    let ok = false;
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
      await client.query(READ_SETTINGS);
      const unit = await this.#resolve(client, unitId);
      const out = await fn(client, unit);
      await client.query('COMMIT');
      ok = true;
      return out;
    } catch (err) {
      if (IngestError.is(err)) throw err;
      throw wrapPgError(err, 'source_failed', `${what} failed`, { unitId, endpointId: ctx?.endpointId });
    } finally {
      if (!ok) await client.query('ROLLBACK').catch(() => {});
      client.release(ok ? undefined : true);
    }
  }

  #unitConfig(unitId: string, name: { schema: string; name: string }): PostgresUnitConfig {
    const units = this.#config.units ?? {};
    if (Object.hasOwn(units, unitId)) return units[unitId];
    for (const [id, cfg] of Object.entries(units)) {
      const t = parseTableName(id);
      if (t.schema === name.schema && t.name === name.name) return cfg;
    }
    return {};
  }

  async #resolve(client: pg.PoolClient, unitId: string): Promise<Unit> {
    const name = parseTableName(unitId);
    const info = await describeTable(client, name);
    if (!info) {
      throw new IngestError('not_found', `PostgresSource: no table or view ${JSON.stringify(unitId)}`, {
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
        {
          details: { unitId, missing },
        },
      );
    }
    return {
      unitId,
      info,
      table: qualifiedName(info),
      columns,
      cursor,
      key,
      schema: recordSchema(
        columns,
        key.map((k) => k.name),
      ),
      parsers: createTypeParsers(info.columns),
    };
  }
}

function warnNoCursor(ctx: IngestionContext, unit: Unit): void {
  ctx?.logger?.warn('PostgresSource: unit has no cursorColumns; an incremental read reads everything', {
    unitId: unit.unitId,
  });
}

/** Validate a checkpoint against the unit's cursor (and key) columns. */
function checkCheckpoint(unit: Unit, ck: PostgresCheckpoint | null): PostgresCheckpoint | null {
  if (ck === null || ck === undefined) return null;
  const names = unit.cursor.map((c) => c.name);
  if (
    typeof ck !== 'object' ||
    !Array.isArray(ck.columns) ||
    !Array.isArray(ck.values) ||
    ck.values.length !== ck.columns.length ||
    !ck.values.every((v) => typeof v === 'string')
  ) {
    throw invalidCheckpoint(unit.unitId, 'expected { columns, values, key }');
  }
  if (ck.columns.join('\u0000') !== names.join('\u0000')) {
    throw invalidCheckpoint(
      unit.unitId,
      `it was taken on cursor columns ${JSON.stringify(ck.columns)}, the unit now uses ${JSON.stringify(names)}`,
    );
  }
  if (ck.key) {
    const keys = unit.key.map((c) => c.name);
    if (
      !Array.isArray(ck.key.values) ||
      ck.key.columns?.join('\u0000') !== keys.join('\u0000') ||
      ck.key.values.length !== keys.length
    ) {
      throw invalidCheckpoint(
        unit.unitId,
        `its key columns ${JSON.stringify(ck.key.columns)} differ from ${JSON.stringify(keys)}`,
      );
    }
  }
  return ck;
}

/** Exact text of a column for checkpoints: ISO-8601 for timestamps (microseconds), PostgreSQL's text otherwise. */
function exactText(c: ColumnInfo, alias = ''): string {
  const q = alias + quoteIdentifier(c.name);
  switch (c.typname) {
    case 'timestamptz':
      return `to_char(${q} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
    case 'timestamp':
      return `to_char(${q}, 'YYYY-MM-DD"T"HH24:MI:SS.US')`;
    case 'date':
      return `to_char(${q}, 'YYYY-MM-DD')`;
    default:
      return `${q}::text`;
  }
}

class Params {
  values: unknown[] = [];
  add(value: string, c: ColumnInfo): string {
    this.values.push(value);
    return `CAST($${this.values.length} AS ${c.basetype})`;
  }
}

const tuple = (cols: ColumnInfo[]) => `(${cols.map((c) => quoteIdentifier(c.name)).join(', ')})`;

/** WHERE conditions of a window. */
function windowConditions(unit: Unit, b: SliceBounds, p: Params): string[] {
  const where: string[] = [];
  if (unit.cursor.length) {
    if (b.lower) {
      const cols = b.lower.key ? [...unit.cursor, ...unit.key] : unit.cursor;
      const vals = b.lower.key ? [...b.lower.values, ...b.lower.key.values] : b.lower.values;
      where.push(`${tuple(cols)} > (${cols.map((c, i) => p.add(vals[i], c)).join(', ')})`);
    }
    if (b.planned) {
      const nulls = unit.cursor.map((c) => `${quoteIdentifier(c.name)} IS NULL`).join(' OR ');
      if (b.upper) {
        const le = `${tuple(unit.cursor)} <= (${unit.cursor.map((c, i) => p.add(b.upper![i], c)).join(', ')})`;
        where.push(b.includeNulls ? `(${le} OR ${nulls})` : le);
      } else if (b.includeNulls) where.push(`(${nulls})`);
      else where.push('FALSE');
    }
  }
  if (unit.key.length === 1) {
    const k = unit.key[0];
    if (b.pkGt !== undefined) where.push(`${quoteIdentifier(k.name)} > ${p.add(b.pkGt, k)}`);
    if (b.pkLe !== undefined) where.push(`${quoteIdentifier(k.name)} <= ${p.add(b.pkLe, k)}`);
  }
  return where;
}

function selectSql(unit: Unit, b: SliceBounds, ordered: boolean): { text: string; values: unknown[]; hidden: boolean } {
  const p = new Params();
  const where = windowConditions(unit, b, p);
  const cols = unit.columns.map((c) => quoteIdentifier(c.name));
  const hidden = ordered && unit.cursor.length > 0;
  if (hidden) for (const c of [...unit.cursor, ...unit.key]) cols.push(exactText(c));
  let text = `SELECT ${cols.join(', ')} FROM ${unit.table}`;
  if (where.length) text += ` WHERE ${where.join(' AND ')}`;
  if (ordered)
    text += ` ORDER BY ${[...unit.cursor, ...unit.key].map((c) => `${unit.table}.${quoteIdentifier(c.name)}`).join(', ')}`;
  return { text, values: p.values, hidden };
}

/** The greatest cursor tuple (exact text) strictly after `lower`, or undefined when there is none. */
async function probeUpper(
  client: pg.PoolClient,
  unit: Unit,
  lower: PostgresCheckpoint | null,
): Promise<string[] | undefined> {
  const p = new Params();
  const where = unit.cursor.map((c) => `${quoteIdentifier(c.name)} IS NOT NULL`);
  where.push(...windowConditions(unit, { planned: false, lower, upper: null, includeNulls: false }, p));
  const text = `SELECT ${unit.cursor.map((c) => exactText(c)).join(', ')} FROM ${unit.table} WHERE ${where.join(' AND ')}
    ORDER BY ${unit.cursor.map((c) => `${unit.table}.${quoteIdentifier(c.name)} DESC`).join(', ')} LIMIT 1`;
  const res = await client.query({ text, values: p.values, rowMode: 'array' });
  return res.rows.length ? (res.rows[0] as string[]) : undefined;
}

/** Rows of the table: the planner's estimate when analyzed, else a bounded count. */
async function estimateRows(client: pg.PoolClient, unit: Unit, b: SliceBounds, sliceRows: number): Promise<number> {
  const whole = !b.lower;
  if (whole && unit.info.estimatedRows !== undefined && unit.info.estimatedRows > 0) return unit.info.estimatedRows;
  // an incremental window (or a never-analyzed table): count, but never past what the slicing could use
  const p = new Params();
  const where = windowConditions(unit, b, p);
  const cap = sliceRows * MAX_SLICES;
  const res = await client.query({
    text: `SELECT count(*)::int8::text FROM (SELECT 1 FROM ${unit.table}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} LIMIT ${cap}) s`,
    values: p.values,
    rowMode: 'array',
  });
  return Number(res.rows[0][0]);
}

/** n−1 distinct primary-key cut points that split the window into n ranges of about equal row counts. */
async function splitPoints(
  client: pg.PoolClient,
  unit: Unit,
  b: SliceBounds,
  n: number,
  rows: number,
): Promise<string[]> {
  const k = unit.key[0];
  const p = new Params();
  const where = windowConditions(unit, b, p);
  where.push(`${quoteIdentifier(k.name)} IS NOT NULL`);
  const fractions = Array.from({ length: n - 1 }, (_, i) => (i + 1) / n);
  p.values.push(fractions);
  const sample =
    rows > 2_000_000 ? ` TABLESAMPLE SYSTEM (${Math.max(0.01, Math.min(100, (200_000 * 100) / rows)).toFixed(4)})` : '';
  const text = `SELECT DISTINCT v FROM unnest((SELECT percentile_disc($${p.values.length}::float8[]) WITHIN GROUP (ORDER BY ${quoteIdentifier(k.name)})
      FROM ${unit.table}${sample} WHERE ${where.join(' AND ')})) AS u(v) WHERE v IS NOT NULL ORDER BY v`;
  const res = await client.query({
    text: `SELECT s.v::text AS cut FROM (${text}) s ORDER BY s.v`,
    values: p.values,
    rowMode: 'array',
  });
  return res.rows.map((r: unknown[]) => r[0] as string);
}

/** Build row objects from array rows; column names are data (`__proto__` stays an own property). */
function rowBuilder(names: string[]): (values: unknown[]) => Row {
  const risky = names.some((n) => n === '__proto__');
  if (!risky) {
    return (values) => {
      const row: Row = {};
      for (let i = 0; i < names.length; i++) row[names[i]] = values[i] as Value;
      return row;
    };
  }
  return (values) => {
    const row: Row = {};
    for (let i = 0; i < names.length; i++) {
      Object.defineProperty(row, names[i], { value: values[i], enumerable: true, writable: true, configurable: true });
    }
    return row;
  };
}
