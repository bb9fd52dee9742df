import type { IngestionContext } from '../contracts/context.js';
import type { EndpointDescriptor } from '../contracts/endpoint.js';
import type { EncodedBatch, ReadRequest, SliceSpec } from '../contracts/source-endpoint.js';
import type { Row } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { dedupeFilter, FP } from '../sql/boundary.js';
import { SqlSource } from '../sql/source-base.js';
import {
  type LagStart,
  rowBuilder,
  type SliceQuery,
  type SourceDialect,
  type SourceUnit,
} from '../sql/source-dialect.js';
import { throwIfAborted } from '../util/abort.js';
import { describeMySqlTable, describeMySqlTables, type MySqlColumnInfo, mySqlRecordSchema } from './catalog.js';
import { endPool, type MySqlEndpointPool, MySqlSession, parseMySqlEndpointOptions } from './connection.js';
import { mySqlDialect } from './dialect.js';
import { loadDataFieldReader, MYSQL_LOAD_DATA_CODEC_ID } from './load-data-codec.js';
import { ndjsonRowWriter } from './ndjson-export.js';
import {
  type MySqlCheckpoint,
  type MySqlSourceConfig,
  type MySqlSourceOptions,
  mySqlSourceConfigSchema,
  mySqlSourceDescriptor,
} from './source-config.js';
import { type CastField, columnDecoder, isFloat4 } from './type-mapping.js';

const DEFAULT_BATCH_BYTES = 16 * 1024 * 1024;
/** Bytes of LOAD DATA text gathered before they are handed to the staging writer. */
const GATHER_BYTES = 64 * 1024;
const q = mySqlDialect.quote;
const asText = { rowsAsArray: true, typeCast: (f: CastField) => f.string() };
/** Sessions left mid-stream: they are destroyed, not rolled back. */
const abandoned = new WeakSet<MySqlSession>();

/** Exact text of a column (what checkpoints and fingerprints hold). */
function textExpr(ref: string, c: MySqlColumnInfo): string {
  if (c.kind === 'binary') return `HEX(${ref})`;
  if (c.kind === 'bit') return `CAST(${ref} AS UNSIGNED)`;
  return `CAST(${ref} AS CHAR)`;
}

/** A parameter compared with a column, cast so that the comparison is exact (never through DOUBLE). */
function cast(param: string, c: MySqlColumnInfo): string {
  switch (c.kind) {
    case 'int':
    case 'bigint':
    case 'year':
      return `CAST(${param} AS ${c.unsigned ? 'UNSIGNED' : 'SIGNED'})`;
    case 'bit':
      return `CAST(${param} AS UNSIGNED)`;
    case 'decimal':
      return `CAST(${param} AS DECIMAL(${c.precision ?? 65},${c.scale ?? 30}))`;
    case 'float':
      return `CAST(${param} AS DOUBLE)`;
    case 'binary':
      return `UNHEX(${param})`;
    default:
      return param;
  }
}

const INTERVAL = /^\s*(\d+)\s*(microsecond|second|minute|hour|day|week|month|year)s?\s*$/i;
const TEMPORAL = new Set(['date', 'datetime', 'timestamp']);
const NUMERIC = new Set(['int', 'bigint', 'decimal', 'float', 'year']);

/** Check a unit's `lag` against its first cursor column; SQL for the window start. @throws IngestError `config_invalid` */
function lagStart(unitId: string, c: MySqlColumnInfo | undefined, lag: string | number): LagStart {
  const bad = (why: string) =>
    new IngestError('config_invalid', `Unit ${JSON.stringify(unitId)}: \`lag\` ${why}`, {
      details: { unitId, issues: [`lag: ${why}`] },
    });
  if (!c) throw bad('needs cursorColumns');
  if (TEMPORAL.has(c.kind)) {
    let interval: string;
    if (typeof lag === 'number') {
      if (!Number.isInteger(lag) || lag < 0) throw bad('in seconds must be a non-negative integer');
      interval = `${lag} SECOND`;
    } else {
      const m = INTERVAL.exec(lag);
      if (!m) throw bad(`${JSON.stringify(lag)} is not an interval such as '15 minutes' or '2 days'`);
      interval = `${m[1]} ${m[2].toUpperCase()}`;
    }
    const typed = (param: string) => `CAST(${param} AS ${c.kind === 'date' ? 'DATE' : 'DATETIME(6)'})`;
    return (p, upper, floor) => {
      const e = `${typed(p.raw(upper))} - INTERVAL ${interval}`;
      return `CAST(${floor === null ? e : `GREATEST(${e}, ${typed(p.raw(floor))})`} AS CHAR)`;
    };
  }
  if (!NUMERIC.has(c.kind))
    throw bad(
      `needs a first cursor column of a date, time or numeric type; ${JSON.stringify(c.name)} is ${c.columnType}`,
    );
  if (typeof lag !== 'number' || !Number.isFinite(lag) || lag < 0)
    throw bad(`on the numeric cursor ${JSON.stringify(c.name)} must be a non-negative number`);
  if (c.kind !== 'decimal' && c.kind !== 'float' && !Number.isInteger(lag))
    throw bad(`on the integer cursor ${JSON.stringify(c.name)} must be an integer`);
  const scale = c.kind === 'decimal' ? (c.scale ?? 30) : 0;
  const typed = (param: string) =>
    c.kind === 'float' ? `CAST(${param} AS DOUBLE)` : `CAST(${param} AS DECIMAL(65,${scale}))`;
  return (p, upper, floor) => {
    let e = `${typed(p.raw(upper))} - ${typed(p.raw(String(lag)))}`;
    if (c.unsigned) e = `GREATEST(${e}, 0)`;
    return `CAST(${floor === null ? e : `GREATEST(${e}, ${typed(p.raw(floor))})`} AS CHAR)`;
  };
}

/** Column names mysql2 refuses in a result (it would close the connection): read under an alias. */
const MYSQL2_REFUSED = new Set([
  '__proto__',
  '__defineGetter__',
  '__defineSetter__',
  '__lookupGetter__',
  '__lookupSetter__',
]);

/** The name a column is read under (its select-list alias): its own, or `#name` for one mysql2 refuses. */
function wireName(name: string): string {
  return MYSQL2_REFUSED.has(name) ? `#${name}` : name;
}

/**
 * `values` (parallel to `columns`) by the name each column is read under.
 * @throws IngestError `source_failed` when two columns are read under one name (`__proto__` and `#__proto__`).
 */
function byWireName<T>(columns: ReadonlyArray<{ name: string }>, values: T[]): Map<string, T> {
  const out = new Map<string, T>();
  for (let i = 0; i < columns.length; i++) {
    const w = wireName(columns[i].name);
    if (out.has(w))
      throw new IngestError(
        'source_failed',
        `MySqlSource cannot read the columns ${JSON.stringify(w)} and ${JSON.stringify(columns[i].name)} of one table together: the client library refuses the name ${JSON.stringify(columns[i].name)} in a result, and its alias is the other column's name`,
        { retryable: false, details: { column: columns[i].name } },
      );
    out.set(w, values[i]);
  }
  return out;
}

/** Warns once per read that zero dates were read as NULL. */
function zeroReporter(unit: SourceUnit<MySqlColumnInfo>, ctx: IngestionContext): (column: string) => void {
  let reported = false;
  return (column: string) => {
    if (reported) return;
    reported = true;
    queueMicrotask(() =>
      ctx?.logger?.warn('MySqlSource: zero dates read as null (zeroDates: null)', { unitId: unit.unitId, column }),
    );
  };
}

/**
 * The rows of one query as arrays of the unit's columns, streamed with backpressure; the rows a client-side dedupe
 * drops are skipped. Stopped early (abort, error, consumer break), the connection is destroyed: the rest of the
 * result cannot be drained cheaply.
 */
async function* rawRows(
  s: MySqlSession,
  query: SliceQuery,
  typeCast: (f: CastField, next: () => unknown) => unknown,
  highWaterMark: number,
  n: number,
): AsyncGenerator<unknown[]> {
  const keep = query.dedupe && dedupeFilter(query.dedupe);
  const stream = s.stream(query.text, query.values, typeCast, highWaterMark);
  let done = false;
  try {
    for await (const r of stream as AsyncIterable<unknown[]>) {
      if (keep && !keep(r[n] as string)) continue;
      yield keep ? r.slice(0, n) : r;
    }
    done = true;
  } finally {
    if (!done) {
      s.poison();
      abandoned.add(s);
      try {
        stream.destroy();
      } catch {
        // already closed
      }
    }
  }
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

/** MySQL's and MariaDB's answers for the shared SQL source. */
function mySqlSourceDialect(
  config: MySqlSourceConfig,
  { pool, owned }: MySqlEndpointPool,
): SourceDialect<MySqlColumnInfo, MySqlSession> {
  const zeroDates = config.zeroDates ?? 'null';
  const typeCast = (unit: SourceUnit<MySqlColumnInfo>, ctx: IngestionContext) => {
    const report = zeroReporter(unit, ctx);
    const decoders = byWireName(
      unit.info.columns,
      unit.info.columns.map((c) => columnDecoder(c, zeroDates, report)),
    );
    return (f: CastField, next: () => unknown) => {
      if (f.name === FP) return f.string();
      const d = decoders.get(f.name);
      return d ? d(f) : next();
    };
  };
  return {
    ...mySqlDialect,
    tupleCompare: 'expanded',
    trustEstimate: false,
    connect: (what, ctx) => MySqlSession.open(pool, what, { endpointId: ctx?.endpointId }),
    async begin(s) {
      await s.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
      await s.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
    },
    async finish(s, ok) {
      if (ok) await s.query('COMMIT');
      else if (!abandoned.has(s)) await s.query('ROLLBACK').catch(() => s.poison());
      s.release(ok);
    },
    async texts(s, sql, values) {
      return (await s.query(sql, values, asText)).rows;
    },
    async describe(s, t) {
      const info = await describeMySqlTable(s, { database: t.schema, name: t.name });
      return info && { ...info, schema: info.database };
    },
    async describeAll(s) {
      return (await describeMySqlTables(s, config.databases)).map((t) => ({ ...t, schema: t.database }));
    },
    recordSchema: (columns, primaryKey) => mySqlRecordSchema(columns, primaryKey, zeroDates === 'null'),
    cast,
    text: textExpr,
    // FLOAT: the text protocol prints 6 significant digits; as a DOUBLE it is the float4 value exactly
    select: (ref, c) => {
      const alias = wireName(c.name);
      if (isFloat4(c)) return `CAST(${ref} AS DOUBLE) AS ${q(alias)}`;
      return alias === c.name ? ref : `${ref} AS ${q(alias)}`;
    },
    sentinels: () => undefined,
    fingerprint: (refs, cols) =>
      `LEFT(MD5(CONCAT_WS(',', ${cols.map((c, i) => `QUOTE(${textExpr(refs[i], c)})`).join(', ')})), 16)`,
    lag: lagStart,
    async splitPoints(s, unit, where, p, n, rows) {
      const k = unit.key[0];
      const ref = `t.${q(k.name)}`;
      if (k.kind === 'int' || k.kind === 'bigint') {
        // integer keys: cut the value range evenly (two index lookups, not a scan)
        const sql = `SELECT CAST(MIN(${ref}) AS CHAR), CAST(MAX(${ref}) AS CHAR) FROM ${unit.table} t WHERE ${where}`;
        const [[min, max]] = await this.texts(s, sql, p.values);
        if (min === null || max === null) return [];
        const lo = BigInt(min);
        const span = BigInt(max) - lo;
        const cuts = new Set<bigint>();
        for (let i = 1; i < n; i++) cuts.add(lo + (span * BigInt(i)) / BigInt(n));
        return [...cuts]
          .filter((c) => c < lo + span)
          .sort((a, b) => (a < b ? -1 : 1))
          .map(String);
      }
      const step = Math.max(1, Math.floor(rows / n));
      const cuts: string[] = [];
      for (let i = 1; i < n; i++) {
        const sql = `SELECT ${textExpr(ref, k)} FROM ${unit.table} t WHERE ${where} ORDER BY ${ref} LIMIT 1 OFFSET ${i * step - 1}`;
        const r = await this.texts(s, sql, p.values);
        if (!r.length) break;
        if (cuts[cuts.length - 1] !== r[0][0]) cuts.push(r[0][0] as string);
      }
      return cuts;
    },
    // batches cut by rows and by `batchMaxBytes`
    async *stream(s, unit, query, ctx, batchRows) {
      const batchBytes = config.batchMaxBytes ?? DEFAULT_BATCH_BYTES;
      const build = rowBuilder(unit.columns.map((c) => c.name));
      const cast = typeCast(unit, ctx);
      let rows: Row[] = [];
      let bytes = 0;
      for await (const r of rawRows(s, query, cast, Math.min(batchRows, 1000), unit.columns.length)) {
        rows.push(build(r));
        bytes += approxBytes(r);
        if (rows.length < batchRows && bytes < batchBytes) continue;
        yield rows;
        rows = [];
        bytes = 0;
      }
      yield rows;
    },
    async close() {
      if (owned) await endPool(pool);
    },
  };
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
 *   row fingerprint, filtered as the rows stream, docs/decisions/0005): rows that tie with it — whatever their key —
 *   or commit late within `lag` are read, rows updated in place are read again, NULL cursors are read once each.
 * - `plan` takes the run's position and window in one snapshot and splits the rows into primary-key ranges of about
 *   `sliceMaxRows` exported concurrently, each with its part of the window.
 * - `readEncoded('mysql-tsv', …)` stages a planned slice as LOAD DATA text ({@link mySqlLoadDataCodec}), and
 *   `readEncoded('ndjson', …)` as the NDJSON lines the row path stages, without row objects.
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
export class MySqlSource extends SqlSource<MySqlColumnInfo, MySqlSession> {
  declare readonly descriptor: EndpointDescriptor<MySqlSourceConfig>;
  readonly #zeroDates: 'null' | 'error';

  constructor(options: MySqlSourceOptions) {
    const { config, connection } = parseMySqlEndpointOptions('MySqlSource', mySqlSourceConfigSchema, options);
    super(
      mySqlSourceDialect(config, connection),
      config,
      { name: 'MySqlSource', requireCursor: false, emptyBatch: true },
      mySqlSourceDescriptor,
    );
    this.#zeroDates = config.zeroDates ?? 'null';
  }

  /**
   * Pass-through read of one planned slice as LOAD DATA text (codec `mysql-tsv`, {@link mySqlLoadDataCodec}): every
   * value goes from the server's wire text (hex for binary columns, binary digits for BIT) into its escaped field,
   * with no row object and no value conversion. For `ndjson`, each value's wire text becomes the JSON text the row
   * path's codec writes for it, and the staged lines are the row path's byte for byte — without row objects
   * (docs/decisions/0008-transcoded-row-paths.md). `undefined` for another codec or an unplanned read.
   */
  readEncoded(
    codec: string,
    req: ReadRequest<MySqlCheckpoint> & { slice: SliceSpec },
    ctx: IngestionContext,
  ): AsyncIterable<EncodedBatch> | undefined {
    const b = req.slice?.bounds as { planned?: unknown; v?: unknown } | undefined;
    if (codec !== MYSQL_LOAD_DATA_CODEC_ID && codec !== 'ndjson') return undefined;
    if (!b || typeof b !== 'object' || (!b.planned && b.v !== 2)) return undefined;
    if (codec === 'ndjson')
      ctx?.logger?.debug?.(
        `MySqlSource.readEncoded of ${JSON.stringify(req.unitId)}: server text written as ndjson, no row objects`,
        {
          slice: req.slice.index,
          codec,
        },
      );
    return this.#readEncoded(codec, req, ctx);
  }

  async *#readEncoded(codec: string, req: ReadRequest<MySqlCheckpoint> & { slice: SliceSpec }, ctx: IngestionContext) {
    const what = `MySqlSource.readEncoded of ${JSON.stringify(req.unitId)} (slice ${req.slice.index})`;
    const s = await this.open(ctx, what);
    let done = false;
    try {
      await this.sql.begin(s);
      const { unit, queries } = await this.prepareRead(s, req, ctx);
      const report = zeroReporter(unit, ctx);
      // LOAD DATA text: fields joined by tabs; NDJSON: each field's JSON text, joined as `encodeRow` joins a row
      let readers: Map<string, (f: CastField) => string>;
      let lineOf: (r: unknown[]) => string;
      if (codec === 'ndjson') {
        const w = ndjsonRowWriter(unit.columns, unit.schema, this.#zeroDates, report);
        readers = byWireName(unit.columns, w.readers);
        lineOf = w.line;
      } else {
        readers = byWireName(
          unit.columns,
          unit.columns.map((c) => loadDataFieldReader(c, this.#zeroDates, report)),
        );
        lineOf = (r) => r.join('\t');
      }
      const typeCast = (f: CastField) => (f.name === FP ? f.string() : readers.get(f.name)!(f));
      let first = true;
      let out = '';
      const batch = (): EncodedBatch => {
        const bytes = Buffer.from(out, 'utf8');
        out = '';
        const b = first ? { bytes, schema: unit.schema } : { bytes };
        first = false;
        return b;
      };
      throwIfAborted(ctx?.signal, what);
      for (const query of queries) {
        for await (const r of rawRows(s, query, typeCast, 1000, unit.columns.length)) {
          out += `${lineOf(r)}\n`;
          if (out.length < GATHER_BYTES) continue;
          yield batch();
          throwIfAborted(ctx?.signal, what);
        }
      }
      if (out || first) yield batch();
      await this.sql.finish(s, true);
      done = true;
    } catch (err) {
      if (IngestError.is(err)) throw err;
      throw mySqlDialect.wrap(err, 'source_failed', `${what} failed`, {
        unitId: req.unitId,
        endpointId: ctx?.endpointId,
        runId: ctx?.runId,
        slice: req.slice.index,
      });
    } finally {
      if (!done) await this.sql.finish(s, false);
    }
  }
}
