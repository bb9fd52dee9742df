import type pg from 'pg';
import type { IngestionContext } from '../contracts/context.js';
import type { EndpointDescriptor } from '../contracts/endpoint.js';
import type { EncodedBatch, ReadRequest, SliceSpec } from '../contracts/source-endpoint.js';
import type { Row } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { SqlSource } from '../sql/source-base.js';
import { type LagStart, rowBuilder, type SourceDialect } from '../sql/source-dialect.js';
import { throwIfAborted } from '../util/abort.js';
import { estimateRowBytes } from '../util/rows.js';
import { type ColumnInfo, describeTable, describeTables, recordSchema } from './catalog.js';
import { type EndpointPool, guardClient, parseEndpointOptions } from './connection.js';
import { copyOutSlice, transcodeCopyText } from './copy-pass-through.js';
import { postgresDialect } from './dialect.js';
import { PG_COPY_CODEC_ID } from './pg-copy-codec.js';
import {
  type PostgresCheckpoint,
  type PostgresSourceConfig,
  type PostgresSourceOptions,
  postgresSourceConfigSchema,
  postgresSourceDescriptor,
} from './source-config.js';
import type { CopyTextColumn } from './transcode.js';
import { exportTranscoder } from './transcoders.js';
import { createTypeParsers } from './type-mapping.js';

/**
 * Session settings that make every text form we parse or fingerprint predictable, local to the read transaction.
 * @internal
 */
export const READ_SETTINGS =
  "SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL TimeZone = 'UTC'; SET LOCAL IntervalStyle = 'postgres'; SET LOCAL bytea_output = 'hex'; SET LOCAL extra_float_digits = 3";

/** About how many rows `splitPoints` samples to cut a large table into slices. */
const SPLIT_SAMPLE_ROWS = 50_000;
const DEFAULT_FETCH_BYTES = 256 * 1024;
/** Rows of the first FETCH, before the row size is known. */
const FIRST_FETCH = 16;

/**
 * The type a parameter is cast to when compared with a column: the column's full type (`character(8)`, `bit(4)`),
 * except where a type modifier would round or truncate the value (numeric, time and timestamp precisions).
 */
function castType(c: ColumnInfo): string {
  return ['numeric', 'timestamp', 'timestamptz', 'time', 'timetz', 'interval'].includes(c.typname)
    ? c.basetype
    : c.formatted;
}

/** `value - lag` in the column's type, as SQL (undefined: lag is not supported for this type). */
function lagExpr(c: ColumnInfo, value: string, lag: string): string | undefined {
  const floor = { int2: '-32768', int4: '-2147483648', int8: '-9223372036854775808' }[c.typname as 'int2'];
  if (floor) return `GREATEST(CAST(${value} AS numeric) - CAST(${lag} AS numeric), ${floor})::${c.typname}`;
  switch (c.typname) {
    case 'timestamp':
    case 'timestamptz':
      return `(CAST(${value} AS ${c.basetype}) - CAST(${lag} AS interval))`;
    case 'date':
      return `(CAST(${value} AS date) - CAST(${lag} AS interval))::date`;
    case 'numeric':
      return `(CAST(${value} AS numeric) - CAST(${lag} AS numeric))`;
    case 'float4':
    case 'float8':
      return `(CAST(${value} AS float8) - CAST(${lag} AS float8))::${c.typname}`;
    default:
      return undefined;
  }
}

/** A multiset of fingerprints from base64: `(fp, n)` rows. */
const fingerprintSet = (param: string) =>
  `(SELECT encode(substring(b FROM g * 8 + 1 FOR 8), 'hex') AS fp, count(*) AS n FROM decode(CAST(${param} AS text), 'base64') AS b, generate_series(0, length(b) / 8 - 1) AS g GROUP BY 1)`;

/** Rows per next FETCH: about `maxBytes` of rows like these, at least 1, at most `maxRows`. */
function nextFetchSize(rows: Row[], maxRows: number, maxBytes: number): number {
  const step = Math.max(1, Math.floor(rows.length / 16));
  let bytes = 0;
  let n = 0;
  for (let i = 0; i < rows.length; i += step, n++) bytes += estimateRowBytes(rows[i]);
  return Math.max(1, Math.min(maxRows, Math.floor(maxBytes / Math.max(1, bytes / n))));
}

/** PostgreSQL's answers for the shared SQL source (also the CDC snapshot's, in its exported snapshot). @internal */
export function postgresSourceDialect(
  config: PostgresSourceConfig,
  { pool, owned }: EndpointPool,
): SourceDialect<ColumnInfo, pg.PoolClient> {
  return {
    ...postgresDialect,
    tupleCompare: 'row',
    trustEstimate: true,
    async connect(what, ctx) {
      try {
        return guardClient(await pool.connect());
      } catch (err) {
        throw wrapConnect(err, what, ctx);
      }
    },
    async begin(client) {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
      await client.query(READ_SETTINGS);
    },
    async finish(client, ok) {
      if (ok) await client.query('COMMIT');
      else await client.query('ROLLBACK').catch(() => {});
      client.release(ok ? undefined : true);
    },
    async texts(client, text, values) {
      return (await client.query({ text, values, rowMode: 'array' })).rows;
    },
    describe: (client, t) => describeTable(client, t),
    describeAll: (client) => describeTables(client, config.schemas),
    recordSchema,
    cast: (param, c) => `CAST(${param} AS ${castType(c)})`,
    text: (ref) => `${ref}::text`,
    sentinels(c) {
      if (['timestamp', 'timestamptz', 'date'].includes(c.typname)) return `'infinity', '-infinity'`;
      if (['numeric', 'float4', 'float8'].includes(c.typname)) return `'NaN', 'Infinity', '-Infinity'`;
      return undefined;
    },
    fingerprint: (refs) => `left(md5(ROW(${refs.join(', ')})::text), 16)`,
    lag(unitId, c, lag): LagStart {
      if (!c || lagExpr(c, '$0', '$0') === undefined) {
        throw new IngestError(
          'config_invalid',
          `Unit ${JSON.stringify(unitId)}: \`lag\` needs a first cursor column of a date, timestamp or numeric type${c ? `, ${JSON.stringify(c.name)} is ${c.formatted}` : ''}`,
          { details: { unitId, issues: ['lag: unsupported cursor type'] } },
        );
      }
      const timeLike = ['timestamp', 'timestamptz', 'date'].includes(c.typname);
      const amount = typeof lag === 'number' ? (timeLike ? `${lag} seconds` : String(lag)) : lag;
      return (p, upper, floor) => {
        const expr = lagExpr(c, p.raw(upper), p.raw(amount))!;
        return `(${floor === null ? expr : `GREATEST(${expr}, ${p.add(floor, c)})`})::text`;
      };
    },
    // Cut points from a block sample of about SPLIT_SAMPLE_ROWS rows (a full-key percentile sorts every key: 0.3 s at
    // 1,000,000 rows, a quarter of the export); the whole key when the table is small or the sample found nothing.
    // The cuts are an estimate either way: they are fixed in the plan, and only the slices' sizes depend on them.
    async splitPoints(client, unit, where, p, n, rows) {
      const k = `t.${postgresDialect.quote(unit.key[0].name)}`;
      const fractions = p.raw(Array.from({ length: n - 1 }, (_, i) => (i + 1) / n));
      const cuts = async (sample: string) => {
        const text = `SELECT DISTINCT v FROM unnest((SELECT percentile_disc(${fractions}::float8[]) WITHIN GROUP (ORDER BY ${k})
          FROM ${unit.table} t${sample} WHERE ${where})) AS u(v) WHERE v IS NOT NULL ORDER BY v`;
        const res = await this.texts(client, `SELECT s.v::text AS cut FROM (${text}) s ORDER BY s.v`, p.values);
        return res.map((r) => r[0] as string);
      };
      if (rows > 2 * SPLIT_SAMPLE_ROWS) {
        const pct = Math.max(0.0001, (SPLIT_SAMPLE_ROWS * 100) / rows).toFixed(4);
        const sampled = await cuts(` TABLESAMPLE SYSTEM (${pct})`);
        if (sampled.length) return sampled;
      }
      return cuts('');
    },
    dedupeSql(names, fp, from, p, d) {
      const inner = `SELECT ${names.map((n) => `t.${n}`).join(', ')}, ${fp} AS "nucleus$fp", row_number() OVER (PARTITION BY ${fp}) AS "nucleus$rn" FROM ${from}`;
      let sql = `SELECT ${names.map((n) => `w.${n}`).join(', ')} FROM (${inner}) w`;
      const conds: string[] = [];
      if (d.seen) {
        sql += ` LEFT JOIN ${fingerprintSet(p.raw(d.seen))} o ON o.fp = w."nucleus$fp"`;
        conds.push(`w."nucleus$rn" > coalesce(o.n, 0)`);
      }
      if (d.expect !== null) {
        sql += ` LEFT JOIN ${fingerprintSet(p.raw(d.expect))} e ON e.fp = w."nucleus$fp"`;
        conds.push(`w."nucleus$rn" <= coalesce(e.n, 0)`);
      }
      return conds.length ? `${sql} WHERE ${conds.join(' AND ')}` : sql;
    },
    // a server-side cursor, FETCH sized by rows and by `fetchMaxBytes` (adapted to the observed row size)
    async *stream(client, unit, q, ctx, maxRows) {
      const types = createTypeParsers(unit.info.columns);
      const maxBytes = config.fetchMaxBytes ?? DEFAULT_FETCH_BYTES;
      await client.query({ text: `DECLARE nucleus_read NO SCROLL CURSOR FOR ${q.text}`, values: q.values });
      const build = rowBuilder(unit.columns.map((c) => c.name));
      for (let size = Math.min(maxRows, FIRST_FETCH); ; ) {
        throwIfAborted(ctx?.signal, `PostgresSource.read of ${JSON.stringify(unit.unitId)}`);
        const n = size;
        const res = await client.query({ text: `FETCH FORWARD ${n} FROM nucleus_read`, rowMode: 'array', types });
        const rows = (res.rows as unknown[][]).map(build);
        if (rows.length) size = nextFetchSize(rows, maxRows, maxBytes);
        yield rows;
        // fewer rows than asked: the cursor is exhausted
        if (rows.length < n) return;
      }
    },
    async close() {
      if (owned) await pool.end().catch(() => {});
    },
  };
}

const wrapConnect = (err: unknown, what: string, ctx: IngestionContext) =>
  postgresDialect.wrap(err, 'source_failed', `${what}: cannot connect to PostgreSQL`, { endpointId: ctx?.endpointId });

/**
 * PostgreSQL source (descriptor id `postgres`, family `jdbc`): one instance serves every table of a database;
 * a unit id is `schema.table`.
 *
 * - `collectMetadata` reads the catalog: tables and views, columns mapped to a `RecordSchema`, primary keys,
 *   row estimates (`pg_class.reltuples`).
 * - `read` streams through a server-side cursor (`DECLARE … CURSOR` + `FETCH n`, `n` sized by rows and by
 *   `fetchMaxBytes`) inside one `REPEATABLE READ, READ ONLY` transaction: never the whole result in memory, one
 *   consistent snapshot.
 * - Incremental reads resume AT the last cursor value and skip the rows exported there before (boundary dedupe by
 *   row fingerprint, in SQL): rows that tie with it or commit late within `lag` are read, NULL and ±infinity/NaN
 *   cursors are read once each and never become the position. A unit without `cursorColumns` is refused in
 *   incremental mode. See {@link PostgresCheckpoint} and docs/decisions/0005-incremental-boundaries.md.
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
export class PostgresSource extends SqlSource<ColumnInfo, pg.PoolClient> {
  /**
   * The `postgres` descriptor. It declares `ingest.incremental` only when some unit has `cursorColumns`, so
   * `runUnit` runs a source without any cursor in `full` mode by default (and says so in `run.started`); an
   * incremental run of a unit without a cursor is refused with `config_invalid`.
   */
  declare readonly descriptor: EndpointDescriptor<PostgresSourceConfig>;

  constructor(options: PostgresSourceOptions) {
    const { config, connection } = parseEndpointOptions('PostgresSource', postgresSourceConfigSchema, options);
    const incremental = Object.values(config.units ?? {}).some((u) => u.cursorColumns?.length);
    const capabilities = postgresSourceDescriptor.capabilities.filter((c) => incremental || c !== 'ingest.incremental');
    super(
      postgresSourceDialect(config, connection),
      config,
      { name: 'PostgresSource', requireCursor: true, emptyBatch: false },
      incremental ? postgresSourceDescriptor : { ...postgresSourceDescriptor, capabilities },
    );
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
    const bounds = req.slice?.bounds as { planned?: unknown } | undefined;
    if (!bounds || typeof bounds !== 'object' || !bounds.planned) return undefined;
    const transcoder = codec === PG_COPY_CODEC_ID ? undefined : exportTranscoder(codec);
    if (codec !== PG_COPY_CODEC_ID && !transcoder) return undefined;
    const what = `PostgresSource.readEncoded of ${JSON.stringify(req.unitId)} (slice ${req.slice.index})`;
    let columns: CopyTextColumn[] = [];
    const copyText = copyOutSlice({
      what,
      signal: ctx.signal,
      settings: READ_SETTINGS,
      connect: () => this.open(ctx, what),
      prepare: async (client) => {
        // one of a few slices covering most of the table: a table scan, not the key's index (SliceBounds.scan)
        if ((bounds as { scan?: boolean }).scan) {
          await client.query('SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off');
        }
        const { unit, queries } = await this.prepareRead(client, req, ctx);
        const parsers = createTypeParsers(unit.info.columns);
        columns = unit.columns.map((c) => ({
          name: c.name,
          typname: c.typname,
          typcategory: c.typcategory,
          parse: parsers.getTypeParser(c.typid, 'text'),
        }));
        return { schema: unit.schema, select: queries[0] };
      },
      wrap: (err) =>
        IngestError.is(err)
          ? err
          : postgresDialect.wrap(err, 'source_failed', `${what} failed`, {
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
}
