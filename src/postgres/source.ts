import type pg from 'pg';
import type { IngestionContext } from '../contracts/context.js';
import type { EndpointDescriptor, UnitMetadata } from '../contracts/endpoint.js';
import type {
  EncodedBatch,
  ExportPlan,
  ReadRequest,
  SliceSpec,
  SourceBatch,
  SourceEndpoint,
} from '../contracts/source-endpoint.js';
import type { RecordSchema, Row, Value } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { throwIfAborted } from '../util/abort.js';
import { estimateRowBytes } from '../util/rows.js';
import { type ColumnInfo, describeTable, describeTables, recordSchema, type TableInfo } from './catalog.js';
import { guardClient, type PgPoolLike, parseEndpointOptions } from './connection.js';
import { copyOutSlice, transcodeCopyText } from './copy-pass-through.js';
import { formatTableName, parseTableName, qualifiedName, quoteIdentifier } from './identifiers.js';
import { PG_COPY_CODEC_ID } from './pg-copy-codec.js';
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
import type { CopyTextColumn } from './transcode.js';
import { exportTranscoder } from './transcoders.js';
import { createTypeParsers, type TypeParsers } from './type-mapping.js';

/** Session settings that make every text form we parse or fingerprint predictable, local to the read transaction. */
const READ_SETTINGS =
  "SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL TimeZone = 'UTC'; SET LOCAL IntervalStyle = 'postgres'; SET LOCAL bytea_output = 'hex'; SET LOCAL extra_float_digits = 3";

const DEFAULT_BATCH = 10_000;
const DEFAULT_SLICE_ROWS = 500_000;
const DEFAULT_FETCH_BYTES = 256 * 1024;
const DEFAULT_BOUNDARY_ROWS = 100_000;
/** Rows of the first FETCH, before the row size is known. */
const FIRST_FETCH = 16;
const MAX_SLICES = 1024;

/** A unit resolved against the catalog. */
interface Unit {
  unitId: string;
  info: TableInfo;
  table: string;
  columns: ColumnInfo[];
  cursor: ColumnInfo[];
  key: ColumnInfo[];
  /** Columns of the row fingerprint: exported, cursor and key columns, in table order. */
  fingerprint: ColumnInfo[];
  schema: RecordSchema;
  parsers: TypeParsers;
  lag?: string | number;
  boundaryMaxRows: number;
}

/** Where the previous run left off (a checkpoint of either version, validated and normalized). */
interface Resume {
  /** Greatest regular cursor tuple exported, or null. */
  values: string[] | null;
  /** Window start (inclusive prefix), or null: resume strictly after `values` (+ `key`), as version 1 did. */
  from: string[] | null;
  /** Version-1 primary-key tie-breaker. */
  key: string[] | null;
  /** Fingerprints (base64) of the window and of the NULL/infinite rows already exported. */
  seen: string;
  /** Version 1: rows with a NULL (or infinite) cursor were read on the first run only; do not re-read them. */
  legacy: boolean;
}

/** The new position a run reaches (computed in one snapshot). */
interface Reach {
  upper: string[] | null;
  from: string[] | null;
  seen: string;
  seenRows: number;
}

/** Bounds of a planned slice (JSON in the run state). */
interface SliceBounds {
  [k: string]: any;
  planned: true;
  /** Read the rows below the new window (old window deduped), in the primary-key range. */
  main: boolean;
  /** Read the new window and the NULL/infinite rows, deduped, at most as many copies as the plan saw. */
  boundary: boolean;
  from: string[] | null;
  upper: string[] | null;
  /** Fingerprints the plan saw in the new window (base64), for the boundary part. */
  expect: string;
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
 * - `read` streams through a server-side cursor (`DECLARE … CURSOR` + `FETCH n`, `n` sized by rows and by
 *   `fetchMaxBytes`) inside one `REPEATABLE READ, READ ONLY` transaction: never the whole result in memory, one
 *   consistent snapshot.
 * - Incremental reads resume AT the last cursor value and skip the rows exported there before (boundary dedupe by
 *   row fingerprint): rows that tie with it or commit late within `lag` are read, NULL and ±infinity/NaN cursors are
 *   read once each and never become the position. A unit without `cursorColumns` is refused in incremental mode.
 *   See {@link PostgresCheckpoint} and docs/decisions/0005-incremental-boundaries.md.
 * - `plan` takes the new position in one snapshot (the run's checkpoint) and splits the rows into primary-key ranges
 *   exported concurrently; rows committed during the export are exported once, now or by the next run.
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
 * @throws IngestError `config_invalid` for bad options; reads throw `source_failed` (retryable for connection errors),
 * `checkpoint_invalid` for a checkpoint that does not fit the unit.
 * @public
 */
export class PostgresSource implements SourceEndpoint<PostgresCheckpoint> {
  /**
   * The `postgres` descriptor. It declares `ingest.incremental` only when some unit has `cursorColumns`, so
   * `runUnit` runs a source without any cursor in `full` mode by default (and says so in `run.started`); an
   * incremental run of a unit without a cursor is refused with `config_invalid`.
   */
  readonly descriptor: EndpointDescriptor<PostgresSourceConfig>;
  readonly #config: PostgresSourceConfig;
  readonly #pool: PgPoolLike;
  readonly #ownsPool: boolean;
  #closed = false;

  constructor(options: PostgresSourceOptions) {
    const { config, connection } = parseEndpointOptions('PostgresSource', postgresSourceConfigSchema, options);
    this.#config = config;
    this.#ownsPool = connection.owned;
    this.#pool = connection.pool;
    const incremental = Object.values(config.units ?? {}).some((u) => u.cursorColumns?.length);
    this.descriptor = incremental
      ? postgresSourceDescriptor
      : {
          ...postgresSourceDescriptor,
          capabilities: postgresSourceDescriptor.capabilities.filter((c) => c !== 'ingest.incremental'),
        };
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
   * Plan a run in one snapshot: the position it reaches (the plan's checkpoint: the greatest cursor tuple, the new
   * boundary window and the fingerprints in it), the rows below the window split into primary-key ranges of about
   * `hints.sliceMaxRows` (single-column primary keys), and one boundary slice for the window and the rows whose cursor
   * is NULL or infinite. Rows committed after the plan are left for the next run (or read now, where the next run
   * would not see them).
   * @throws IngestError `config_invalid` (incremental without `cursorColumns`, bad `lag`), `checkpoint_invalid`,
   * `source_failed`, `not_found`
   */
  async plan(req: ReadRequest<PostgresCheckpoint>, ctx: IngestionContext): Promise<ExportPlan<PostgresCheckpoint>> {
    return this.#inSnapshot(req.unitId, ctx, 'plan', async (client, unit) => {
      requireCursor(unit, req.mode);
      const sliceRows = req.hints?.sliceMaxRows ?? DEFAULT_SLICE_ROWS;
      const plan: ExportPlan<PostgresCheckpoint> = { slices: [], checkpoint: null, schema: unit.schema };
      if (!unit.cursor.length) {
        // a full read without a cursor: every row, split by primary key; no checkpoint
        const all: SliceBounds = { planned: true, main: true, boundary: false, from: null, upper: null, expect: '' };
        return this.#split(client, unit, null, all, plan, sliceRows);
      }
      const resume = await readResume(client, unit, req.mode === 'incremental' ? req.checkpoint : null);
      const reach = await computeReach(client, unit, resume, ctx);
      const base: SliceBounds = {
        planned: true,
        main: true,
        boundary: true,
        from: reach.from,
        upper: reach.upper,
        expect: reach.seen,
      };
      const boundaryRows = await countBoundary(client, unit, resume, base);
      // a first or full run of an analyzed table takes the planner's estimate instead of counting the table
      const estimate = unit.info.estimatedRows;
      const mainRows =
        resume === null && estimate !== undefined && estimate > 0
          ? Math.max(1, estimate - boundaryRows)
          : await countMain(client, unit, resume, base, sliceRows * MAX_SLICES);
      if (boundaryRows + mainRows === 0) {
        // nothing new: stage nothing and leave the checkpoint as it is
        plan.slices = [];
        plan.checkpoint = req.mode === 'incremental' ? req.checkpoint : null;
        plan.estimatedRows = 0;
        return plan;
      }
      plan.checkpoint = toCheckpoint(unit, reach);
      // Slices are primary-key ranges; each reads its range of the main part and of the boundary, and carries the
      // fingerprints the plan saw in its range of the boundary (together exactly the checkpoint's).
      await this.#split(client, unit, resume, base, plan, sliceRows, mainRows + boundaryRows);
      if (plan.slices.length > 1) {
        const cuts = plan.slices.slice(1).map((sl) => (sl.bounds as SliceBounds).pkGt!);
        const parts = await boundaryByRange(client, unit, reach, cuts);
        for (let i = 0; i < plan.slices.length; i++) (plan.slices[i].bounds as SliceBounds).expect = parts[i] ?? '';
      }
      return plan;
    });
  }

  /** Split `bounds` into primary-key ranges of about `sliceRows` rows (appended to `plan.slices`). */
  async #split(
    client: pg.PoolClient,
    unit: Unit,
    resume: Resume | null,
    bounds: SliceBounds,
    plan: ExportPlan<PostgresCheckpoint>,
    sliceRows: number,
    known?: number,
  ): Promise<ExportPlan<PostgresCheckpoint>> {
    const rows =
      known ??
      (resume === null && unit.info.estimatedRows !== undefined && unit.info.estimatedRows > 0 && !unit.cursor.length
        ? unit.info.estimatedRows
        : await countMain(client, unit, resume, bounds, sliceRows * MAX_SLICES));
    plan.estimatedRows = rows;
    const cuts =
      unit.key.length === 1 && rows > sliceRows
        ? await splitPoints(client, unit, resume, bounds, Math.min(MAX_SLICES, Math.ceil(rows / sliceRows)), rows)
        : [];
    for (let i = 0; i <= cuts.length; i++) {
      const b: SliceBounds = { ...bounds };
      if (i > 0) b.pkGt = cuts[i - 1];
      if (i < cuts.length) b.pkLe = cuts[i];
      plan.slices.push({ index: plan.slices.length, bounds: b });
    }
    return plan;
  }

  /**
   * Stream a unit (or one planned slice) through a server-side cursor, in batches sized by rows (`hints.chunkSize`)
   * and by bytes (`fetchMaxBytes`, adapted to the observed row size). Without a slice, the read takes the new
   * position in the same snapshot and reports it as the last batch's checkpoint (no batch, no new checkpoint).
   * @throws IngestError `source_failed` (retryable for connection errors), `aborted`, `not_found`, `config_invalid`,
   * `checkpoint_invalid`
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
      const planned =
        req.slice?.bounds && typeof req.slice.bounds === 'object' && (req.slice.bounds as SliceBounds).planned
          ? (req.slice.bounds as SliceBounds)
          : undefined;
      if (!planned) requireCursor(unit, req.mode);
      if (planned?.empty) {
        await client.query('COMMIT');
        done = true;
        return;
      }
      const resume = unit.cursor.length
        ? await readResume(client, unit, req.mode === 'incremental' ? req.checkpoint : null)
        : null;
      let finalCheckpoint: PostgresCheckpoint | undefined;
      if (!planned && unit.cursor.length)
        finalCheckpoint = toCheckpoint(unit, await computeReach(client, unit, resume!, ctx));
      const { text, values } = selectSql(unit, resume, planned);
      await client.query({ text: `DECLARE nucleus_read NO SCROLL CURSOR FOR ${text}`, values });
      const maxRows = req.hints?.chunkSize ?? this.#config.batchSize ?? DEFAULT_BATCH;
      const maxBytes = this.#config.fetchMaxBytes ?? DEFAULT_FETCH_BYTES;
      const build = rowBuilder(unit.columns.map((c) => c.name));
      let size = Math.min(maxRows, FIRST_FETCH);
      const fetch = async (): Promise<Row[]> => {
        throwIfAborted(ctx.signal, what);
        const n = size;
        const res = await client.query({
          text: `FETCH FORWARD ${n} FROM nucleus_read`,
          rowMode: 'array',
          types: unit.parsers,
        });
        const rows = (res.rows as unknown[][]).map((r) => build(r));
        if (rows.length) size = nextFetchSize(rows, maxRows, maxBytes);
        // fewer rows than asked: the cursor is exhausted
        if (rows.length < n) exhausted = true;
        return rows;
      };
      let exhausted = false;
      let current = await fetch();
      let first = true;
      while (current.length) {
        // read ahead only to find the last batch, which carries the checkpoint of an unplanned read
        const next = exhausted ? [] : finalCheckpoint ? await fetch() : undefined;
        const out: SourceBatch<PostgresCheckpoint> = { rows: current };
        if (first) out.schema = unit.schema;
        first = false;
        if (next && !next.length && finalCheckpoint) out.checkpoint = finalCheckpoint;
        yield out;
        current = next ?? (exhausted ? [] : await fetch());
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

  /**
   * Pass-through (codec `pg-copy`, see `pgCopyCodec`): one planned slice as the bytes of
   * `COPY (SELECT … the slice …) TO STDOUT`, in the same snapshot and text settings as `read`, staged unchanged.
   * For `ndjson` the same COPY text is transcoded value by value into the NDJSON lines `read` + the codec would
   * have staged, byte for byte; for `arrow` into record batches (of `req.hints.batchRows` rows) that decode to the
   * rows `read` gives — both without row objects (docs/decisions/0008-transcoded-row-paths.md).
   * `undefined` for another codec or an unplanned slice (the pipeline then uses `read`).
   * @throws IngestError `source_failed` (retryable for connection errors), `aborted`, `not_found`
   */
  readEncoded(
    codec: string,
    req: ReadRequest<PostgresCheckpoint> & { slice: SliceSpec },
    ctx: IngestionContext,
  ): AsyncIterable<EncodedBatch> | undefined {
    const bounds = req.slice?.bounds as SliceBounds | undefined;
    if (!bounds || typeof bounds !== 'object' || !bounds.planned) return undefined;
    const transcoder = codec === PG_COPY_CODEC_ID ? undefined : exportTranscoder(codec);
    if (codec !== PG_COPY_CODEC_ID && !transcoder) return undefined;
    const what = `PostgresSource.readEncoded of ${JSON.stringify(req.unitId)} (slice ${req.slice.index})`;
    let columns: CopyTextColumn[] = [];
    const copyText = copyOutSlice({
      what,
      signal: ctx.signal,
      settings: READ_SETTINGS,
      connect: () => this.#connect(ctx, what),
      prepare: async (client) => {
        const unit = await this.#resolve(client, req.unitId);
        columns = unit.columns.map((c) => ({
          name: c.name,
          typname: c.typname,
          typcategory: c.typcategory,
          parse: unit.parsers.getTypeParser(c.typid, 'text'),
        }));
        if (bounds.empty) return { schema: unit.schema };
        const resume = unit.cursor.length
          ? await readResume(client, unit, req.mode === 'incremental' ? req.checkpoint : null)
          : null;
        return { schema: unit.schema, select: selectSql(unit, resume, bounds) };
      },
      wrap: (err) =>
        IngestError.is(err)
          ? err
          : wrapPgError(err, 'source_failed', `${what} failed`, {
              unitId: req.unitId,
              endpointId: ctx?.endpointId,
              slice: req.slice.index,
            }),
    });
    if (!transcoder) return copyText;
    ctx.logger?.debug?.(`${what}: COPY text transcoded to ${codec}, no row objects`, { slice: req.slice.index, codec });
    // NDJSON rows are lines, checked by the pipeline; for other codecs `maxRowBytes` applies to the COPY text here
    const maxRowBytes = req.hints?.maxRowBytes;
    const sizes = maxRowBytes !== undefined && codec !== 'ndjson' ? { maxRowBytes, slice: req.slice.index } : undefined;
    const batchRows = req.hints?.batchRows;
    return transcodeCopyText(copyText, transcoder, () => columns, sizes, batchRows ? { batchRows } : undefined);
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
    const inFingerprint = new Set([...columns, ...cursor, ...key].map((c) => c.name));
    const out: Unit = {
      unitId,
      info,
      table: qualifiedName(info),
      columns,
      cursor,
      key,
      fingerprint: info.columns.filter((c) => inFingerprint.has(c.name)),
      boundaryMaxRows: cfg.boundaryMaxRows ?? DEFAULT_BOUNDARY_ROWS,
      schema: recordSchema(
        columns,
        key.map((k) => k.name),
      ),
      parsers: createTypeParsers(info.columns),
    };
    if (cfg.lag !== undefined) {
      if (!cursor.length || lagExpr(cursor[0], '$0', '$0') === undefined) {
        throw new IngestError(
          'config_invalid',
          `Unit ${JSON.stringify(unitId)}: \`lag\` needs a first cursor column of a date, timestamp or numeric type${cursor.length ? `, ${JSON.stringify(cursor[0].name)} is ${cursor[0].formatted}` : ''}`,
          { details: { unitId, issues: ['lag: unsupported cursor type'] } },
        );
      }
      out.lag = cfg.lag;
    }
    return out;
  }
}

/** Incremental needs a cursor: a unit without `cursorColumns` is refused rather than re-read whole every run. */
function requireCursor(unit: Unit, mode: 'full' | 'incremental'): void {
  if (mode !== 'incremental' || unit.cursor.length) return;
  throw new IngestError(
    'config_invalid',
    `Unit ${JSON.stringify(unit.unitId)} has no cursorColumns, so it cannot be read incrementally: set units[${JSON.stringify(unit.unitId)}].cursorColumns (e.g. ['updated_at']) or run it with mode 'full'`,
    {
      details: { unitId: unit.unitId, issues: [`units.${unit.unitId}.cursorColumns: required for mode 'incremental'`] },
    },
  );
}

/** Rows per next FETCH: about `maxBytes` of rows like these, at least 1, at most `maxRows`. */
function nextFetchSize(rows: Row[], maxRows: number, maxBytes: number): number {
  const step = Math.max(1, Math.floor(rows.length / 16));
  let bytes = 0;
  let n = 0;
  for (let i = 0; i < rows.length; i += step, n++) bytes += estimateRowBytes(rows[i]);
  const avg = Math.max(1, bytes / n);
  return Math.max(1, Math.min(maxRows, Math.floor(maxBytes / avg)));
}

const q = quoteIdentifier;
const col = (c: ColumnInfo, alias = 't') => `${alias}.${q(c.name)}`;

/**
 * The type a parameter is cast to when compared with a column: the column's full type (`character(8)`, `bit(4)`,
 * `character varying(20)`), except where a type modifier would round or truncate the value (numeric, time and
 * timestamp precisions) and comparison does not need it.
 */
function castType(c: ColumnInfo): string {
  switch (c.typname) {
    case 'numeric':
    case 'timestamp':
    case 'timestamptz':
    case 'time':
    case 'timetz':
    case 'interval':
      return c.basetype;
    default:
      return c.formatted;
  }
}

class Params {
  values: unknown[] = [];
  raw(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
  add(value: string, c: ColumnInfo): string {
    return `CAST(${this.raw(value)} AS ${castType(c)})`;
  }
}

/** The non-finite values of a cursor column's type (they never become the position). */
function sentinels(c: ColumnInfo): string | undefined {
  switch (c.typname) {
    case 'timestamp':
    case 'timestamptz':
    case 'date':
      return `'infinity', '-infinity'`;
    case 'numeric':
    case 'float4':
    case 'float8':
      return `'NaN', 'Infinity', '-Infinity'`;
    default:
      return undefined;
  }
}

/** A finite, non-NULL cursor value. */
function finite(c: ColumnInfo, alias = 't'): string {
  const x = col(c, alias);
  const s = sentinels(c);
  return s ? `${x} IS NOT NULL AND ${x} NOT IN (${s})` : `${x} IS NOT NULL`;
}

/**
 * Rows whose cursor is NULL or non-finite (the "special" group, read once each by fingerprint). Written as equalities
 * and IS NULL, which an index on the cursor serves, so finding them does not scan the table.
 */
function nonFinite(c: ColumnInfo, alias = 't'): string {
  const x = col(c, alias);
  const s = sentinels(c);
  return s ? `${x} IS NULL OR ${x} IN (${s})` : `${x} IS NULL`;
}

const regular = (unit: Unit, alias = 't') => `(${unit.cursor.map((c) => finite(c, alias)).join(' AND ')})`;
const special = (unit: Unit, alias = 't') => `(${unit.cursor.map((c) => nonFinite(c, alias)).join(' OR ')})`;

/** `(c1, …, ck) op (v1, …, vk)` over the first `values.length` columns of `cols`. */
function compare(cols: ColumnInfo[], op: string, values: string[], p: Params, alias = 't'): string {
  const k = values.length;
  const lhs = cols.slice(0, k).map((c) => col(c, alias));
  const rhs = cols.slice(0, k).map((c, i) => p.add(values[i], c));
  return k === 1 ? `${lhs[0]} ${op} ${rhs[0]}` : `ROW(${lhs.join(', ')}) ${op} ROW(${rhs.join(', ')})`;
}

/** Rows after the previous position that need no dedupe (regular rows above the old window). */
function afterResume(unit: Unit, r: Resume | null, p: Params, alias = 't'): string {
  if (!r || r.values === null) return 'TRUE';
  if (r.from === null && r.key && unit.key.length)
    return compare([...unit.cursor, ...unit.key], '>', [...r.values, ...r.key], p, alias);
  return compare(unit.cursor, '>', r.values, p, alias);
}

/** Regular rows inside the previous window (deduped against `seen`). */
function inOldWindow(unit: Unit, r: Resume | null, p: Params, alias = 't'): string {
  if (!r || r.values === null || r.from === null) return 'FALSE';
  return `(${compare(unit.cursor, '>=', r.from, p, alias)} AND ${compare(unit.cursor, '<=', r.values, p, alias)})`;
}

/** Special rows this read takes (none after a version-1 checkpoint: that version read them on the first run only). */
const readsSpecial = (r: Resume | null) => !r?.legacy;

function pkRange(unit: Unit, b: SliceBounds | undefined, p: Params, alias = 't'): string[] {
  if (!b || unit.key.length !== 1) return [];
  const k = unit.key[0];
  const out: string[] = [];
  if (b.pkGt !== undefined) out.push(`${col(k, alias)} > ${p.add(b.pkGt, k)}`);
  // the first range also takes rows whose (configured) key is NULL
  if (b.pkLe !== undefined)
    out.push(
      b.pkGt === undefined
        ? `(${col(k, alias)} <= ${p.add(b.pkLe, k)} OR ${col(k, alias)} IS NULL)`
        : `${col(k, alias)} <= ${p.add(b.pkLe, k)}`,
    );
  return out;
}

/** 8 bytes of the md5 of the row's text (exported, cursor and key columns). */
const fingerprint = (unit: Unit, alias = 't') =>
  `substring(decode(md5(ROW(${unit.fingerprint.map((c) => col(c, alias)).join(', ')})::text), 'hex') FROM 1 FOR 8)`;

/** A multiset of fingerprints from base64: `(fp, n)` rows. */
const fingerprintSet = (param: string) =>
  `(SELECT substring(b FROM g * 8 + 1 FOR 8) AS fp, count(*) AS n FROM decode(CAST(${param} AS text), 'base64') AS b, generate_series(0, length(b) / 8 - 1) AS g GROUP BY 1)`;

/**
 * Rows of `where` minus the copies already exported (`seen`), and — for a planned boundary — at most as many copies
 * of each row as the plan saw (`expect`).
 */
function deduped(unit: Unit, where: string[], p: Params, seen: string, expect: string | null, select: string): string {
  const cols = unit.columns.map((c) => `w.${q(c.name)}`).join(', ');
  const inner = `SELECT ${select}, ${fingerprint(unit)} AS "nucleus$fp", row_number() OVER (PARTITION BY ${fingerprint(unit)}) AS "nucleus$rn" FROM ${unit.table} t WHERE ${where.join(' AND ')}`;
  let sql = `SELECT ${cols} FROM (${inner}) w`;
  const conds: string[] = [];
  if (seen) {
    sql += ` LEFT JOIN ${fingerprintSet(p.raw(seen))} o ON o.fp = w."nucleus$fp"`;
    conds.push(`w."nucleus$rn" > coalesce(o.n, 0)`);
  }
  if (expect !== null) {
    sql += ` LEFT JOIN ${fingerprintSet(p.raw(expect))} e ON e.fp = w."nucleus$fp"`;
    conds.push(`w."nucleus$rn" <= coalesce(e.n, 0)`);
  }
  return conds.length ? `${sql} WHERE ${conds.join(' AND ')}` : sql;
}

/** Conditions of the main part (regular rows below the new window) and whether they need dedupe. */
function mainParts(
  unit: Unit,
  r: Resume | null,
  b: SliceBounds | undefined,
  p: Params,
): { plain: string[]; window: string[] } {
  if (!unit.cursor.length) return { plain: ['TRUE', ...pkRange(unit, b, p)], window: [] };
  const below = b ? (b.from ? [compare(unit.cursor, '<', b.from, p)] : ['FALSE']) : [];
  const plain = [regular(unit), afterResume(unit, r, p), ...below, ...pkRange(unit, b, p)];
  // (an unplanned read takes the old window together with the special rows, see selectSql)
  const window = b && r?.from ? [regular(unit), inOldWindow(unit, r, p), ...below, ...pkRange(unit, b, p)] : [];
  return { plain, window };
}

/**
 * A slice planned by version 1 (bounds `{ planned, lower, upper, includeNulls, pkGt, pkLe }`), resumed after an
 * upgrade: its window `(lower, upper]` (plus NULL cursors on a first run), as that version read it.
 */
function version1SliceSql(unit: Unit, b: Record<string, any>): { text: string; values: unknown[] } {
  const p = new Params();
  const where: string[] = [];
  const lower = b.lower as { values?: string[]; key?: { values?: string[] } | null } | null;
  if (lower?.values) {
    where.push(
      lower.key?.values && unit.key.length
        ? compare([...unit.cursor, ...unit.key], '>', [...lower.values, ...lower.key.values], p)
        : compare(unit.cursor, '>', lower.values, p),
    );
  }
  const nulls = unit.cursor.map((c) => `${col(c)} IS NULL`).join(' OR ');
  if (Array.isArray(b.upper)) {
    const le = compare(unit.cursor, '<=', b.upper as string[], p);
    where.push(b.includeNulls ? `(${le} OR ${nulls})` : le);
  } else where.push(b.includeNulls ? `(${nulls})` : 'FALSE');
  where.push(...pkRange(unit, b as SliceBounds, p));
  return {
    text: `SELECT ${unit.columns.map((c) => col(c)).join(', ')} FROM ${unit.table} t WHERE ${where.join(' AND ')}`,
    values: p.values,
  };
}

/** The SELECT of a read: an unplanned read (everything after the checkpoint) or one planned slice. */
function selectSql(unit: Unit, r: Resume | null, b: SliceBounds | undefined): { text: string; values: unknown[] } {
  if (b && typeof b.main !== 'boolean') {
    if (unit.cursor.length) return version1SliceSql(unit, b);
    b = { ...b, main: true, boundary: false };
  }
  const p = new Params();
  const cols = unit.columns.map((c) => col(c)).join(', ');
  const parts: string[] = [];
  const plainPart = (where: string[]) => `SELECT ${cols} FROM ${unit.table} t WHERE ${where.join(' AND ')}`;
  if (!b || b.main) {
    const m = mainParts(unit, r, b, p);
    parts.push(plainPart(m.plain));
    if (!b && unit.cursor.length) {
      // unplanned: the old window and the special rows, deduped against the checkpoint
      const region = [`(${inOldWindow(unit, r, p)}${readsSpecial(r) ? ` OR ${special(unit)}` : ''})`];
      if (r?.seen) parts.push(deduped(unit, region, p, r.seen, null, cols));
      else parts.push(plainPart(region));
    } else if (m.window.length) parts.push(deduped(unit, m.window, p, r?.seen ?? '', null, cols));
  }
  if (b?.boundary && unit.cursor.length) {
    const window =
      b.from && b.upper
        ? `(${regular(unit)} AND ${compare(unit.cursor, '>=', b.from, p)} AND ${compare(unit.cursor, '<=', b.upper, p)} AND (${afterResume(unit, r, p)} OR ${inOldWindow(unit, r, p)}))`
        : 'FALSE';
    const region = [`(${window}${readsSpecial(r) ? ` OR ${special(unit)}` : ''})`];
    parts.push(deduped(unit, region, p, r?.seen ?? '', b.expect, cols));
  }
  return { text: parts.length === 1 ? parts[0] : parts.map((x) => `(${x})`).join(' UNION ALL '), values: p.values };
}

/** Validate a checkpoint (either version) against the unit and normalize it; its values must cast to the columns. */
async function readResume(client: pg.PoolClient, unit: Unit, ck: unknown): Promise<Resume | null> {
  if (ck === null || ck === undefined) return null;
  const names = unit.cursor.map((c) => c.name);
  const strings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');
  const o = ck as Record<string, unknown>;
  if (typeof ck !== 'object' || Array.isArray(ck) || !Array.isArray(o.columns))
    throw invalidCheckpoint(unit.unitId, 'it is not a PostgreSQL source checkpoint');
  if ((o.columns as unknown[]).join('\u0000') !== names.join('\u0000')) {
    throw invalidCheckpoint(
      unit.unitId,
      `it was taken on cursor columns ${JSON.stringify(o.columns)}, the unit now uses ${JSON.stringify(names)}`,
    );
  }
  let r: Resume;
  if (o.version === 2) {
    const okValues = o.values === null || (strings(o.values) && o.values.length === names.length);
    const okFrom =
      o.from === null || (strings(o.from) && o.from.length >= 1 && o.from.length <= names.length && o.values !== null);
    if (!okValues || !okFrom || typeof o.seen !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(o.seen))
      throw invalidCheckpoint(unit.unitId, 'its version-2 fields are malformed');
    r = {
      values: o.values as string[] | null,
      from: o.from as string[] | null,
      key: null,
      seen: o.seen,
      legacy: false,
    };
    if (r.values !== null && r.from === null) throw invalidCheckpoint(unit.unitId, 'it has values but no window');
  } else if (o.version === undefined && 'values' in o) {
    // version 1: { columns, values, key }
    if (!strings(o.values) || o.values.length !== names.length) {
      throw invalidCheckpoint(
        unit.unitId,
        `its values ${JSON.stringify(o.values)} are not ${names.length} text value(s) (version 1 wrote no usable value for an infinite cursor)`,
      );
    }
    let key: string[] | null = null;
    const k = o.key as { columns?: unknown; values?: unknown } | null | undefined;
    if (k) {
      const keys = unit.key.map((c) => c.name);
      if (
        !Array.isArray(k.columns) ||
        k.columns.join('\u0000') !== keys.join('\u0000') ||
        !strings(k.values) ||
        k.values.length !== keys.length
      ) {
        throw invalidCheckpoint(
          unit.unitId,
          `its key columns ${JSON.stringify(k.columns)} differ from ${JSON.stringify(keys)}`,
        );
      }
      key = k.values;
    }
    r = { values: o.values, from: null, key, seen: '', legacy: true };
  } else {
    throw invalidCheckpoint(unit.unitId, `its format (version ${JSON.stringify(o.version ?? null)}) is unknown`);
  }
  // every value must read back as the column's type (e.g. '' for an infinite cursor of version 1 does not)
  const p = new Params();
  const casts: string[] = [];
  for (const [vals, cols] of [
    [r.values, unit.cursor],
    [r.from, unit.cursor],
    [r.key, unit.key],
  ] as const) {
    if (vals) for (let i = 0; i < vals.length; i++) casts.push(p.add(vals[i], cols[i]));
  }
  if (casts.length) {
    try {
      await client.query('SAVEPOINT nucleus_ck');
      await client.query({ text: `SELECT ${casts.join(', ')}`, values: p.values, rowMode: 'array' });
      await client.query('RELEASE SAVEPOINT nucleus_ck');
    } catch (err) {
      const code = (err as { code?: string })?.code ?? '';
      if (!code.startsWith('22')) throw err;
      throw invalidCheckpoint(unit.unitId, `a value does not read as its column's type: ${(err as Error).message}`);
    }
  }
  return r;
}

/** `value - lag` in the column's type, as SQL (undefined: lag is not supported for this type). */
function lagExpr(c: ColumnInfo, value: string, lag: string): string | undefined {
  switch (c.typname) {
    case 'timestamp':
    case 'timestamptz':
      return `(CAST(${value} AS ${c.basetype}) - CAST(${lag} AS interval))`;
    case 'date':
      return `(CAST(${value} AS date) - CAST(${lag} AS interval))::date`;
    case 'int2':
      return `GREATEST(CAST(${value} AS numeric) - CAST(${lag} AS numeric), -32768)::int2`;
    case 'int4':
      return `GREATEST(CAST(${value} AS numeric) - CAST(${lag} AS numeric), -2147483648)::int4`;
    case 'int8':
      return `GREATEST(CAST(${value} AS numeric) - CAST(${lag} AS numeric), -9223372036854775808)::int8`;
    case 'numeric':
      return `(CAST(${value} AS numeric) - CAST(${lag} AS numeric))`;
    case 'float4':
    case 'float8':
      return `(CAST(${value} AS float8) - CAST(${lag} AS float8))::${c.typname}`;
    default:
      return undefined;
  }
}

const timeLike = (c: ColumnInfo) => ['timestamp', 'timestamptz', 'date'].includes(c.typname);

/**
 * The position this run reaches, in the current snapshot: the greatest regular cursor tuple, the new window start
 * (the tuple itself, or its first column minus `lag`, never below the previous window) and the fingerprints of every
 * row in the window and of every NULL/infinite row.
 */
async function computeReach(
  client: pg.PoolClient,
  unit: Unit,
  r: Resume | null,
  ctx: IngestionContext,
): Promise<Reach> {
  const text = (cols: ColumnInfo[]) => cols.map((c) => `${col(c)}::text`).join(', ');
  let p = new Params();
  const top = await client.query({
    text: `SELECT ${text(unit.cursor)} FROM ${unit.table} t WHERE ${regular(unit)} AND ${afterResume(unit, r, p)}
      ORDER BY ${unit.cursor.map((c) => `${col(c)} DESC`).join(', ')} LIMIT 1`,
    values: p.values,
    rowMode: 'array',
  });
  const upper: string[] | null = top.rows.length ? (top.rows[0] as string[]) : (r?.values ?? null);
  let from: string[] | null = upper;
  if (upper && unit.lag !== undefined) {
    const c = unit.cursor[0];
    const lag = typeof unit.lag === 'number' ? (timeLike(c) ? `${unit.lag} seconds` : String(unit.lag)) : unit.lag;
    p = new Params();
    let expr = lagExpr(c, p.raw(upper[0]), p.raw(lag))!;
    if (r?.from) expr = `GREATEST(${expr}, ${p.add(r.from[0], c)})`;
    try {
      await client.query('SAVEPOINT nucleus_lag');
      const res = await client.query({ text: `SELECT (${expr})::text`, values: p.values, rowMode: 'array' });
      await client.query('RELEASE SAVEPOINT nucleus_lag');
      from = [res.rows[0][0] as string];
    } catch (err) {
      const code = (err as { code?: string })?.code ?? '';
      if (!code.startsWith('22')) throw err;
      throw new IngestError(
        'config_invalid',
        `Unit ${JSON.stringify(unit.unitId)}: \`lag\` ${JSON.stringify(unit.lag)} does not apply to ${JSON.stringify(c.name)} (${c.formatted}): ${(err as Error).message}`,
        {
          cause: err,
          details: { unitId: unit.unitId, issues: [`units.${unit.unitId}.lag: ${(err as Error).message}`] },
        },
      );
    }
  }
  let reach = await fingerprints(client, unit, upper, from);
  const lagged = from !== upper;
  if (reach.seenRows > unit.boundaryMaxRows && lagged && from && upper) {
    // the lag window is too large for the checkpoint: keep only the ties at the greatest value
    ctx?.logger?.warn(
      'PostgresSource: the lag window holds more rows than boundaryMaxRows; this run keeps only the ties',
      {
        unitId: unit.unitId,
        rows: reach.seenRows,
        boundaryMaxRows: unit.boundaryMaxRows,
      },
    );
    from = upper;
    reach = await fingerprints(client, unit, upper, from);
  }
  if (reach.seenRows > unit.boundaryMaxRows) {
    ctx?.logger?.warn(
      'PostgresSource: the rows tying with the greatest cursor value (or with a NULL/infinite cursor) exceed boundaryMaxRows; the checkpoint keeps them all (8 bytes each); a finer cursor keeps it small',
      { unitId: unit.unitId, rows: reach.seenRows, boundaryMaxRows: unit.boundaryMaxRows },
    );
  }
  return reach;
}

async function fingerprints(
  client: pg.PoolClient,
  unit: Unit,
  upper: string[] | null,
  from: string[] | null,
): Promise<Reach> {
  const p = new Params();
  const window =
    upper && from
      ? `(${regular(unit)} AND ${compare(unit.cursor, '>=', from, p)} AND ${compare(unit.cursor, '<=', upper, p)})`
      : 'FALSE';
  const res = await client.query({
    text: `SELECT translate(encode(coalesce(string_agg(fp, ''::bytea ORDER BY fp), ''::bytea), 'base64'), E'\\n', ''), count(*)::int8::text
      FROM (SELECT ${fingerprint(unit)} AS fp FROM ${unit.table} t WHERE ${window} OR ${special(unit)}) s`,
    values: p.values,
    rowMode: 'array',
  });
  return { upper, from, seen: res.rows[0][0] as string, seenRows: Number(res.rows[0][1]) };
}

/**
 * The plan's boundary fingerprints split by primary-key range: range i is (cuts[i-1], cuts[i]] (the first also takes
 * NULL keys), so range = number of cuts below the key.
 */
async function boundaryByRange(client: pg.PoolClient, unit: Unit, reach: Reach, cuts: string[]): Promise<string[]> {
  const k = unit.key[0];
  const p = new Params();
  const window =
    reach.upper && reach.from
      ? `(${regular(unit)} AND ${compare(unit.cursor, '>=', reach.from, p)} AND ${compare(unit.cursor, '<=', reach.upper, p)})`
      : 'FALSE';
  const list = p.raw(cuts);
  const res = await client.query({
    text: `SELECT r, translate(encode(string_agg(fp, ''::bytea ORDER BY fp), 'base64'), E'\\n', '')
      FROM (SELECT ${fingerprint(unit)} AS fp, CASE WHEN ${col(k)} IS NULL THEN 0 ELSE
        (SELECT count(*) FROM unnest(CAST(${list} AS ${castType(k)}[])) AS c(v) WHERE c.v < ${col(k)}) END AS r
        FROM ${unit.table} t WHERE ${window} OR ${special(unit)}) s GROUP BY r`,
    values: p.values,
    rowMode: 'array',
  });
  const out: string[] = Array.from({ length: cuts.length + 1 }, () => '');
  for (const [r, b64] of res.rows as [string, string][]) out[Number(r)] = b64;
  return out;
}

function toCheckpoint(unit: Unit, reach: Reach): PostgresCheckpoint {
  return {
    version: 2,
    columns: unit.cursor.map((c) => c.name),
    values: reach.upper,
    from: reach.from,
    seen: reach.seen,
    seenRows: reach.seenRows,
  };
}

/** Rows the boundary part of a planned slice would export now. */
async function countBoundary(client: pg.PoolClient, unit: Unit, r: Resume | null, b: SliceBounds): Promise<number> {
  const { text, values } = selectSql(unit, r, { ...b, main: false });
  const res = await client.query({ text: `SELECT count(*)::int8::text FROM (${text}) x`, values, rowMode: 'array' });
  return Number(res.rows[0][0]);
}

/** Rows of the main part (below the window), counted up to `cap`. */
async function countMain(
  client: pg.PoolClient,
  unit: Unit,
  r: Resume | null,
  b: SliceBounds,
  cap: number,
): Promise<number> {
  const { text, values } = selectSql(unit, r, { ...b, main: true, boundary: false });
  const res = await client.query({
    text: `SELECT count(*)::int8::text FROM (SELECT 1 FROM (${text}) x LIMIT ${cap}) y`,
    values,
    rowMode: 'array',
  });
  return Number(res.rows[0][0]);
}

/** n−1 distinct primary-key cut points that split the main part into n ranges of about equal row counts. */
async function splitPoints(
  client: pg.PoolClient,
  unit: Unit,
  r: Resume | null,
  b: SliceBounds,
  n: number,
  rows: number,
): Promise<string[]> {
  const k = unit.key[0];
  const p = new Params();
  // every row the slices may export: after the previous position or in its window, and the special rows
  const where = unit.cursor.length
    ? [
        `((${regular(unit)} AND (${afterResume(unit, r, p)} OR ${inOldWindow(unit, r, p)}))${b.boundary ? ` OR ${special(unit)}` : ''})`,
      ]
    : [];
  where.push(`${col(k)} IS NOT NULL`);
  const fractions = p.raw(Array.from({ length: n - 1 }, (_, i) => (i + 1) / n));
  const sample =
    rows > 2_000_000 ? ` TABLESAMPLE SYSTEM (${Math.max(0.01, Math.min(100, (200_000 * 100) / rows)).toFixed(4)})` : '';
  const text = `SELECT DISTINCT v FROM unnest((SELECT percentile_disc(${fractions}::float8[]) WITHIN GROUP (ORDER BY ${col(k)})
      FROM ${unit.table} t${sample} WHERE ${where.join(' AND ')})) AS u(v) WHERE v IS NOT NULL ORDER BY v`;
  const res = await client.query({
    text: `SELECT s.v::text AS cut FROM (${text}) s ORDER BY s.v`,
    values: p.values,
    rowMode: 'array',
  });
  return res.rows.map((row: unknown[]) => row[0] as string);
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
