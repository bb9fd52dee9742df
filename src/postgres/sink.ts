import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { IngestionContext } from '../contracts/context.js';
import type { EndpointDescriptor } from '../contracts/endpoint.js';
import type { ImportRequest } from '../contracts/sink-endpoint.js';
import type { FieldSchema, Row } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { postgresTypeForMySql } from '../sql/cross-types.js';
import type { ImportProgress } from '../sql/import-progress.js';
import {
  type LedgerSession,
  type LedgerSinkDialect,
  type LoadPlan,
  RowProblem,
  type SliceLoader,
} from '../sql/ledger-dialect.js';
import { LedgerSink, SqlLedgerSink } from '../sql/ledger-sink.js';
import { rowText } from '../sql/ledger-text.js';
import { throwIfAborted } from '../util/abort.js';
import { type ColumnInfo, describeTable } from './catalog.js';
import { pgChangeApply } from './change-apply.js';
import { guardClient, type PgPoolLike, parseEndpointOptions } from './connection.js';
import { type CopyColumn, CsvEncoder } from './copy-encoding.js';
import { copyInSlice, isPassThroughSlice } from './copy-pass-through.js';
import { postgresDialect } from './dialect.js';
import { formatTableName, qualifiedName, quoteIdentifier, type TableName } from './identifiers.js';
import { errorColumn, errorLine, isRowError, wrapPgError } from './pg-errors.js';
import {
  cdmJdbcSinkDescriptor,
  type PostgresSinkConfig,
  type PostgresSinkOptions,
  postgresSinkConfigSchema,
  postgresSinkDescriptor,
} from './sink-config.js';
import { importTranscoder } from './transcoders.js';
import { fieldTypeToPgType } from './type-mapping.js';

/** Most rows read from staging per batch. */
const DEFAULT_BATCH = 10_000;
/**
 * Bytes of rows a batch read from staging aims at (the staging reader holds about two batches). Small on purpose:
 * rows alive across a young-generation GC are copied and promoted, so the GC work grows with the rows in flight
 * (docs/decisions/0007-row-path-costs.md).
 */
const READ_BATCH_BYTES = 256 * 1024;
/** Rows per batch before the row size is known. */
const FIRST_READ_BATCH = 32;
/** Bytes of CSV handed to COPY at a time. */
const COPY_CHUNK_BYTES = 256 * 1024;
const DEFAULT_LOCK_TIMEOUT_MS = 5_000;
/** What a native type name may contain: identifiers (quoted or not), modifiers, `[]`, and the words of SQL types. */
const NATIVE_TYPE = /^[A-Za-z_][A-Za-z0-9_$ ."(),[\]]*$/;

/** A checked-out `pg` client as the ledger sink uses it. */
interface PgSession extends LedgerSession {
  client: pg.PoolClient;
}

const session = (client: pg.PoolClient): PgSession => ({
  client: guardClient(client),
  query: (sql, params) => client.query(sql, params as unknown[]),
  release: (healthy) => client.release(healthy ? undefined : true),
});

/**
 * PostgreSQL sink (descriptor ids `postgres` and, as {@link CdmJdbcSink}, `cdm.jdbc`): exactly-once loads with
 * `COPY … FROM STDIN` and a load ledger.
 *
 * - Creates the target from the staged `RecordSchema` when it is missing (with its primary key, except for `append`),
 *   and evolves an existing one before the first slice (`ADD COLUMN`, lossless `ALTER COLUMN … TYPE`, `DROP NOT NULL`;
 *   docs/schema-evolution.md).
 * - `append` and `merge` commit per slice; in ONE transaction the sink claims the slice in the ledger
 *   (`(run_id, unit_id, slice)`, primary key), streams the slice with `COPY` (CSV, backpressure, never a whole slice
 *   in memory) — into the target for `append`, into a temporary table then `INSERT … ON CONFLICT (pk) DO UPDATE` for
 *   `merge` — and commits. A slice already in the ledger is skipped, so re-importing a run after a crash adds nothing.
 * - `replace` loads every slice after `TRUNCATE` in one transaction with the ledger rows: readers see the old
 *   table until the commit, then the new one.
 * - Every identifier is quoted; names over 63 bytes are refused (`config_invalid`); rows that do not fit the target
 *   fail with `row_rejected` naming the column and slice.
 *
 * @example
 * ```ts
 * import { PostgresSink } from '@nucleus/ingestion/postgres';
 * const sink = new PostgresSink({ pool, schema: 'analytics' });
 * ```
 * @throws IngestError `config_invalid` for bad options; `import` throws `row_rejected`, `sink_failed` (retryable for connection errors), `sink_busy` (retryable), `aborted`.
 * @public
 */
export class PostgresSink extends SqlLedgerSink {
  readonly descriptor: EndpointDescriptor<PostgresSinkConfig> = postgresSinkDescriptor;

  constructor(options: PostgresSinkOptions) {
    const { config, connection: c } = parseEndpointOptions('PostgresSink', postgresSinkConfigSchema, options);
    super(new LedgerSink(pgDialect(c.pool, config), config, c.owned ? () => c.pool.end().catch(() => {}) : undefined));
  }

  /** The target table of a unit: `tables[unitId]`, else the sink schema + the unit's table name. @throws IngestError `config_invalid` */
  targetOf(unitId: string): TableName {
    return this.target(unitId);
  }
}

/**
 * The PostgreSQL sink under the CDM descriptor id `cdm.jdbc` (same behaviour as {@link PostgresSink}).
 * @example
 * ```ts
 * import { CdmJdbcSink } from '@nucleus/ingestion/postgres';
 * const sink = new CdmJdbcSink({ connectionString: process.env.DATABASE_URL });
 * ```
 * @throws IngestError `config_invalid` for bad options.
 * @public
 */
export class CdmJdbcSink extends PostgresSink {
  override readonly descriptor: EndpointDescriptor<PostgresSinkConfig> = cdmJdbcSinkDescriptor;
}

/**
 * Build a `cdm.jdbc` sink.
 * @example
 * ```ts
 * import { cdmJdbcSink } from '@nucleus/ingestion/postgres';
 * const sink = cdmJdbcSink({ pool });
 * ```
 * @throws IngestError `config_invalid` for bad options.
 * @public
 */
export function cdmJdbcSink(options: PostgresSinkOptions): CdmJdbcSink {
  return new CdmJdbcSink(options);
}

/** PostgreSQL's part of the ledger sink (docs/decisions/0009-one-sql-layer.md). */
function pgDialect(pool: PgPoolLike, config: PostgresSinkConfig): LedgerSinkDialect<PgSession, ColumnInfo> {
  return {
    ...postgresDialect,
    sinkName: 'PostgresSink',
    defaultSchema: 'public',
    tablesNeedSchema: true,
    begin: 'BEGIN',
    tableOptions: '',
    stage: {
      table: 'pg_temp._nucleus_stage',
      create: (cols, target) =>
        `CREATE TEMP TABLE _nucleus_stage ON COMMIT DROP AS SELECT ${cols} FROM ${target} WITH NO DATA`,
      merge: (target, cols, keys, rest, nulls) => {
        const sets = [...rest.map((c) => `${c} = EXCLUDED.${c}`), ...nulls.map((c) => `${c} = NULL`)];
        // OVERRIDING SYSTEM VALUE: an identity key (GENERATED ALWAYS too) takes the source's values, as COPY does
        return `INSERT INTO ${target} (${cols.join(', ')}) OVERRIDING SYSTEM VALUE SELECT DISTINCT ON (${keys.join(', ')}) ${cols.join(', ')} FROM pg_temp._nucleus_stage ORDER BY ${keys.join(', ')}, ctid DESC ON CONFLICT (${keys.join(', ')}) ${sets.length ? `DO UPDATE SET ${sets.join(', ')}` : 'DO NOTHING'}`;
      },
    },
    typeRules: 'postgres',
    columnTypeOf: (c) => c.formatted,
    alterType: (t, c, type) => `ALTER TABLE ${t} ALTER COLUMN ${quoteIdentifier(c.name)} TYPE ${type}`,
    dropNotNull: (t, c) => `ALTER TABLE ${t} ALTER COLUMN ${quoteIdentifier(c.name)} DROP NOT NULL`,
    alterTable: ({ client }, t, sql) => ignoreRace(client, qualifiedName(t), sql),
    swap: {
      // short, per-target names (63 bytes at most whatever the target's name)
      name: (name, role) => `_nucleus_${role}_${createHash('md5').update(name).digest('hex').slice(0, 16)}`,
      statements(target, fresh) {
        const old = `_nucleus_old_${createHash('md5').update(target.name).digest('hex').slice(0, 16)}`;
        // the new table's primary key index takes the name PostgreSQL gives a table's own (`<table>_pkey`, freed by the
        // drop), so nothing named `_nucleus_…` stays beside the target
        let base = target.name;
        while (Buffer.byteLength(base) > 58) base = base.slice(0, -1);
        return [
          `ALTER TABLE ${qualifiedName(target)} RENAME TO ${quoteIdentifier(old)}`,
          `ALTER TABLE ${qualifiedName(fresh)} RENAME TO ${quoteIdentifier(target.name)}`,
          `DROP TABLE ${qualifiedName({ schema: target.schema, name: old })}`,
          `ALTER INDEX IF EXISTS ${qualifiedName({ schema: target.schema, name: `${fresh.name}_pkey` })} RENAME TO ${quoteIdentifier(`${base}_pkey`)}`,
        ];
      },
    },
    async open(what, details) {
      try {
        return session(await pool.connect());
      } catch (err) {
        throw wrapPgError(err, 'sink_failed', `${what}: cannot connect to PostgreSQL`, details);
      }
    },
    // `pg.Pool` keeps its size in `options.max`; else no limit
    poolSize: () => (pool as { options?: { max?: number } }).options?.max || Number.POSITIVE_INFINITY,
    ledgerDdl: (t) => `CREATE TABLE IF NOT EXISTS ${t} (
          run_id text NOT NULL,
          unit_id text NOT NULL,
          slice integer NOT NULL,
          target text NOT NULL,
          disposition text NOT NULL,
          rows bigint NOT NULL DEFAULT 0,
          committed_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (run_id, unit_id, slice))`,
    async createTable({ client }, t, ddl) {
      // CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege even when the schema exists: only when missing
      const { rows } = await client.query('SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1', [t.schema]);
      const schema = quoteIdentifier(t.schema, 'schema name');
      if (!rows.length) await ignoreRace(client, schema, `CREATE SCHEMA IF NOT EXISTS ${schema}`);
      await ignoreRace(client, qualifiedName(t), ddl);
    },
    columnType: ({ client }, f, _inKey, table, ctx) => columnType(client, f, table, ctx),
    describe: ({ client }, t) => describeTable(client, t),
    clear: (t) => `TRUNCATE ${t}`,
    /**
     * Claim under `ledgerLockTimeoutMs`: a claim blocked by another importer's open transaction on the same slices (a
     * worker paused past its lease) fails fast with `sink_busy` (retryable) instead of waiting without bound. The
     * transaction's previous lock_timeout is restored for the load itself.
     */
    async claim({ client }, ledger, c) {
      const ms = config.ledgerLockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
      const prev = await client.query("SELECT current_setting('lock_timeout') AS v");
      await client.query(`SET LOCAL lock_timeout = ${Math.floor(ms)}`);
      try {
        const r = await client.query(
          `INSERT INTO ${qualifiedName(ledger)} (run_id, unit_id, slice, target, disposition) SELECT $1, $2, s, $4, $5 FROM unnest($3::int[]) AS s ON CONFLICT DO NOTHING`,
          [c.runId, c.unitId, c.slices, c.target, c.disposition],
        );
        return (r.rowCount ?? 0) === c.slices.length;
      } catch (err) {
        if ((err as { code?: string })?.code !== '55P03') throw err;
        const which = c.slices.length === 1 ? `slice ${c.slices[0]}` : `slices ${c.slices.join(', ')}`;
        const name = formatTableName(ledger);
        throw new IngestError(
          'sink_busy',
          `PostgresSink: ${which} of run ${c.runId} (unit ${JSON.stringify(c.unitId)}) is held by another importer's open transaction in ledger ${name}; waited ${ms} ms (ledgerLockTimeoutMs). It is skipped once that transaction commits, loaded once it rolls back`,
          {
            cause: err,
            retryable: true,
            details: { unitId: c.unitId, runId: c.runId, slices: c.slices, ledger: name, sqlstate: '55P03' },
          },
        );
      } finally {
        await client.query("SELECT set_config('lock_timeout', $1, true)", [prev.rows[0].v]).catch(() => {});
      }
    },
    loader: async (_s, plan, req, ctx, progress) => copyLoader(config, plan, req, ctx, progress),
    rowProblem: (err) =>
      isRowError(err)
        ? new RowProblem(
            (err as Error).message,
            errorColumn(err),
            errorLine(err),
            { sqlstate: (err as { code?: string }).code },
            err,
          )
        : undefined,
    importError: (err, what, details) =>
      (err as { code?: string })?.code === '2BP01'
        ? new IngestError(
            'schema_conflict',
            `${what}: replace rebuilt the target for the changed schema, but other objects depend on the old table (${(err as Error).message}); drop or recreate them, or ALTER the target yourself`,
            { cause: err, retryable: false, details },
          )
        : (err as { code?: string })?.code === '42P10'
          ? new IngestError(
              'config_invalid',
              `${what}: merge needs a unique index or primary key on the merge key: ${(err as Error).message}`,
              { cause: err, details },
            )
          : undefined,
    reusableAfter: () => false,
    changes: pgChangeApply(),
  };
}

/**
 * Loads slices with COPY: a `pg-copy` slice unchanged (docs/decisions/0006-postgres-pass-through-and-pipelining.md),
 * a row codec with a transcoder straight into COPY text without row objects (docs/decisions/0008-transcoded-row-paths.md),
 * else rows encoded as CSV one by one, sent in pieces of about 256 KiB (memory follows a few rows, never a slice).
 */
function copyLoader(
  config: PostgresSinkConfig,
  plan: LoadPlan<ColumnInfo>,
  req: ImportRequest,
  ctx: IngestionContext,
  progress: ImportProgress,
): SliceLoader<PgSession> {
  const kindOf = (t: string | null | undefined): CopyColumn['kind'] =>
    t === 'json' || t === 'jsonb' ? 'json' : t === 'bytea' ? 'bytea' : 'scalar';
  const staged = new Map(req.schema?.fields.map((f) => [f.name, f]));
  const columns: CopyColumn[] = plan.columns.map((c) => {
    if (c.typcategory === 'A') return { name: c.name, kind: 'array', elem: kindOf(c.elemname) };
    const col: CopyColumn = { name: c.name, kind: kindOf(c.typname) };
    // a PostgreSQL array landing in a text column: PostgreSQL's array text on every codec (ADR 0014)
    const element = staged.get(c.name)?.logical?.element;
    if (col.kind === 'scalar' && element)
      col.arrayText = element === 'json' ? 'json' : element === 'binary' ? 'bytea' : 'scalar';
    return col;
  });
  const names = columns.map((c) => c.name);
  const { signal } = ctx;
  const what = `PostgresSink.import of ${JSON.stringify(ctx.unitId)}`;
  /** Rows encoded and their CSV length so far, to size the next slice's batches. */
  const seen = { rows: 0, chars: 0 };
  // one chunk ahead at most (the default would read 16 chunks ahead of COPY)
  const copy = async (client: pg.PoolClient, sql: string, chunks: AsyncIterable<Uint8Array>) => {
    const stream = client.query(copyFrom(sql));
    await pipeline(Readable.from(chunks, { highWaterMark: 1 }), stream);
    return (stream as unknown as { rowCount: number }).rowCount;
  };
  return {
    async load({ client }, table, slice) {
      const onRows = (n: number) => progress.add(n, slice.index);
      // the staged COPY text has every staged field: not when the target computes some (generated columns)
      if (isPassThroughSlice(req, slice) && req.schema?.fields.length === names.length)
        return copyInSlice(client, table, names, slice, { signal, what, onRows });
      const copyText = `COPY ${table} (${names.map((n) => quoteIdentifier(n)).join(', ')}) FROM STDIN`;
      const copySql = `${copyText} WITH (FORMAT csv)`;
      const origin = { slice: slice.index, table: plan.targetSql };
      const transcoder = importTranscoder(slice.codec);
      if (transcoder && typeof slice.reader.iterEncoded === 'function' && req.schema?.fields.length) {
        const { toCopy, format } = await transcoder();
        ctx.logger?.debug?.(
          `${what}: slice ${slice.index} (${slice.codec}) transcoded to COPY ${format}, no row objects`,
          {
            slice: slice.index,
            codec: slice.codec,
            copyFormat: format,
          },
        );
        const pieces = toCopy(slice.reader.iterEncoded(), {
          schema: req.schema,
          columns,
          origin,
          pieceBytes: COPY_CHUNK_BYTES,
          onRows,
        });
        async function* checked() {
          for await (const piece of pieces) {
            throwIfAborted(signal, what);
            yield piece;
          }
        }
        return copy(client, format === 'csv' ? copySql : copyText, checked());
      }
      const encoder = new CsvEncoder(columns, origin);
      // batches are sized by bytes as well as rows: by the row size seen in earlier slices of this import (rows of
      // unknown size are read a few at a time)
      const maxRows = config.batchSize ?? DEFAULT_BATCH;
      const batchSize =
        seen.rows > 0
          ? Math.max(1, Math.min(maxRows, Math.floor(READ_BATCH_BYTES / Math.max(1, seen.chars / seen.rows))))
          : Math.min(maxRows, FIRST_READ_BATCH);
      const encode = (row: Row, n: number) => {
        try {
          const text = encoder.encodeRow(row);
          seen.rows++;
          seen.chars += text.length;
          return text;
        } catch (err) {
          if (!(err instanceof RangeError)) throw err;
          throw new IngestError(
            'row_rejected',
            `Row ${n} of slice ${slice.index} of run ${ctx.runId} is too large to encode for COPY into ${plan.targetSql}: ${err.message}`,
            { cause: err, details: { table: plan.targetSql, slice: slice.index, row: n } },
          );
        }
      };
      const batch = () => throwIfAborted(signal, what);
      const chunks = rowText(slice.reader.iterBatches(batchSize), COPY_CHUNK_BYTES, encode, { batch, rows: onRows });
      await copy(client, copySql, chunks);
      return encoder.rows;
    },
  };
}

/**
 * The column type of a target the sink creates. A field with a PostgreSQL `native` type gets that exact type
 * (`numeric(12,2)`, `character(8)`, `timestamp(3) without time zone`) when it is a built-in type the target database
 * knows. A created target never references a user-defined type (docs/decisions/0013-schema-evolution.md): a domain
 * becomes its built-in base type, an enum, composite, range or array of them the generic mapping of `type` +
 * `logical` (enum labels as `text`) — so dropping the source's schema never drops a target column. A type the
 * database does not know falls back to the generic mapping, with a warning naming the column.
 */
async function columnType(
  client: pg.PoolClient,
  f: FieldSchema,
  table: string,
  ctx: IngestionContext,
): Promise<string> {
  // a MySQL column maps from its COLUMN_TYPE, under which every value fits (BIGINT UNSIGNED → numeric(20,0), …)
  const generic =
    (f.native?.dialect === 'mysql' ? postgresTypeForMySql(f.native.type) : undefined) ??
    fieldTypeToPgType(f.type, f.logical);
  const native = f.native?.dialect === 'postgres' ? f.native.type : undefined;
  if (native === undefined) return generic;
  // to_regtype parses the name as a type (refusing anything else) and says whether it exists here, and whether it
  // (or an array's element) is built in
  const found =
    NATIVE_TYPE.test(native) && !native.includes('--')
      ? await client
          .query(
            `SELECT (SELECT n.nspname = 'pg_catalog' FROM pg_catalog.pg_namespace n WHERE n.oid = COALESCE(e.typnamespace, t.typnamespace)) AS builtin,
                    t.typtype = 'd' AS domain, format_type(t.typbasetype, t.typtypmod) AS base,
                    (SELECT b.typnamespace = 'pg_catalog'::regnamespace FROM pg_catalog.pg_type b WHERE b.oid = t.typbasetype) AS base_builtin
             FROM pg_catalog.pg_type t LEFT JOIN pg_catalog.pg_type e ON e.oid = t.typelem AND t.typcategory = 'A'
             WHERE t.oid = to_regtype($1)`,
            [native],
          )
          .then(
            (r) => r.rows[0] as { builtin: boolean; domain: boolean; base: string; base_builtin: boolean } | undefined,
          )
          .catch(() => undefined)
      : undefined;
  if (found?.builtin) return native;
  if (found?.domain && found.base_builtin) return found.base;
  if (found) {
    ctx.logger?.info?.(
      `Creating ${table}: column ${JSON.stringify(f.name)} has the user-defined type ${JSON.stringify(native)}; using ${generic} (a created target never references the source's types)`,
      { column: f.name, nativeType: native, type: generic },
    );
    return generic;
  }
  ctx.logger?.warn?.(
    `Creating ${table}: column ${JSON.stringify(f.name)} has type ${JSON.stringify(native)}, which this database does not know; using ${generic}`,
    { column: f.name, nativeType: native, type: generic },
  );
  return generic;
}

/**
 * Run a catalog change (CREATE … IF NOT EXISTS) under a transaction-level advisory lock on `name`, so concurrent
 * importers create an object once instead of racing on the catalog; the codes of a lost race are ignored as well.
 */
async function ignoreRace(client: pg.PoolClient, name: string, sql: string): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`nucleus:ddl:${name}`]);
    await client.query(sql);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    const code = (err as { code?: string })?.code;
    // 42701: a column another importer added meanwhile (ALTER TABLE … ADD COLUMN)
    if (code === '23505' || code === '42P07' || code === '42P06' || code === '42710' || code === '42701') return;
    throw err;
  }
}
