import type { IngestionContext } from '../contracts/context.js';
import type { UnitMetadata } from '../contracts/endpoint.js';
import type {
  EncodedBatch,
  ExportPlan,
  ReadRequest,
  SliceSpec,
  SourceBatch,
  SourceEndpoint,
} from '../contracts/source-endpoint.js';
import type { Json, RecordSchema, Row, Value } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { throwIfAborted } from '../util/abort.js';
import {
  type BoundaryBounds,
  boundaryQueries,
  dedupeFilter,
  fingerprintExpr,
  type Lag,
  mainWhere,
  paramExpr,
  parseLag,
  planBoundary,
  resumeFrom,
  textExpr,
} from './boundary.js';
import {
  describeMySqlTable,
  describeMySqlTables,
  type MySqlColumnInfo,
  type MySqlTableInfo,
  mySqlRecordSchema,
} from './catalog.js';
import { endPool, type MySqlPoolLike, MySqlSession, parseMySqlEndpointOptions } from './connection.js';
import { wrapMySqlError } from './errors.js';
import { formatMySqlTableName, mySqlQualifiedName, parseMySqlTableName, quoteMySqlIdentifier } from './identifiers.js';
import { loadDataFieldReader, MYSQL_LOAD_DATA_CODEC_ID } from './load-data-codec.js';
import {
  type MySqlCheckpoint,
  type MySqlCheckpointV1,
  type MySqlSourceConfig,
  type MySqlSourceOptions,
  type MySqlUnitConfig,
  mySqlSourceConfigSchema,
  mySqlSourceDescriptor,
} from './source-config.js';
import { type CastField, columnDecoder } from './type-mapping.js';

const DEFAULT_BATCH = 10_000;
const DEFAULT_BATCH_BYTES = 16 * 1024 * 1024;
const DEFAULT_SLICE_ROWS = 500_000;
const MAX_SLICES = 1024;
const DEFAULT_BOUNDARY_ROWS = 100_000;
const HIDDEN = '__nucleus_t';
/** Bytes of LOAD DATA text gathered before they are handed to the staging writer. */
const GATHER_BYTES = 64 * 1024;

interface Unit {
  unitId: string;
  info: MySqlTableInfo;
  table: string;
  columns: MySqlColumnInfo[];
  cursor: MySqlColumnInfo[];
  key: MySqlColumnInfo[];
  schema: RecordSchema;
  /** Columns of the row fingerprint: exported, cursor and key columns, in table order. */
  fingerprint: MySqlColumnInfo[];
  lag?: Lag;
  boundaryMaxRows: number;
}

/** One query of a read: its WHERE, and for boundary parts the fingerprint filter. */
interface ReadPart {
  where: string[];
  values: unknown[];
  keep?: (fp: string) => boolean;
}

/**
 * The read window of one slice planned by version 1 (kept so that a run planned before the upgrade resumes with its
 * own window; cursorless units still plan this way): after `lower`, up to `upper` (inclusive), a primary-key range.
 */
interface SliceBounds {
  [k: string]: any;
  planned: boolean;
  lower: MySqlCheckpointV1 | null;
  /** Inclusive upper (cursor, key) tuple; null: only rows whose cursor is NULL. */
  upper: { values: string[]; key: string[] | null } | null;
  /** Also read rows whose cursor columns are NULL (first or full runs). */
  includeNulls: boolean;
  pkGt?: string;
  pkLe?: string;
  empty?: boolean;
}

/**
 * MySQL / MariaDB source (descriptor id `mysql`, family `jdbc`): one instance serves every table of a server; a unit
 * id is `database.table`.
 *
 * - `collectMetadata` reads information_schema: tables and views, columns with their exact types
 *   (`native: { dialect: 'mysql', type: COLUMN_TYPE }`), primary and unique keys, row estimates.
 * - `read` streams rows (`query().stream()`, backpressure) inside one `REPEATABLE READ` transaction
 *   `WITH CONSISTENT SNAPSHOT`: never the whole result in memory; batches are cut by rows and by bytes.
 * - Every connection runs with `time_zone = '+00:00'` (TIMESTAMP values are UTC instants) and a known `sql_mode`;
 *   an injected pool gets its own settings back on release.
 * - Incremental reads resume AT the last cursor value and skip the rows exported there before (boundary dedupe by
 *   row fingerprint, docs/decisions/0005): rows that tie with it — whatever their key — or commit late within `lag`
 *   are read, rows updated in place are read again, NULL cursors are read once each.
 * - `plan` takes the run's position and window in one snapshot, splits the rows below the window into primary-key
 *   ranges of about `sliceMaxRows` exported concurrently, and reads the window in one boundary slice.
 * - `readEncoded('mysql-tsv', …)` stages a planned slice as LOAD DATA text ({@link mySqlLoadDataCodec}).
 *
 * Value types are listed in docs/mysql.md (exact decimals, BIGINT UNSIGNED as bigint, µs timestamps, JSON as written).
 *
 * @example
 * ```ts
 * import { MySqlSource } from '@nucleus/ingestion/mysql';
 * const source = new MySqlSource({
 *   connectionString: 'mysql://reader:secret@db:3306/shop',
 *   units: { 'shop.orders': { cursorColumns: ['updated_at'] } },
 * });
 * ```
 * @throws IngestError `config_invalid` for bad options; reads throw `source_failed` (retryable for connection errors).
 * @public
 */
export class MySqlSource implements SourceEndpoint<MySqlCheckpoint> {
  readonly descriptor = mySqlSourceDescriptor;
  readonly #config: MySqlSourceConfig;
  readonly #pool: MySqlPoolLike;
  readonly #ownsPool: boolean;
  #closed = false;

  constructor(options: MySqlSourceOptions) {
    const { config, connection } = parseMySqlEndpointOptions('MySqlSource', mySqlSourceConfigSchema, options);
    this.#config = config;
    this.#pool = connection.pool;
    this.#ownsPool = connection.owned;
  }

  /** Tables and views with their schemas, keys and row estimates. @throws IngestError `source_failed` */
  async collectMetadata(ctx: IngestionContext): Promise<UnitMetadata[]> {
    const s = await this.#open(ctx, 'MySqlSource.collectMetadata');
    let ok = false;
    try {
      const tables = await describeMySqlTables(s, this.#config.databases);
      ok = true;
      return tables.map((t) => {
        const unitId = formatMySqlTableName(t);
        const cfg = this.#unitConfig(unitId, t);
        const meta: UnitMetadata = {
          unitId,
          title: `${t.database}.${t.name}`,
          kind: t.kind,
          schema: mySqlRecordSchema(t.columns, cfg.primaryKey ?? t.primaryKey, this.#zeroAsNull),
          capabilities: cfg.cursorColumns?.length
            ? ['metadata.preview', 'ingest.full', 'ingest.incremental']
            : ['metadata.preview', 'ingest.full'],
        };
        if (t.estimatedRows !== undefined) meta.estimatedRows = t.estimatedRows;
        if (cfg.cursorColumns?.length) meta.cursorColumns = [...cfg.cursorColumns];
        return meta;
      });
    } catch (err) {
      throw wrapMySqlError(err, 'source_failed', 'MySqlSource.collectMetadata failed', { endpointId: ctx?.endpointId });
    } finally {
      s.release(ok);
    }
  }

  /** Up to `limit` rows of a unit, typed like `read`. @throws IngestError `source_failed`, `not_found` */
  async preview(
    req: { unitId: string; limit: number },
    ctx: IngestionContext,
  ): Promise<{ rows: Row[]; schema?: RecordSchema }> {
    const limit = Math.max(0, Math.min(Math.floor(req.limit), 10_000));
    return this.#inSnapshot(req.unitId, ctx, 'preview', async (s, unit) => {
      const { rows } = await s.query(
        `SELECT ${unit.columns.map((c) => quoteMySqlIdentifier(c.name)).join(', ')} FROM ${unit.table} LIMIT ${limit}`,
        [],
        { rowsAsArray: true, typeCast: this.#typeCast(unit, ctx) },
      );
      const build = rowBuilder(unit.columns.map((c) => c.name));
      return { rows: (rows as unknown[][]).map((r) => build(r)), schema: unit.schema };
    });
  }

  /**
   * Fix the upper (cursor, key) tuple of the run (the plan's checkpoint) and split a table larger than
   * `hints.sliceMaxRows` into primary-key ranges (single-column primary keys).
   * @throws IngestError `source_failed`, `config_invalid` (checkpoint from other cursor columns)
   */
  async plan(req: ReadRequest<MySqlCheckpoint>, ctx: IngestionContext): Promise<ExportPlan<MySqlCheckpoint>> {
    return this.#inSnapshot(req.unitId, ctx, 'plan', async (s, unit) => {
      const sliceRows = req.hints?.sliceMaxRows ?? DEFAULT_SLICE_ROWS;
      if (req.mode === 'incremental' && !unit.cursor.length) warnNoCursor(ctx, unit);
      if (!unit.cursor.length) {
        // no cursor: the whole table, in primary-key ranges
        const base: SliceBounds = { planned: true, lower: null, upper: null, includeNulls: true };
        const plan: ExportPlan<MySqlCheckpoint> = {
          slices: [{ index: 0, bounds: base }],
          checkpoint: null as never,
          schema: unit.schema,
        };
        const values: unknown[] = [];
        const where = windowConditions(unit, base, values);
        const rows = await countRows(s, unit, where, values, sliceRows * MAX_SLICES);
        plan.estimatedRows = rows;
        if (unit.key.length !== 1 || rows <= sliceRows) return plan;
        const cuts = await splitPoints(s, unit, where, values, Math.min(MAX_SLICES, Math.ceil(rows / sliceRows)), rows);
        plan.slices = rangeSlices(cuts, (r) => ({ ...base, ...r }));
        return plan;
      }
      const previous =
        req.mode === 'incremental' ? (req.checkpoint as MySqlCheckpoint | MySqlCheckpointV1 | null) : null;
      const resume = await resumeFrom(s, unit, previous);
      const bp = await planBoundary(s, unit, resume, previous, ctx);
      const plan: ExportPlan<MySqlCheckpoint> = { slices: [], checkpoint: bp.checkpoint, schema: unit.schema };
      if (bp.empty || (!bp.main && !bp.boundary)) {
        // nothing new: nothing staged, the checkpoint stays as it was
        plan.slices = [];
        plan.estimatedRows = 0;
        return plan;
      }
      let mainSlices: SliceSpec[] = [];
      let estimate = 0;
      if (bp.main) {
        const main = bp.main;
        const values: unknown[] = [];
        const where = mainWhere(unit, main, values);
        const rows = await countRows(s, unit, where, values, sliceRows * MAX_SLICES);
        estimate += rows;
        if (rows > 0) {
          const cuts =
            unit.key.length === 1 && rows > sliceRows
              ? await splitPoints(s, unit, where, values, Math.min(MAX_SLICES, Math.ceil(rows / sliceRows)), rows)
              : [];
          mainSlices = rangeSlices(cuts, (r) => ({ ...main, ...r }));
        }
      }
      const boundary = bp.boundary!;
      estimate += bp.checkpoint.seenRows;
      plan.slices = [...mainSlices, { index: mainSlices.length, bounds: boundary }];
      plan.estimatedRows = estimate;
      return plan;
    });
  }

  /**
   * Stream a unit (or one planned slice) in batches of `hints.chunkSize` rows (and at most `batchMaxBytes`).
   * Unplanned incremental batches carry the last row's (cursor, key) tuple as their checkpoint.
   * @throws IngestError `source_failed` (retryable for connection errors), `aborted`, `not_found`, `config_invalid`
   */
  async *read(
    req: ReadRequest<MySqlCheckpoint> & { slice?: SliceSpec },
    ctx: IngestionContext,
  ): AsyncIterable<SourceBatch<MySqlCheckpoint>> {
    const what = `MySqlSource.read of ${JSON.stringify(req.unitId)}${req.slice ? ` (slice ${req.slice.index})` : ''}`;
    const s = await this.#open(ctx, what);
    let done = false;
    let stream: any;
    try {
      await s.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
      await s.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
      const unit = await this.#resolve(s, req.unitId);
      const parts: ReadPart[] = [];
      let finalCheckpoint: MySqlCheckpoint | undefined;
      const bounds = req.slice?.bounds as (SliceBounds & { v?: number }) | BoundaryBounds | undefined;
      if (bounds && typeof bounds === 'object' && (bounds as BoundaryBounds).v === 2)
        parts.push(...readParts(unit, bounds as BoundaryBounds));
      else if (bounds && typeof bounds === 'object' && (bounds as SliceBounds).planned) {
        const values: unknown[] = [];
        if (!(bounds as SliceBounds).empty)
          parts.push({ where: windowConditions(unit, bounds as SliceBounds, values), values });
      } else if (!unit.cursor.length) {
        if (req.mode === 'incremental') warnNoCursor(ctx, unit);
        parts.push({ where: [], values: [] });
      } else {
        // unplanned: plan and read every part in this one snapshot
        const previous =
          req.mode === 'incremental' ? (req.checkpoint as MySqlCheckpoint | MySqlCheckpointV1 | null) : null;
        const bp = await planBoundary(s, unit, await resumeFrom(s, unit, previous), previous, ctx);
        finalCheckpoint = bp.checkpoint;
        if (!bp.empty) {
          if (bp.main) parts.push(...readParts(unit, bp.main));
          if (bp.boundary) parts.push(...readParts(unit, bp.boundary));
        }
      }
      const batchRows = req.hints?.chunkSize ?? this.#config.batchSize ?? DEFAULT_BATCH;
      const batchBytes = this.#config.batchMaxBytes ?? DEFAULT_BATCH_BYTES;
      const names = unit.columns.map((c) => c.name);
      const build = rowBuilder(names);
      const nCols = names.length;
      const typeCast = this.#typeCast(unit, ctx);
      let rows: Row[] = [];
      let bytes = 0;
      let first = true;
      const flush = (final: boolean): SourceBatch<MySqlCheckpoint> => {
        const out: SourceBatch<MySqlCheckpoint> = { rows };
        if (first) out.schema = unit.schema;
        first = false;
        if (final && finalCheckpoint) out.checkpoint = finalCheckpoint;
        rows = [];
        bytes = 0;
        return out;
      };
      throwIfAborted(ctx?.signal, what);
      for (const part of parts) {
        const cols = unit.columns.map((c) => quoteMySqlIdentifier(c.name));
        if (part.keep) cols.push(`${fingerprintExpr(unit)} AS ${HIDDEN}fp`);
        let text = `SELECT ${cols.join(', ')} FROM ${unit.table}`;
        if (part.where.length) text += ` WHERE ${part.where.join(' AND ')}`;
        stream = s.stream(text, part.values, typeCast, Math.min(batchRows, 1000));
        for await (const r of stream as AsyncIterable<unknown[]>) {
          if (part.keep && !part.keep(r[nCols] as string)) continue;
          rows.push(build(r));
          bytes += approxBytes(r);
          if (rows.length >= batchRows || bytes >= batchBytes) {
            yield flush(false);
            throwIfAborted(ctx?.signal, what);
          }
        }
        stream = undefined;
      }
      if (rows.length || first || finalCheckpoint) yield flush(true);
      await s.query('COMMIT');
      done = true;
    } catch (err) {
      if (IngestError.is(err)) throw err;
      throw wrapMySqlError(err, 'source_failed', `${what} failed`, {
        unitId: req.unitId,
        endpointId: ctx?.endpointId,
        runId: ctx?.runId,
        slice: req.slice?.index,
      });
    } finally {
      if (stream) {
        // stopped early (abort, error, consumer break): the rest of the result cannot be drained cheaply
        s.poison();
        try {
          stream.destroy();
        } catch {
          // already closed
        }
      }
      if (!done && !stream) await s.query('ROLLBACK').catch(() => s.poison());
      s.release(done);
    }
  }

  /**
   * Pass-through read of one planned slice as LOAD DATA text (codec `mysql-tsv`, {@link mySqlLoadDataCodec}): every
   * value goes from the server's wire text (hex for binary columns, binary digits for BIT) into its escaped field,
   * with no row object and no value conversion. `undefined` for another codec or an unplanned read.
   */
  readEncoded(
    codec: string,
    req: ReadRequest<MySqlCheckpoint> & { slice: SliceSpec },
    ctx: IngestionContext,
  ): AsyncIterable<EncodedBatch> | undefined {
    if (codec !== MYSQL_LOAD_DATA_CODEC_ID) return undefined;
    const bounds = req.slice?.bounds as (SliceBounds & { v?: number }) | BoundaryBounds | undefined;
    if (!bounds || typeof bounds !== 'object') return undefined;
    // the boundary slice filters rows by fingerprint: it takes the row path
    if ((bounds as BoundaryBounds).v === 2 && (bounds as BoundaryBounds).part === 'boundary') return undefined;
    if ((bounds as BoundaryBounds).v !== 2 && !(bounds as SliceBounds).planned) return undefined;
    return this.#readEncoded(req, bounds as SliceBounds | BoundaryBounds, ctx);
  }

  async *#readEncoded(
    req: ReadRequest<MySqlCheckpoint> & { slice: SliceSpec },
    bounds: SliceBounds | BoundaryBounds,
    ctx: IngestionContext,
  ): AsyncGenerator<EncodedBatch> {
    const what = `MySqlSource.readEncoded of ${JSON.stringify(req.unitId)} (slice ${req.slice.index})`;
    const s = await this.#open(ctx, what);
    let done = false;
    let stream: any;
    try {
      await s.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
      await s.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
      const unit = await this.#resolve(s, req.unitId);
      let first = true;
      const values: unknown[] = [];
      let where: string[] | undefined;
      if ((bounds as BoundaryBounds).v === 2) {
        const b = bounds as BoundaryBounds;
        if (b.part === 'main') where = mainWhere(unit, b, values);
      } else if (!(bounds as SliceBounds).empty) where = windowConditions(unit, bounds as SliceBounds, values);
      if (where) {
        let text = `SELECT ${unit.columns.map((c) => quoteMySqlIdentifier(c.name)).join(', ')} FROM ${unit.table}`;
        if (where.length) text += ` WHERE ${where.join(' AND ')}`;
        const report = this.#zeroReporter(unit, ctx);
        const readers = new Map<string, (f: CastField) => string>();
        for (const c of unit.columns)
          readers.set(c.name, loadDataFieldReader(c, this.#config.zeroDates ?? 'null', report));
        const typeCast = (f: CastField) => readers.get(f.name)!(f);
        stream = s.stream(text, values, typeCast, 1000);
        throwIfAborted(ctx?.signal, what);
        let out = '';
        for await (const r of stream as AsyncIterable<string[]>) {
          out += `${r.join('\t')}\n`;
          if (out.length < GATHER_BYTES) continue;
          const bytes = Buffer.from(out, 'utf8');
          out = '';
          yield first ? { bytes, schema: unit.schema } : { bytes };
          first = false;
          throwIfAborted(ctx?.signal, what);
        }
        if (out) {
          const bytes = Buffer.from(out, 'utf8');
          yield first ? { bytes, schema: unit.schema } : { bytes };
          first = false;
        }
        stream = undefined;
      }
      if (first) yield { bytes: new Uint8Array(0), schema: unit.schema };
      await s.query('COMMIT');
      done = true;
    } catch (err) {
      if (IngestError.is(err)) throw err;
      throw wrapMySqlError(err, 'source_failed', `${what} failed`, {
        unitId: req.unitId,
        endpointId: ctx?.endpointId,
        runId: ctx?.runId,
        slice: req.slice.index,
      });
    } finally {
      if (stream) {
        s.poison();
        try {
          stream.destroy();
        } catch {
          // already closed
        }
      }
      if (!done && !stream) await s.query('ROLLBACK').catch(() => s.poison());
      s.release(done);
    }
  }

  /** End the pool the source built from `connectionString` (an injected pool is left open). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ownsPool) await endPool(this.#pool);
  }

  get #zeroAsNull(): boolean {
    return (this.#config.zeroDates ?? 'null') === 'null';
  }

  /** Warns once per read that zero dates were read as NULL. */
  #zeroReporter(unit: Unit, ctx: IngestionContext): (column: string) => void {
    let reported = false;
    return (column: string) => {
      if (reported) return;
      reported = true;
      queueMicrotask(() =>
        ctx?.logger?.warn('MySqlSource: zero dates read as null (zeroDates: null)', {
          unitId: unit.unitId,
          column,
        }),
      );
    };
  }

  #typeCast(unit: Unit, ctx: IngestionContext): (f: CastField, next: () => unknown) => Value {
    const report = this.#zeroReporter(unit, ctx);
    const decoders = new Map<string, (f: CastField) => Value>();
    for (const c of unit.info.columns) decoders.set(c.name, columnDecoder(c, this.#config.zeroDates ?? 'null', report));
    return (f, next) => {
      if (f.name.startsWith(HIDDEN)) return f.string();
      const d = decoders.get(f.name);
      return d ? d(f) : (next() as Value);
    };
  }

  #assertOpen(): void {
    if (this.#closed) throw new IngestError('config_invalid', 'MySqlSource already closed');
  }

  async #open(ctx: IngestionContext, what: string): Promise<MySqlSession> {
    this.#assertOpen();
    throwIfAborted(ctx?.signal, what);
    return MySqlSession.open(this.#pool, what, { endpointId: ctx?.endpointId });
  }

  async #inSnapshot<R>(
    unitId: string,
    ctx: IngestionContext,
    op: string,
    fn: (s: MySqlSession, unit: Unit) => Promise<R>,
  ): Promise<R> {
    const what = `MySqlSource.${op} of ${JSON.stringify(unitId)}`;
    const s = await this.#open(ctx, what);
    let ok = false;
    try {
      await s.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
      await s.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
      const unit = await this.#resolve(s, unitId);
      const out = await fn(s, unit);
      await s.query('COMMIT');
      ok = true;
      return out;
    } catch (err) {
      if (IngestError.is(err)) throw err;
      throw wrapMySqlError(err, 'source_failed', `${what} failed`, { unitId, endpointId: ctx?.endpointId });
    } finally {
      if (!ok) await s.query('ROLLBACK').catch(() => s.poison());
      s.release(ok);
    }
  }

  #unitConfig(unitId: string, name: { database: string; name: string }): MySqlUnitConfig {
    const units = this.#config.units ?? {};
    if (Object.hasOwn(units, unitId)) return units[unitId];
    for (const [id, cfg] of Object.entries(units)) {
      const t = parseMySqlTableName(id);
      if (t.database === name.database && t.name === name.name) return cfg;
    }
    return {};
  }

  async #resolve(s: MySqlSession, unitId: string): Promise<Unit> {
    const name = parseMySqlTableName(unitId);
    const info = await describeMySqlTable(s, name);
    if (!info) {
      throw new IngestError('not_found', `MySqlSource: no table or view ${JSON.stringify(unitId)}`, {
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
    return {
      unitId,
      info,
      table: mySqlQualifiedName(info),
      columns,
      cursor,
      key,
      fingerprint: info.columns.filter((c) => inFingerprint.has(c.name)),
      boundaryMaxRows: cfg.boundaryMaxRows ?? DEFAULT_BOUNDARY_ROWS,
      ...(cfg.lag !== undefined ? { lag: parseLag(unitId, cfg.lag, cursor[0]) } : {}),
      schema: mySqlRecordSchema(
        columns,
        key.map((k) => k.name),
        this.#zeroAsNull,
      ),
    };
  }
}

function warnNoCursor(ctx: IngestionContext, unit: Unit): void {
  ctx?.logger?.warn('MySqlSource: unit has no cursorColumns; an incremental read reads everything', {
    unitId: unit.unitId,
  });
}

/** `(a, b) > (x, y)` spelled out so that the server can use an index, strict or inclusive at the end. */
function tupleCompare(cols: MySqlColumnInfo[], vals: string[], op: '>' | '<=', params: unknown[]): string {
  const strict = op === '>' ? '>' : '<';
  const parts: string[] = [];
  for (let i = 0; i < cols.length; i++) {
    const eqs: string[] = [];
    for (let j = 0; j < i; j++) {
      eqs.push(`${quoteMySqlIdentifier(cols[j].name)} = ${paramExpr(cols[j])}`);
      params.push(vals[j]);
    }
    const last = i === cols.length - 1 && op === '<=' ? '<=' : strict;
    eqs.push(`${quoteMySqlIdentifier(cols[i].name)} ${last} ${paramExpr(cols[i])}`);
    params.push(vals[i]);
    parts.push(`(${eqs.join(' AND ')})`);
  }
  return `(${parts.join(' OR ')})`;
}

function windowConditions(unit: Unit, b: SliceBounds, params: unknown[]): string[] {
  const where: string[] = [];
  if (unit.cursor.length) {
    if (b.lower) {
      const cols = b.lower.key ? [...unit.cursor, ...unit.key] : unit.cursor;
      const vals = b.lower.key ? [...b.lower.values, ...b.lower.key.values] : b.lower.values;
      where.push(tupleCompare(cols, vals, '>', params));
    }
    if (b.planned) {
      const nulls = unit.cursor.map((c) => `${quoteMySqlIdentifier(c.name)} IS NULL`).join(' OR ');
      if (b.upper) {
        const cols = b.upper.key ? [...unit.cursor, ...unit.key] : unit.cursor;
        const vals = b.upper.key ? [...b.upper.values, ...b.upper.key] : b.upper.values;
        const le = tupleCompare(cols, vals, '<=', params);
        where.push(b.includeNulls ? `(${le} OR ${nulls})` : le);
      } else if (b.includeNulls) where.push(`(${nulls})`);
      else where.push('FALSE');
    }
  }
  if (unit.key.length === 1) {
    const k = unit.key[0];
    if (b.pkGt !== undefined) {
      where.push(`${quoteMySqlIdentifier(k.name)} > ${paramExpr(k)}`);
      params.push(b.pkGt);
    }
    if (b.pkLe !== undefined) {
      where.push(`${quoteMySqlIdentifier(k.name)} <= ${paramExpr(k)}`);
      params.push(b.pkLe);
    }
  }
  return where;
}

async function countRows(
  s: MySqlSession,
  unit: Unit,
  where: string[],
  values: unknown[],
  cap: number,
): Promise<number> {
  const { rows } = await s.query(
    `SELECT CAST(COUNT(*) AS CHAR) AS n FROM (SELECT 1 FROM ${unit.table}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} LIMIT ${cap}) s`,
    values,
  );
  return Number(rows[0].n);
}

/** Slices of primary-key ranges between `cuts` (one slice when there are none). */
function rangeSlices(cuts: string[], bounds: (range: { pkGt?: string; pkLe?: string }) => Json): SliceSpec[] {
  return Array.from({ length: cuts.length + 1 }, (_, i) => {
    const r: { pkGt?: string; pkLe?: string } = {};
    if (i > 0) r.pkGt = cuts[i - 1];
    if (i < cuts.length) r.pkLe = cuts[i];
    return { index: i, bounds: bounds(r) };
  });
}

/** The queries of a v2 planned slice. */
function readParts(unit: Unit, b: BoundaryBounds): ReadPart[] {
  if (b.part === 'empty') return [];
  if (b.part === 'main') {
    const values: unknown[] = [];
    return [{ where: mainWhere(unit, b, values), values }];
  }
  return boundaryQueries(unit, b).map((x) => ({
    where: [x.where],
    values: x.values,
    keep: dedupeFilter(x.dedupe, x.fps, unit.unitId),
  }));
}

/** n−1 distinct primary-key cut points splitting the window into n ranges of about equal size. */
async function splitPoints(
  s: MySqlSession,
  unit: Unit,
  window: string[],
  values: unknown[],
  n: number,
  rows: number,
): Promise<string[]> {
  const k = unit.key[0];
  const q = quoteMySqlIdentifier(k.name);
  const where = [...window, `${q} IS NOT NULL`];
  const whereSql = where.join(' AND ');
  if (k.kind === 'int' || k.kind === 'bigint') {
    // integer keys: cut the value range evenly (two index lookups, not a scan)
    const { rows: mm } = await s.query(
      `SELECT CAST(MIN(${q}) AS CHAR) AS lo, CAST(MAX(${q}) AS CHAR) AS hi FROM ${unit.table} WHERE ${whereSql}`,
      values,
    );
    if (mm[0].lo === null) return [];
    const lo = BigInt(mm[0].lo);
    const hi = BigInt(mm[0].hi);
    const span = hi - lo;
    if (span <= 0n) return [];
    const cuts = new Set<string>();
    for (let i = 1; i < n; i++) cuts.add((lo + (span * BigInt(i)) / BigInt(n)).toString());
    return [...cuts].filter((c) => BigInt(c) < hi).sort((a, x) => (BigInt(a) < BigInt(x) ? -1 : 1));
  }
  const step = Math.max(1, Math.floor(rows / n));
  const cuts: string[] = [];
  for (let i = 1; i < n; i++) {
    const { rows: r } = await s.query(
      `SELECT ${textExpr(k)} AS v FROM ${unit.table} WHERE ${whereSql} ORDER BY ${q} LIMIT 1 OFFSET ${i * step - 1}`,
      values,
      { typeCast: (f: CastField) => f.string() },
    );
    if (!r.length) break;
    const v = String(r[0].v);
    if (cuts[cuts.length - 1] !== v) cuts.push(v);
  }
  return cuts;
}

/** Rough bytes of a row, for cutting batches by size. */
function approxBytes(r: unknown[]): number {
  let n = 16;
  for (const v of r) {
    if (typeof v === 'string') n += v.length;
    else if (v instanceof Uint8Array) n += v.byteLength;
    else if (v !== null && typeof v === 'object' && typeof (v as { text?: unknown }).text === 'string')
      n += (v as { text: string }).text.length;
    else n += 8;
  }
  return n;
}

/** Build row objects from array rows; column names are data (`__proto__` stays an own property). */
function rowBuilder(names: string[]): (values: unknown[]) => Row {
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
