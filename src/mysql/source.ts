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
import type { RecordSchema, Row, Value } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { throwIfAborted } from '../util/abort.js';
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
  invalidMySqlCheckpoint,
  type MySqlCheckpoint,
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
}

/** The read window of one slice: after `lower`, up to `upper` (inclusive), optionally a primary-key range. */
interface SliceBounds {
  [k: string]: any;
  planned: boolean;
  lower: MySqlCheckpoint | null;
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
 * - Incremental reads are keyset reads on `cursorColumns` with the primary key as tie-breaker: the checkpoint is
 *   the (cursor, key) tuple of the last row, so rows tying with the last cursor value and a greater key are read.
 * - `plan` fixes the upper (cursor, key) tuple of the run (its checkpoint) and splits tables larger than
 *   `sliceMaxRows` into primary-key ranges exported concurrently.
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
      const incremental = req.mode === 'incremental' && unit.cursor.length > 0;
      if (req.mode === 'incremental' && !unit.cursor.length) warnNoCursor(ctx, unit);
      const lower = incremental ? checkCheckpoint(unit, req.checkpoint) : null;
      const upper = unit.cursor.length ? await probeUpper(s, unit, lower) : undefined;
      const checkpoint = !unit.cursor.length ? null : upper ? toCheckpoint(unit, upper) : lower;
      const base: SliceBounds = {
        planned: true,
        lower,
        upper: unit.cursor.length ? (upper ?? null) : null,
        includeNulls: lower === null,
      };
      if (unit.cursor.length && lower && !upper) base.empty = true;
      const plan: ExportPlan<MySqlCheckpoint> = {
        slices: [{ index: 0, bounds: base }],
        checkpoint,
        schema: unit.schema,
      };
      if (base.empty) {
        plan.estimatedRows = 0;
        return plan;
      }
      const sliceRows = req.hints?.sliceMaxRows ?? DEFAULT_SLICE_ROWS;
      const rows = await countRows(s, unit, base, sliceRows * MAX_SLICES);
      plan.estimatedRows = rows;
      if (unit.key.length !== 1 || rows <= sliceRows) return plan;
      const n = Math.min(MAX_SLICES, Math.ceil(rows / sliceRows));
      const cuts = await splitPoints(s, unit, base, n, rows);
      if (!cuts.length) return plan;
      plan.slices = Array.from({ length: cuts.length + 1 }, (_, i) => {
        const b: SliceBounds = { ...base };
        if (i > 0) b.pkGt = cuts[i - 1];
        if (i < cuts.length) b.pkLe = cuts[i];
        return { index: i, bounds: b };
      });
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
      let bounds: SliceBounds;
      let ordered = false;
      let finalCheckpoint: MySqlCheckpoint | null | undefined;
      const sliceBounds = req.slice?.bounds as SliceBounds | undefined;
      if (sliceBounds && typeof sliceBounds === 'object' && sliceBounds.planned) bounds = sliceBounds;
      else {
        const incremental = req.mode === 'incremental' && unit.cursor.length > 0;
        if (req.mode === 'incremental' && !unit.cursor.length) warnNoCursor(ctx, unit);
        const lower = incremental ? checkCheckpoint(unit, req.checkpoint) : null;
        bounds = { planned: false, lower, upper: null, includeNulls: lower === null };
        ordered = incremental;
        if (unit.cursor.length) {
          const upper = await probeUpper(s, unit, lower);
          finalCheckpoint = upper ? toCheckpoint(unit, upper) : lower;
        }
      }
      if (bounds.empty) {
        await s.query('COMMIT');
        done = true;
        return;
      }
      const { text, values } = selectSql(unit, bounds, ordered);
      const batchRows = req.hints?.chunkSize ?? this.#config.batchSize ?? DEFAULT_BATCH;
      const batchBytes = this.#config.batchMaxBytes ?? DEFAULT_BATCH_BYTES;
      const names = unit.columns.map((c) => c.name);
      const build = rowBuilder(names);
      const nCols = names.length;
      const perRow = ordered && unit.key.length > 0;
      const needFinal = finalCheckpoint !== undefined && finalCheckpoint !== null && !perRow;
      stream = s.stream(text, values, this.#typeCast(unit, ctx), Math.min(batchRows, 1000));
      let rows: Row[] = [];
      let bytes = 0;
      let last: unknown[] | undefined;
      let first = true;
      const flush = (final: boolean): SourceBatch<MySqlCheckpoint> => {
        const out: SourceBatch<MySqlCheckpoint> = { rows };
        if (first) out.schema = unit.schema;
        first = false;
        if (perRow && last) {
          const tuple = last.slice(nCols) as string[];
          out.checkpoint = {
            columns: unit.cursor.map((c) => c.name),
            values: tuple.slice(0, unit.cursor.length),
            key: { columns: unit.key.map((c) => c.name), values: tuple.slice(unit.cursor.length) },
          };
        }
        if (final && needFinal) out.checkpoint = finalCheckpoint!;
        rows = [];
        bytes = 0;
        return out;
      };
      throwIfAborted(ctx?.signal, what);
      for await (const r of stream as AsyncIterable<unknown[]>) {
        rows.push(build(r));
        bytes += approxBytes(r);
        last = r;
        if (rows.length >= batchRows || bytes >= batchBytes) {
          yield flush(false);
          throwIfAborted(ctx?.signal, what);
        }
      }
      if (rows.length || (needFinal && first)) yield flush(true);
      else if (needFinal) yield { rows: [], checkpoint: finalCheckpoint! };
      stream = undefined;
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
    const bounds = req.slice?.bounds as SliceBounds | undefined;
    if (!bounds || typeof bounds !== 'object' || !bounds.planned) return undefined;
    return this.#readEncoded(req, bounds, ctx);
  }

  async *#readEncoded(
    req: ReadRequest<MySqlCheckpoint> & { slice: SliceSpec },
    bounds: SliceBounds,
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
      if (!bounds.empty) {
        const { text, values } = selectSql(unit, bounds, false);
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
    return {
      unitId,
      info,
      table: mySqlQualifiedName(info),
      columns,
      cursor,
      key,
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

function toCheckpoint(unit: Unit, upper: { values: string[]; key: string[] | null }): MySqlCheckpoint {
  return {
    columns: unit.cursor.map((c) => c.name),
    values: upper.values,
    key: upper.key && unit.key.length ? { columns: unit.key.map((c) => c.name), values: upper.key } : null,
  };
}

function checkCheckpoint(unit: Unit, ck: MySqlCheckpoint | null): MySqlCheckpoint | null {
  if (ck === null || ck === undefined) return null;
  const names = unit.cursor.map((c) => c.name);
  if (
    typeof ck !== 'object' ||
    !Array.isArray(ck.columns) ||
    !Array.isArray(ck.values) ||
    ck.values.length !== ck.columns.length ||
    !ck.values.every((v) => typeof v === 'string')
  )
    throw invalidMySqlCheckpoint(unit.unitId, 'expected { columns, values, key }');
  if (ck.columns.join('\u0000') !== names.join('\u0000'))
    throw invalidMySqlCheckpoint(
      unit.unitId,
      `it was taken on cursor columns ${JSON.stringify(ck.columns)}, the unit now uses ${JSON.stringify(names)}`,
    );
  if (ck.key) {
    const keys = unit.key.map((c) => c.name);
    if (
      !Array.isArray(ck.key.values) ||
      ck.key.columns?.join('\u0000') !== keys.join('\u0000') ||
      ck.key.values.length !== keys.length ||
      !ck.key.values.every((v) => typeof v === 'string')
    )
      throw invalidMySqlCheckpoint(
        unit.unitId,
        `its key columns ${JSON.stringify(ck.key.columns)} differ from ${JSON.stringify(keys)}`,
      );
  }
  return ck;
}

/** Exact text of a column (what checkpoints hold). */
function textExpr(c: MySqlColumnInfo): string {
  const q = quoteMySqlIdentifier(c.name);
  if (c.kind === 'binary') return `HEX(${q})`;
  if (c.kind === 'bit') return `CAST(${q} AS UNSIGNED)`;
  return `CAST(${q} AS CHAR)`;
}

/** A parameter compared with a column, cast so that the comparison is exact (never through DOUBLE). */
function paramExpr(c: MySqlColumnInfo): string {
  switch (c.kind) {
    case 'int':
    case 'bigint':
    case 'year':
      return c.unsigned ? 'CAST(? AS UNSIGNED)' : 'CAST(? AS SIGNED)';
    case 'bit':
      return 'CAST(? AS UNSIGNED)';
    case 'decimal':
      return `CAST(? AS DECIMAL(${c.precision ?? 65},${c.scale ?? 30}))`;
    case 'float':
      return 'CAST(? AS DOUBLE)';
    case 'binary':
      return 'UNHEX(?)';
    default:
      // temporal columns convert a constant string to their own type; strings compare in the column's collation
      return '?';
  }
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

function selectSql(unit: Unit, b: SliceBounds, ordered: boolean): { text: string; values: unknown[] } {
  const values: unknown[] = [];
  const where = windowConditions(unit, b, values);
  const cols = unit.columns.map((c) => quoteMySqlIdentifier(c.name));
  if (ordered && unit.key.length) {
    const hidden = [...unit.cursor, ...unit.key];
    for (let i = 0; i < hidden.length; i++) cols.push(`${textExpr(hidden[i])} AS ${HIDDEN}${i}`);
  }
  let text = `SELECT ${cols.join(', ')} FROM ${unit.table}`;
  if (where.length) text += ` WHERE ${where.join(' AND ')}`;
  if (ordered) text += ` ORDER BY ${[...unit.cursor, ...unit.key].map((c) => quoteMySqlIdentifier(c.name)).join(', ')}`;
  return { text, values };
}

/** The greatest (cursor, key) tuple (exact text) after `lower`, or undefined when there is none. */
async function probeUpper(
  s: MySqlSession,
  unit: Unit,
  lower: MySqlCheckpoint | null,
): Promise<{ values: string[]; key: string[] | null } | undefined> {
  const values: unknown[] = [];
  const where = unit.cursor.map((c) => `${quoteMySqlIdentifier(c.name)} IS NOT NULL`);
  where.push(...windowConditions(unit, { planned: false, lower, upper: null, includeNulls: false }, values));
  const cols = [...unit.cursor, ...unit.key];
  const { rows } = await s.query(
    `SELECT ${cols.map((c, i) => `${textExpr(c)} AS ${HIDDEN}${i}`).join(', ')} FROM ${unit.table}
     WHERE ${where.join(' AND ')}
     ORDER BY ${cols.map((c) => `${quoteMySqlIdentifier(c.name)} DESC`).join(', ')} LIMIT 1`,
    values,
    { rowsAsArray: true, typeCast: (f: CastField) => f.string() },
  );
  if (!rows.length) return undefined;
  const r = rows[0] as string[];
  return { values: r.slice(0, unit.cursor.length), key: unit.key.length ? r.slice(unit.cursor.length) : null };
}

async function countRows(s: MySqlSession, unit: Unit, b: SliceBounds, cap: number): Promise<number> {
  const values: unknown[] = [];
  const where = windowConditions(unit, b, values);
  const { rows } = await s.query(
    `SELECT CAST(COUNT(*) AS CHAR) AS n FROM (SELECT 1 FROM ${unit.table}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} LIMIT ${cap}) s`,
    values,
  );
  return Number(rows[0].n);
}

/** n−1 distinct primary-key cut points splitting the window into n ranges of about equal size. */
async function splitPoints(s: MySqlSession, unit: Unit, b: SliceBounds, n: number, rows: number): Promise<string[]> {
  const k = unit.key[0];
  const q = quoteMySqlIdentifier(k.name);
  const values: unknown[] = [];
  const where = [...windowConditions(unit, b, values), `${q} IS NOT NULL`];
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
