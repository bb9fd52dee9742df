import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { IngestionContext } from '../contracts/context.js';
import type { EndpointDescriptor } from '../contracts/endpoint.js';
import type { ImportRequest, ImportResult, ImportSlice, SinkEndpoint } from '../contracts/sink-endpoint.js';
import type { RecordReader } from '../contracts/staging.js';
import type { FieldType, RecordSchema, Value } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { throwIfAborted } from '../util/abort.js';
import { Timestamp } from '../values/timestamp.js';
import { describeTable, type TableInfo } from './catalog.js';
import { guardClient, type PgPoolLike, parseEndpointOptions } from './connection.js';
import { type CopyColumn, CsvEncoder } from './copy-encoding.js';
import { copyInSlice, isPassThroughSlice } from './copy-pass-through.js';
import { formatTableName, parseTableName, qualifiedName, quoteIdentifier, type TableName } from './identifiers.js';
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

const DEFAULT_LEDGER = '_nucleus_ingest_ledger';
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
const PROGRESS_EVERY_MS = 500;

interface LoadPlan {
  target: TableName;
  targetSql: string;
  columns: CopyColumn[];
  info: TableInfo;
}

/**
 * PostgreSQL sink (descriptor ids `postgres` and, as {@link CdmJdbcSink}, `cdm.jdbc`): exactly-once loads with
 * `COPY … FROM STDIN` and a load ledger.
 *
 * - Creates the target from the staged {@link RecordSchema} when it is missing (with its primary key).
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
 * @throws IngestError `config_invalid` for bad options; `import` throws `row_rejected`, `sink_failed` (retryable for connection errors), `aborted`.
 * @public
 */
export class PostgresSink implements SinkEndpoint {
  readonly descriptor: EndpointDescriptor<PostgresSinkConfig> = postgresSinkDescriptor;
  readonly #config: PostgresSinkConfig;
  readonly #pool: PgPoolLike;
  readonly #ownsPool: boolean;
  readonly #ledger: TableName;
  #ledgerReady: Promise<void> | undefined;
  #closed = false;

  constructor(options: PostgresSinkOptions) {
    const { config, connection } = parseEndpointOptions('PostgresSink', postgresSinkConfigSchema, options);
    this.#config = config;
    const schema = config.schema ?? 'public';
    quoteIdentifier(schema, 'sink schema name');
    this.#ledger = parseTableName(config.ledgerTable ?? DEFAULT_LEDGER, schema);
    for (const t of Object.values(config.tables ?? {})) parseTableName(t);
    this.#ownsPool = connection.owned;
    this.#pool = connection.pool;
  }

  /** The target table of a unit: `tables[unitId]`, else the sink schema + the unit's table name. @throws IngestError `config_invalid` */
  targetOf(unitId: string): TableName {
    const explicit = this.#config.tables?.[unitId];
    if (explicit !== undefined && Object.hasOwn(this.#config.tables!, unitId)) return parseTableName(explicit);
    const schema = this.#config.schema ?? 'public';
    return { schema, name: parseTableName(unitId, schema).name };
  }

  /**
   * Import the staged slices. Idempotent per `(ctx.runId, unitId, slice)` through the ledger.
   * @throws IngestError `row_rejected` (naming column and slice), `config_invalid`, `sink_failed`, `aborted`
   */
  async import(req: ImportRequest, ctx: IngestionContext): Promise<ImportResult> {
    if (this.#closed) throw new IngestError('config_invalid', 'PostgresSink already closed');
    const target = this.targetOf(req.unitId);
    const targetSql = qualifiedName(target);
    const what = `PostgresSink.import of ${JSON.stringify(req.unitId)} into ${targetSql} (run ${ctx.runId})`;
    throwIfAborted(ctx.signal, what);
    if (!['append', 'replace', 'merge'].includes(req.disposition)) {
      throw new IngestError(
        'config_invalid',
        `${what}: unknown disposition ${JSON.stringify(req.disposition)} (append, replace or merge)`,
      );
    }
    const fields = req.schema?.fields.length ? req.schema : await inferSchema(req.slices);
    for (const f of fields?.fields ?? []) quoteIdentifier(f.name, 'column name');
    const client = await this.#connect(ctx, what);
    let healthy = true;
    try {
      await this.#ensureLedger(client);
      const info =
        (await describeTable(client, target)) ??
        (await this.#createTarget(client, target, fields, req.primaryKey, ctx.logger));
      const plan = buildPlan(target, targetSql, info, fields);
      const rowsTotal = req.slices.reduce((n, s) => n + s.rows, 0);
      const progress = new Progress(ctx, rowsTotal);
      let result: ImportResult;
      if (req.disposition === 'replace') result = await this.#replace(client, req, ctx, plan, progress);
      else {
        const pk = req.disposition === 'merge' ? mergeKey(req, info, targetSql) : [];
        result = await this.#perSlice(client, req, ctx, plan, pk, progress);
      }
      return result;
    } catch (err) {
      healthy = false;
      throw this.#wrap(err, what, req.unitId, ctx);
    } finally {
      client.release(healthy ? undefined : true);
    }
  }

  /** End the pool the sink built from `connectionString` (an injected pool is left open). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ownsPool) await this.#pool.end().catch(() => {});
  }

  async #connect(ctx: IngestionContext, what: string): Promise<pg.PoolClient> {
    try {
      return guardClient(await this.#pool.connect());
    } catch (err) {
      throw wrapPgError(err, 'sink_failed', `${what}: cannot connect to PostgreSQL`, {
        endpointId: ctx.endpointId,
        sinkId: ctx.sinkId,
      });
    }
  }

  #wrap(err: unknown, what: string, unitId: string, ctx: IngestionContext): IngestError {
    if (IngestError.is(err)) return err;
    const e = err as { code?: string; message?: string; slice?: number };
    const details = { unitId, endpointId: ctx.endpointId, sinkId: ctx.sinkId, runId: ctx.runId };
    if (e?.code === '42P10') {
      return new IngestError(
        'config_invalid',
        `${what}: merge needs a unique index or primary key on the merge key: ${e.message}`,
        {
          cause: err,
          details,
        },
      );
    }
    return wrapPgError(err, 'sink_failed', `${what} failed`, details);
  }

  async #ensureLedger(client: pg.PoolClient): Promise<void> {
    this.#ledgerReady ??= (async () => {
      const t = qualifiedName(this.#ledger);
      await ensureSchema(client, this.#ledger.schema);
      await ignoreRace(
        client,
        t,
        `CREATE TABLE IF NOT EXISTS ${t} (
          run_id text NOT NULL,
          unit_id text NOT NULL,
          slice integer NOT NULL,
          target text NOT NULL,
          disposition text NOT NULL,
          rows bigint NOT NULL DEFAULT 0,
          committed_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (run_id, unit_id, slice))`,
      );
    })();
    try {
      await this.#ledgerReady;
    } catch (err) {
      this.#ledgerReady = undefined;
      throw err;
    }
  }

  async #createTarget(
    client: pg.PoolClient,
    target: TableName,
    schema: RecordSchema | undefined,
    primaryKey?: string[],
    logger?: IngestionContext['logger'],
  ): Promise<TableInfo> {
    if (!schema?.fields.length) {
      throw new IngestError(
        'config_invalid',
        `Target ${qualifiedName(target)} does not exist and the staged data has no schema to create it from`,
      );
    }
    const pk = primaryKey ?? schema.primaryKey ?? [];
    const types = await columnTypes(client, schema, qualifiedName(target), logger);
    const cols = schema.fields.map(
      (f, i) =>
        `${quoteIdentifier(f.name, 'column name')} ${types[i]}${f.nullable && !pk.includes(f.name) ? '' : ' NOT NULL'}`,
    );
    if (pk.length) cols.push(`PRIMARY KEY (${pk.map((k) => quoteIdentifier(k, 'primary key column')).join(', ')})`);
    await ensureSchema(client, target.schema);
    await ignoreRace(
      client,
      qualifiedName(target),
      `CREATE TABLE IF NOT EXISTS ${qualifiedName(target)} (${cols.join(', ')})`,
    );
    const info = await describeTable(client, target);
    if (!info) throw new IngestError('internal', `Created ${qualifiedName(target)} but cannot find it in the catalog`);
    return info;
  }

  async #perSlice(
    client: pg.PoolClient,
    req: ImportRequest,
    ctx: IngestionContext,
    plan: LoadPlan,
    pk: string[],
    progress: Progress,
  ): Promise<ImportResult> {
    // merge keeps slice order (a later slice's version of a key wins); append slices are independent
    const want = pk.length
      ? 1
      : Math.max(1, Math.min(this.#config.importConcurrency ?? 2, req.slices.length, poolSize(this.#pool)));
    let next = 0;
    let imported = 0;
    let skipped = 0;
    let failed: unknown;
    let settled = false;
    // (an aborted signal is not a reason to stop claiming quietly: the next slice throws `aborted`)
    const claim = () => (failed === undefined && next < req.slices.length ? req.slices[next++] : undefined);
    // A worker holds its connection before it claims a slice, so no claimed slice waits for a connection.
    const work = async (c: pg.PoolClient, own: boolean) => {
      let healthy = true;
      try {
        for (let slice = claim(); slice !== undefined; slice = claim()) {
          try {
            const r = await this.#importSlice(c, req, ctx, plan, pk, slice, progress);
            if (r === undefined) skipped++;
            else imported += r;
          } catch (err) {
            healthy = false;
            throw err;
          }
        }
      } catch (err) {
        failed ??= err;
      } finally {
        if (own) c.release(healthy ? undefined : true);
      }
    };
    // The caller's connection serves the first worker. More connections are a bonus, never awaited: with a pool of
    // one, or a pool busy with the application's own queries, the import goes on with what it holds, and a
    // connection that arrives after the work is gone goes straight back.
    const active = new Set<Promise<void>>([work(client, false)]);
    for (let i = 1; i < want; i++) {
      this.#pool.connect().then(
        (c) => {
          guardClient(c);
          if (settled || failed !== undefined || next >= req.slices.length) c.release();
          else active.add(work(c, true));
        },
        () => {},
      );
    }
    for (;;) {
      const running = [...active];
      await Promise.all(running);
      if (active.size === running.length) break;
    }
    settled = true;
    if (failed !== undefined) throw failed;
    return {
      rowsImported: progress.rows,
      provenance: provenance(plan, this.#ledger, req, req.slices.length - skipped, skipped, imported),
    };
  }

  /** One slice in one transaction: claim it in the ledger (or skip it: returns undefined), load it, commit. */
  async #importSlice(
    client: pg.PoolClient,
    req: ImportRequest,
    ctx: IngestionContext,
    plan: LoadPlan,
    pk: string[],
    slice: ImportSlice,
    progress: Progress,
  ): Promise<number | undefined> {
    const ledger = qualifiedName(this.#ledger);
    throwIfAborted(ctx.signal, `PostgresSink.import of ${JSON.stringify(req.unitId)}`);
    await client.query('BEGIN');
    let open = true;
    try {
      const claim = await this.#claim(client, req, ctx, [slice.index], () =>
        client.query(
          `INSERT INTO ${ledger} (run_id, unit_id, slice, target, disposition) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
          [ctx.runId, req.unitId, slice.index, formatTableName(plan.target), req.disposition],
        ),
      );
      if (claim.rowCount === 0) {
        await client.query('ROLLBACK');
        open = false;
        progress.add(slice.rows, slice.index, true);
        return undefined;
      }
      let rows: number;
      if (pk.length) {
        const cols = plan.columns.map((c) => quoteIdentifier(c.name)).join(', ');
        await client.query(
          `CREATE TEMP TABLE _nucleus_stage ON COMMIT DROP AS SELECT ${cols} FROM ${plan.targetSql} WITH NO DATA`,
        );
        rows = await this.#copy(client, req, 'pg_temp._nucleus_stage', plan, slice, ctx, progress);
        const keys = pk.map((k) => quoteIdentifier(k)).join(', ');
        const rest = plan.columns.filter((c) => !pk.includes(c.name));
        const action = rest.length
          ? `DO UPDATE SET ${rest.map((c) => `${quoteIdentifier(c.name)} = EXCLUDED.${quoteIdentifier(c.name)}`).join(', ')}`
          : 'DO NOTHING';
        await client.query(
          `INSERT INTO ${plan.targetSql} (${cols}) SELECT DISTINCT ON (${keys}) ${cols} FROM pg_temp._nucleus_stage ORDER BY ${keys}, ctid DESC ON CONFLICT (${keys}) ${action}`,
        );
      } else {
        rows = await this.#copy(client, req, plan.targetSql, plan, slice, ctx, progress);
      }
      await client.query(`UPDATE ${ledger} SET rows = $4 WHERE run_id = $1 AND unit_id = $2 AND slice = $3`, [
        ctx.runId,
        req.unitId,
        slice.index,
        rows,
      ]);
      await client.query('COMMIT');
      open = false;
      progress.flush(slice.index);
      return rows;
    } catch (err) {
      if (open) await client.query('ROLLBACK').catch(() => {});
      throw rowError(err, plan, slice.index, ctx.runId);
    }
  }

  async #replace(
    client: pg.PoolClient,
    req: ImportRequest,
    ctx: IngestionContext,
    plan: LoadPlan,
    progress: Progress,
  ): Promise<ImportResult> {
    const ledger = qualifiedName(this.#ledger);
    const indices = req.slices.length ? req.slices.map((s) => s.index) : [-1];
    await client.query('BEGIN');
    let open = true;
    let current = -1;
    try {
      const claim = await this.#claim(client, req, ctx, indices, () =>
        client.query(
          `INSERT INTO ${ledger} (run_id, unit_id, slice, target, disposition) SELECT $1, $2, s, $4, 'replace' FROM unnest($3::int[]) AS s ON CONFLICT DO NOTHING`,
          [ctx.runId, req.unitId, indices, formatTableName(plan.target)],
        ),
      );
      if ((claim.rowCount ?? 0) < indices.length) {
        await client.query('ROLLBACK');
        open = false;
        for (const s of req.slices) progress.add(s.rows, s.index, true);
        return {
          rowsImported: progress.rows,
          provenance: provenance(plan, this.#ledger, req, 0, req.slices.length, 0),
        };
      }
      await client.query(`TRUNCATE ${plan.targetSql}`);
      let imported = 0;
      for (const slice of req.slices) {
        current = slice.index;
        const rows = await this.#copy(client, req, plan.targetSql, plan, slice, ctx, progress);
        await client.query(`UPDATE ${ledger} SET rows = $4 WHERE run_id = $1 AND unit_id = $2 AND slice = $3`, [
          ctx.runId,
          req.unitId,
          slice.index,
          rows,
        ]);
        imported += rows;
      }
      await client.query('COMMIT');
      open = false;
      progress.flush(current);
      return {
        rowsImported: imported,
        provenance: provenance(plan, this.#ledger, req, req.slices.length, 0, imported),
      };
    } catch (err) {
      if (open) await client.query('ROLLBACK').catch(() => {});
      throw rowError(err, plan, current, ctx.runId);
    }
  }

  /**
   * Claim slices in the ledger under `ledgerLockTimeoutMs`: a claim blocked by another importer's open transaction on
   * the same slices (a worker paused past its lease) fails fast with `sink_busy` (retryable) instead of waiting without
   * bound. The transaction's previous lock_timeout is restored for the load itself.
   */
  async #claim(
    client: pg.PoolClient,
    req: ImportRequest,
    ctx: IngestionContext,
    slices: number[],
    insert: () => Promise<pg.QueryResult>,
  ): Promise<pg.QueryResult> {
    const ms = this.#config.ledgerLockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
    const prev = await client.query("SELECT current_setting('lock_timeout') AS v");
    await client.query(`SET LOCAL lock_timeout = ${Math.floor(ms)}`);
    try {
      return await insert();
    } catch (err) {
      if ((err as { code?: string })?.code !== '55P03') throw err;
      const which = slices.length === 1 ? `slice ${slices[0]}` : `slices ${slices.join(', ')}`;
      throw new IngestError(
        'sink_busy',
        `PostgresSink: ${which} of run ${ctx.runId} (unit ${JSON.stringify(req.unitId)}) is held by another importer's open transaction in ledger ${formatTableName(this.#ledger)}; waited ${ms} ms (ledgerLockTimeoutMs). It is skipped once that transaction commits, loaded once it rolls back`,
        {
          cause: err,
          retryable: true,
          details: {
            unitId: req.unitId,
            runId: ctx.runId,
            slices,
            ledger: formatTableName(this.#ledger),
            sqlstate: '55P03',
          },
        },
      );
    } finally {
      await client.query("SELECT set_config('lock_timeout', $1, true)", [prev.rows[0].v]).catch(() => {});
    }
  }

  /** Stream one slice into `table` with COPY (CSV), with backpressure; returns the rows copied. */
  async #copy(
    client: pg.PoolClient,
    req: ImportRequest,
    table: string,
    plan: LoadPlan,
    slice: ImportSlice,
    ctx: IngestionContext,
    progress: Progress,
  ): Promise<number> {
    if (isPassThroughSlice(req, slice)) {
      // pass-through: a pg-copy slice goes to COPY unchanged (docs/decisions/0006-postgres-pass-through-and-pipelining.md)
      return copyInSlice(
        client,
        table,
        plan.columns.map((c) => c.name),
        slice,
        {
          signal: ctx.signal,
          what: `PostgresSink.import of ${JSON.stringify(ctx.unitId)}`,
          onRows: (n) => progress.add(n, slice.index, false),
        },
      );
    }
    const copyText = `COPY ${table} (${plan.columns.map((c) => quoteIdentifier(c.name)).join(', ')}) FROM STDIN`;
    const copySql = `${copyText} WITH (FORMAT csv)`;
    const transcoder = importTranscoder(slice.codec);
    if (transcoder && typeof slice.reader.iterEncoded === 'function' && req.schema?.fields.length) {
      // a row codec transcoded straight into the CSV below, without row objects (docs/decisions/0008-transcoded-row-paths.md)
      const { toCopy, format } = await transcoder();
      const what = `PostgresSink.import of ${JSON.stringify(ctx.unitId)}`;
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
        columns: plan.columns,
        origin: { slice: slice.index, table: plan.targetSql },
        pieceBytes: COPY_CHUNK_BYTES,
        onRows: (n) => progress.add(n, slice.index, false),
      });
      const signal = ctx.signal;
      async function* checked() {
        for await (const piece of pieces) {
          throwIfAborted(signal, what);
          yield piece;
        }
      }
      const copying = client.query(copyFrom(format === 'csv' ? copySql : copyText));
      await pipeline(Readable.from(checked(), { highWaterMark: 1 }), copying);
      return (copying as unknown as { rowCount: number }).rowCount;
    }
    const encoder = new CsvEncoder(plan.columns, { slice: slice.index, table: plan.targetSql });
    const stream = client.query(copyFrom(copySql));
    // Batches are sized by bytes as well as rows: by the row size seen in earlier slices of this import (rows of
    // unknown size are read a few at a time).
    const maxRows = this.#config.batchSize ?? DEFAULT_BATCH;
    const seen = progress.encoded;
    const batchSize =
      seen.rows > 0
        ? Math.max(1, Math.min(maxRows, Math.floor(READ_BATCH_BYTES / Math.max(1, seen.chars / seen.rows))))
        : Math.min(maxRows, FIRST_READ_BATCH);
    const signal = ctx.signal;
    const runId = ctx.runId;
    // Rows are encoded one by one and sent in pieces of about COPY_CHUNK_BYTES: memory follows the bytes of a few
    // rows, never a whole batch or slice as one string.
    async function* chunks(reader: RecordReader) {
      let pending = '';
      let row = 0;
      for await (const batch of reader.iterBatches(batchSize)) {
        throwIfAborted(signal, `PostgresSink.import of ${JSON.stringify(ctx.unitId)}`);
        for (let i = 0; i < batch.length; i++) {
          row++;
          let text: string;
          try {
            text = encoder.encodeRow(batch[i]);
            if (pending.length + text.length > COPY_CHUNK_BYTES && pending.length > 0) {
              yield Buffer.from(pending, 'utf8');
              pending = '';
            }
            pending += text;
            seen.rows++;
            seen.chars += text.length;
          } catch (err) {
            if (!(err instanceof RangeError)) throw err;
            throw new IngestError(
              'row_rejected',
              `Row ${row} of slice ${slice.index} of run ${runId} is too large to encode for COPY into ${plan.targetSql}: ${err.message}`,
              { cause: err, details: { table: plan.targetSql, slice: slice.index, row } },
            );
          }
          if (pending.length >= COPY_CHUNK_BYTES) {
            yield Buffer.from(pending, 'utf8');
            pending = '';
          }
        }
        progress.add(batch.length, slice.index, false);
      }
      if (pending) yield Buffer.from(pending, 'utf8');
    }
    // one chunk ahead at most (the default would read 16 chunks ahead of COPY)
    await pipeline(Readable.from(chunks(slice.reader), { highWaterMark: 1 }), stream);
    return encoder.rows;
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

/** Progress events, throttled: at most one every 500 ms, plus one per committed slice. */
class Progress {
  rows = 0;
  /** Rows encoded and their CSV length so far, to size the next slice's batches. */
  readonly encoded = { rows: 0, chars: 0 };
  #last = 0;
  constructor(
    readonly ctx: IngestionContext,
    readonly total: number,
  ) {}

  add(n: number, slice: number, committed: boolean): void {
    this.rows += n;
    const now = Date.now();
    if (committed || now - this.#last >= PROGRESS_EVERY_MS) this.flush(slice, now);
  }

  flush(slice: number, now = Date.now()): void {
    this.#last = now;
    const c = this.ctx;
    try {
      c.emit?.({
        type: 'import.progress',
        at: new Date(now).toISOString(),
        runId: c.runId,
        workspaceId: c.workspaceId,
        endpointId: c.endpointId,
        unitId: c.unitId,
        ...(c.sinkId !== undefined ? { sinkId: c.sinkId } : {}),
        rowsImported: this.rows,
        rowsTotal: this.total,
        ...(slice >= 0 ? { slice } : {}),
      });
    } catch {
      // a throwing listener must not fail the import
    }
  }
}

/** The pool's size when it says (`pg.Pool` keeps it in `options.max`), else no limit. */
function poolSize(pool: PgPoolLike): number {
  const max = (pool as { options?: { max?: unknown } }).options?.max;
  return typeof max === 'number' && max > 0 ? max : Number.POSITIVE_INFINITY;
}

function provenance(
  plan: LoadPlan,
  ledger: TableName,
  req: ImportRequest,
  committed: number,
  skipped: number,
  rows: number,
) {
  return {
    target: formatTableName(plan.target),
    ledger: formatTableName(ledger),
    disposition: req.disposition,
    slicesCommitted: committed,
    slicesSkipped: skipped,
    rowsCommitted: rows,
  };
}

/** Map a failure inside a slice: data errors become `row_rejected` naming the column and slice. */
function rowError(err: unknown, plan: LoadPlan, slice: number, runId: string): unknown {
  if (IngestError.is(err) || !isRowError(err)) return err;
  const column = errorColumn(err);
  const line = errorLine(err);
  const msg = (err as Error).message;
  return new IngestError(
    'row_rejected',
    `Slice ${slice} of run ${runId}: a row does not fit ${plan.targetSql}${column ? ` column ${JSON.stringify(column)}` : ''}${line ? ` (row ${line})` : ''}: ${msg}`,
    {
      cause: err,
      details: { table: plan.targetSql, column, slice, row: line, sqlstate: (err as { code?: string }).code },
    },
  );
}

function mergeKey(req: ImportRequest, info: TableInfo, targetSql: string): string[] {
  const pk = req.primaryKey ?? req.schema?.primaryKey ?? info.primaryKey;
  if (!pk?.length) {
    throw new IngestError(
      'config_invalid',
      `merge into ${targetSql} needs a primary key (none given, none staged, none on the table)`,
    );
  }
  for (const k of pk) quoteIdentifier(k, 'primary key column');
  return pk;
}

function buildPlan(target: TableName, targetSql: string, info: TableInfo, schema: RecordSchema | undefined): LoadPlan {
  const byName = new Map(info.columns.map((c) => [c.name, c]));
  const names = schema?.fields.length ? schema.fields.map((f) => f.name) : info.columns.map((c) => c.name);
  const missing = names.filter((n) => !byName.has(n));
  if (missing.length) {
    throw new IngestError(
      'config_invalid',
      `Target ${targetSql} has no column ${missing.map((m) => JSON.stringify(m)).join(', ')} for the staged field${missing.length > 1 ? 's' : ''}`,
      { details: { table: targetSql, missing } },
    );
  }
  const columns: CopyColumn[] = names.map((n) => {
    const c = byName.get(n)!;
    const kindOf = (t: string | null | undefined): CopyColumn['kind'] =>
      t === 'json' || t === 'jsonb' ? 'json' : t === 'bytea' ? 'bytea' : 'scalar';
    return c.typcategory === 'A'
      ? { name: n, kind: 'array', elem: kindOf(c.elemname) }
      : { name: n, kind: kindOf(c.typname) };
  });
  return { target, targetSql, columns, info };
}

/** Without a staged schema: infer one from the first batch of the first non-empty slice. */
async function inferSchema(slices: ImportSlice[]): Promise<RecordSchema | undefined> {
  for (const s of slices) {
    for await (const batch of s.reader.iterBatches(1000)) {
      if (!batch.length) continue;
      const names: string[] = [];
      const types = new Map<string, FieldType>();
      const local = new Set<string>();
      for (const row of batch) {
        for (const [k, v] of Object.entries(row)) {
          if (!types.has(k)) names.push(k);
          if (v !== null && v !== undefined && !types.get(k)) {
            types.set(k, typeOfValue(v));
            // a wall-clock Timestamp gets a timestamp without time zone, so no session zone shifts it
            if (v instanceof Timestamp && !v.zoned) local.add(k);
          } else if (!types.has(k)) types.set(k, undefined as unknown as FieldType);
        }
      }
      return {
        fields: names.map((n) => ({
          name: n,
          type: types.get(n) ?? 'string',
          nullable: true,
          ...(local.has(n) ? { logical: { withTimeZone: false } } : {}),
        })),
      };
    }
  }
  return undefined;
}

function typeOfValue(v: Value): FieldType {
  if (typeof v === 'bigint') return 'int64';
  if (typeof v === 'number') return 'float64';
  if (typeof v === 'boolean') return 'boolean';
  if (typeof v === 'string') return 'string';
  if (v instanceof Date || v instanceof Timestamp) return 'timestamp';
  if (v instanceof Uint8Array) return 'binary';
  return 'json';
}

/** What a native type name may contain: identifiers (quoted or not), modifiers, `[]`, and the words of SQL types. */
const NATIVE_TYPE = /^[A-Za-z_][A-Za-z0-9_$ ."(),[\]]*$/;

/**
 * The column types of a target the sink creates. A field with a PostgreSQL `native` type gets that exact type
 * (`numeric(12,2)`, `character(8)`, `timestamp(3) without time zone`, `public.mood[]`) when the target database
 * knows it; a user-defined type it does not know falls back to the generic mapping of `type` + `logical`, with a
 * warning naming the column. Fields without a native type (another source) use the generic mapping.
 */
async function columnTypes(
  client: pg.PoolClient,
  schema: RecordSchema,
  table: string,
  logger: IngestionContext['logger'] | undefined,
): Promise<string[]> {
  const out: string[] = [];
  for (const f of schema.fields) {
    const generic = fieldTypeToPgType(f.type, f.logical);
    const native = f.native?.dialect === 'postgres' ? f.native.type : undefined;
    if (native === undefined) {
      out.push(generic);
      continue;
    }
    let known = false;
    if (NATIVE_TYPE.test(native) && !native.includes('--')) {
      // to_regtype parses the name as a type (refusing anything else) and says whether it exists here
      known = await client
        .query('SELECT to_regtype($1) IS NOT NULL AS ok', [native])
        .then((r) => r.rows[0]?.ok === true)
        .catch(() => false);
    }
    if (known) out.push(native);
    else {
      logger?.warn?.(
        `Creating ${table}: column ${JSON.stringify(f.name)} has type ${JSON.stringify(native)}, which this database does not know; using ${generic}`,
        { column: f.name, nativeType: native, type: generic },
      );
      out.push(generic);
    }
  }
  return out;
}

/** Create a schema only when missing (CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege even when it exists). */
async function ensureSchema(client: pg.PoolClient, schema: string): Promise<void> {
  const { rows } = await client.query('SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1', [schema]);
  if (!rows.length)
    await ignoreRace(
      client,
      quoteIdentifier(schema, 'schema name'),
      `CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(schema, 'schema name')}`,
    );
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
    if (code === '23505' || code === '42P07' || code === '42P06' || code === '42710') return;
    throw err;
  }
}
