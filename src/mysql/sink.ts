import { once } from 'node:events';
import { Readable } from 'node:stream';
import type { IngestionContext } from '../contracts/context.js';
import type { EndpointDescriptor } from '../contracts/endpoint.js';
import type { ImportRequest, ImportResult, ImportSlice, SinkEndpoint } from '../contracts/sink-endpoint.js';
import type { FieldType, RecordSchema, Row, Value } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import { throwIfAborted } from '../util/abort.js';
import { describeMySqlTable, type MySqlColumnInfo, type MySqlTableInfo } from './catalog.js';
import { endPool, type MySqlPoolLike, MySqlSession, parseMySqlEndpointOptions } from './connection.js';
import { isMySqlRowError, mySqlErrorPosition, wrapMySqlError } from './errors.js';
import {
  formatMySqlTableName,
  type MySqlTableName,
  mySqlQualifiedName,
  parseMySqlTableName,
  quoteMySqlIdentifier,
} from './identifiers.js';
import { type LoadDataEncoding, loadDataEncodingOf, MYSQL_LOAD_DATA_CODEC_ID } from './load-data-codec.js';
import {
  type MySqlLoadMethod,
  type MySqlSinkConfig,
  type MySqlSinkOptions,
  mySqlSinkConfigSchema,
  mySqlSinkDescriptor,
} from './sink-config.js';
import { mySqlTargetType, sinkValue, sqlLiteral, tsvField, ValueRejected } from './type-mapping.js';

const DEFAULT_LEDGER = '_nucleus_ingest_ledger';
const DEFAULT_BATCH = 10_000;
const DEFAULT_STATEMENT_BYTES = 4 * 1024 * 1024;
const INFILE_CHUNK = 1024 * 1024;
const PROGRESS_EVERY_MS = 500;

interface LoadPlan {
  target: MySqlTableName;
  targetSql: string;
  /** The staged fields written, in order, with their target columns. */
  columns: MySqlColumnInfo[];
  info: MySqlTableInfo;
  /**
   * For LOAD DATA text staged with `mysql-tsv`: every staged field in order, with its target column (none for a
   * generated column) and how its text is written; undefined when a field's text does not fit its column as is.
   */
  passThrough?: Array<{ column: MySqlColumnInfo | undefined; encoding: LoadDataEncoding }>;
}

/** A load target: the table (or the merge staging table) and where the slice's rows start. */
interface LoadInto {
  table: string;
  /** LOAD DATA: the staging table has an AUTO_INCREMENT order column. */
  slice: number;
}

/**
 * MySQL / MariaDB sink (descriptor id `mysql`): exactly-once loads with a ledger, `LOAD DATA LOCAL INFILE` streamed
 * from staging or multi-row `INSERT`s sized by bytes.
 *
 * - Creates the target from the staged {@link RecordSchema} when it is missing, keeping types: a field read from
 *   MySQL gets its own `COLUMN_TYPE` back (with a non-UTF-8 character set); other fields map from their type and
 *   logical details (`numeric(12,2)` → `DECIMAL(12,2)`, `timestamptz` → `DATETIME(6)` holding UTC, `uuid` →
 *   `CHAR(36)`, `jsonb` and arrays → `JSON`; see docs/mysql.md).
 * - `append` and `merge` commit per slice: in ONE transaction the sink claims `(run_id, unit_id, slice)` in the
 *   ledger, loads the slice — into the target for `append`, into a temporary table then
 *   `INSERT … SELECT … ON DUPLICATE KEY UPDATE` in slice order for `merge` (the last row of a key wins) — and commits.
 *   A slice already in the ledger is skipped, so re-importing a run after a crash adds nothing.
 * - `replace` deletes the target's rows and loads every slice in one transaction with the ledger rows.
 * - Sessions run in strict mode; `LOAD DATA LOCAL` turns bad values into warnings, so any warning rolls the slice
 *   back as `row_rejected` naming the column, the row and the slice. Generated columns of the target are not written.
 *
 * @example
 * ```ts
 * import { MySqlSink } from '@nucleus/ingestion/mysql';
 * const sink = new MySqlSink({ connectionString: 'mysql://loader:secret@db:3306/dwh' });
 * ```
 * @throws IngestError `config_invalid` for bad options; `import` throws `row_rejected`, `sink_failed` (retryable for connection errors), `aborted`.
 * @public
 */
export class MySqlSink implements SinkEndpoint {
  readonly descriptor: EndpointDescriptor<MySqlSinkConfig> = mySqlSinkDescriptor;
  readonly #config: MySqlSinkConfig;
  readonly #pool: MySqlPoolLike;
  readonly #ownsPool: boolean;
  #database: string | undefined;
  #ledger: MySqlTableName | undefined;
  #ledgerReady: Promise<void> | undefined;
  #server: Promise<{ localInfile: boolean; maxPacket: number }> | undefined;
  #closed = false;

  constructor(options: MySqlSinkOptions) {
    const { config, connection } = parseMySqlEndpointOptions('MySqlSink', mySqlSinkConfigSchema, options);
    this.#config = config;
    if (config.database !== undefined) quoteMySqlIdentifier(config.database, 'sink database name');
    for (const t of Object.values(config.tables ?? {})) parseMySqlTableName(t, config.database ?? 'x');
    if (config.ledgerTable) parseMySqlTableName(config.ledgerTable, config.database ?? 'x');
    this.#database = config.database;
    this.#pool = connection.pool;
    this.#ownsPool = connection.owned;
  }

  /** The target table of a unit: `tables[unitId]`, else the sink database + the unit's table name. @throws IngestError `config_invalid` */
  targetOf(unitId: string, database = this.#database): MySqlTableName {
    const db = database ?? '';
    const explicit = this.#config.tables?.[unitId];
    if (explicit !== undefined && Object.hasOwn(this.#config.tables!, unitId)) return parseMySqlTableName(explicit, db);
    return { database: db, name: parseMySqlTableName(unitId, db).name };
  }

  /**
   * Import the staged slices. Idempotent per `(ctx.runId, unitId, slice)` through the ledger.
   * @throws IngestError `row_rejected` (naming column, row and slice), `config_invalid`, `sink_failed`, `aborted`
   */
  async import(req: ImportRequest, ctx: IngestionContext): Promise<ImportResult> {
    if (this.#closed) throw new IngestError('config_invalid', 'MySqlSink already closed');
    if (!['append', 'replace', 'merge'].includes(req.disposition)) {
      throw new IngestError(
        'config_invalid',
        `MySqlSink.import of ${JSON.stringify(req.unitId)} (run ${ctx.runId}): unknown disposition ${JSON.stringify(req.disposition)} (append, replace or merge)`,
      );
    }
    if (Buffer.byteLength(ctx.runId, 'utf8') > 255)
      throw new IngestError(
        'config_invalid',
        `MySqlSink: run id ${JSON.stringify(ctx.runId.slice(0, 40))}… is longer than 255 bytes`,
      );
    const base = `MySqlSink.import of ${JSON.stringify(req.unitId)} (run ${ctx.runId})`;
    throwIfAborted(ctx.signal, base);
    const details = { unitId: req.unitId, endpointId: ctx.endpointId, sinkId: ctx.sinkId, runId: ctx.runId };
    const s = await MySqlSession.open(this.#pool, base, details, 'sink_failed');
    let healthy = true;
    let what = base;
    try {
      if (this.#database === undefined) {
        const { rows } = await s.query('SELECT DATABASE() AS db');
        if (!rows[0].db)
          throw new IngestError(
            'config_invalid',
            'MySqlSink: no `database` given and the connection has no default database',
          );
        this.#database = String(rows[0].db);
      }
      const target = this.targetOf(req.unitId);
      const targetSql = mySqlQualifiedName(target);
      what = `${base} into ${targetSql}`;
      const fields = req.schema?.fields.length ? req.schema : await inferSchema(req.slices);
      for (const f of fields?.fields ?? []) quoteMySqlIdentifier(f.name, 'column name');
      await this.#ensureLedger(s);
      const info =
        (await describeMySqlTable(s, target)) ?? (await this.#createTarget(s, target, fields, req.primaryKey));
      const plan = buildPlan(target, targetSql, info, fields);
      const server = await this.#serverInfo(s);
      const method: Exclude<MySqlLoadMethod, 'auto'> =
        (this.#config.loadMethod ?? 'auto') === 'auto'
          ? server.localInfile
            ? 'load-data'
            : 'insert'
          : (this.#config.loadMethod as 'insert');
      const progress = new Progress(
        ctx,
        req.slices.reduce((n, x) => n + x.rows, 0),
      );
      const loader = new Loader(this.#config, method, server.maxPacket, plan, ctx, progress);
      if (req.disposition === 'replace') return await this.#replace(s, req, ctx, plan, loader, progress);
      const pk = req.disposition === 'merge' ? mergeKey(req, info, targetSql) : [];
      return await this.#perSlice(s, req, ctx, plan, pk, loader, progress);
    } catch (err) {
      healthy = !(err as { fatal?: boolean })?.fatal;
      throw this.#wrap(err, what, details);
    } finally {
      s.release(healthy);
    }
  }

  /** End the pool the sink built from `connectionString` (an injected pool is left open). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ownsPool) await endPool(this.#pool);
  }

  #wrap(err: unknown, what: string, details: Record<string, unknown>): IngestError {
    if (IngestError.is(err)) return err;
    return wrapMySqlError(err, 'sink_failed', `${what} failed`, details);
  }

  /** Whether the server takes LOAD DATA LOCAL, and its packet limit. */
  #serverInfo(s: MySqlSession): Promise<{ localInfile: boolean; maxPacket: number }> {
    this.#server ??= s
      .query('SELECT @@GLOBAL.local_infile AS li, @@SESSION.max_allowed_packet AS mp')
      .then(({ rows }) => ({ localInfile: Number(rows[0].li) === 1, maxPacket: Number(rows[0].mp) }))
      .catch((err) => {
        this.#server = undefined;
        throw err;
      });
    return this.#server;
  }

  async #ensureLedger(s: MySqlSession): Promise<void> {
    this.#ledger ??= parseMySqlTableName(this.#config.ledgerTable ?? DEFAULT_LEDGER, this.#database);
    const t = mySqlQualifiedName(this.#ledger);
    this.#ledgerReady ??= s
      .query(
        `CREATE TABLE IF NOT EXISTS ${t} (
          run_id VARBINARY(255) NOT NULL,
          unit_id VARBINARY(1024) NOT NULL,
          slice INT NOT NULL,
          target VARCHAR(300) CHARACTER SET utf8mb4 NOT NULL,
          disposition VARCHAR(16) NOT NULL,
          \`rows\` BIGINT NOT NULL DEFAULT 0,
          committed_at DATETIME(6) NOT NULL,
          PRIMARY KEY (run_id, unit_id, slice)
        ) ENGINE=InnoDB`,
      )
      .then(() => undefined);
    try {
      await this.#ledgerReady;
    } catch (err) {
      this.#ledgerReady = undefined;
      throw err;
    }
  }

  async #createTarget(
    s: MySqlSession,
    target: MySqlTableName,
    schema: RecordSchema | undefined,
    primaryKey?: string[],
  ): Promise<MySqlTableInfo> {
    const name = mySqlQualifiedName(target);
    if (!schema?.fields.length) {
      throw new IngestError(
        'config_invalid',
        `Target ${name} does not exist and the staged data has no schema to create it from`,
      );
    }
    const pk = primaryKey ?? schema.primaryKey ?? [];
    const cols = schema.fields.map((f) => {
      const inKey = pk.includes(f.name);
      return `${quoteMySqlIdentifier(f.name, 'column name')} ${mySqlTargetType(f, inKey)}${f.nullable && !inKey ? ' NULL' : ' NOT NULL'}`;
    });
    if (pk.length)
      cols.push(`PRIMARY KEY (${pk.map((k) => quoteMySqlIdentifier(k, 'primary key column')).join(', ')})`);
    await s.query(
      `CREATE TABLE IF NOT EXISTS ${name} (${cols.join(', ')}) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
    );
    const info = await describeMySqlTable(s, target);
    if (!info) throw new IngestError('internal', `Created ${name} but cannot find it in information_schema`);
    return info;
  }

  async #perSlice(
    first: MySqlSession,
    req: ImportRequest,
    ctx: IngestionContext,
    plan: LoadPlan,
    pk: string[],
    loader: Loader,
    progress: Progress,
  ): Promise<ImportResult> {
    const limit = (this.#pool as { config?: { connectionLimit?: number } }).config?.connectionLimit ?? 64;
    const workers = pk.length
      ? 1
      : Math.max(1, Math.min(this.#config.importConcurrency ?? 2, req.slices.length, limit));
    let next = 0;
    let committed = 0;
    let skipped = 0;
    let failed: unknown;
    const work = async (own: MySqlSession | undefined) => {
      let s = own;
      let healthy = true;
      try {
        while (failed === undefined && next < req.slices.length) {
          const slice = req.slices[next++];
          s ??= await MySqlSession.open(
            this.#pool,
            `MySqlSink.import of ${JSON.stringify(req.unitId)}`,
            { runId: ctx.runId },
            'sink_failed',
          );
          try {
            const r = await this.#importSlice(s, req, ctx, plan, pk, slice, loader, progress);
            if (r === undefined) skipped++;
            else committed++;
          } catch (err) {
            healthy = false;
            throw err;
          }
        }
      } catch (err) {
        failed ??= err;
      } finally {
        if (s && s !== own) s.release(healthy);
      }
    };
    await Promise.all(Array.from({ length: workers }, (_, i) => work(i === 0 ? first : undefined)));
    if (failed !== undefined) throw failed;
    return {
      rowsImported: progress.rows,
      provenance: this.#provenance(plan, req, committed, skipped, progress.committedRows, loader),
    };
  }

  /** One slice in one transaction: claim it in the ledger (or skip it: returns undefined), load it, commit. */
  async #importSlice(
    s: MySqlSession,
    req: ImportRequest,
    ctx: IngestionContext,
    plan: LoadPlan,
    pk: string[],
    slice: ImportSlice,
    loader: Loader,
    progress: Progress,
  ): Promise<number | undefined> {
    const ledger = mySqlQualifiedName(this.#ledger!);
    throwIfAborted(ctx.signal, `MySqlSink.import of ${JSON.stringify(req.unitId)}`);
    if (pk.length) await s.query('DROP TEMPORARY TABLE IF EXISTS _nucleus_stage');
    await s.query('START TRANSACTION');
    let open = true;
    try {
      try {
        await s.query(
          `INSERT INTO ${ledger} (run_id, unit_id, slice, target, disposition, committed_at) VALUES (?, ?, ?, ?, ?, UTC_TIMESTAMP(6))`,
          [ctx.runId, req.unitId, slice.index, formatMySqlTableName(plan.target), req.disposition],
        );
      } catch (err) {
        if ((err as { errno?: number }).errno !== 1062) throw err;
        await s.query('ROLLBACK');
        open = false;
        progress.add(slice.rows, slice.index, true);
        return undefined;
      }
      let rows: number;
      if (pk.length) {
        const cols = plan.columns.map((c) => quoteMySqlIdentifier(c.name)).join(', ');
        await s.query(
          `CREATE TEMPORARY TABLE _nucleus_stage (_nucleus_seq BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY) ENGINE=InnoDB SELECT ${cols} FROM ${plan.targetSql} LIMIT 0`,
        );
        rows = await loader.load(s, { table: '_nucleus_stage', slice: slice.index }, slice);
        const rest = plan.columns.filter((c) => !pk.includes(c.name));
        const update = (rest.length ? rest : plan.columns.filter((c) => pk.includes(c.name)).slice(0, 1))
          .map((c) => `${quoteMySqlIdentifier(c.name)} = VALUES(${quoteMySqlIdentifier(c.name)})`)
          .join(', ');
        await s.query(
          `INSERT INTO ${plan.targetSql} (${cols}) SELECT ${cols} FROM _nucleus_stage ORDER BY _nucleus_seq ON DUPLICATE KEY UPDATE ${update}`,
        );
      } else rows = await loader.load(s, { table: plan.targetSql, slice: slice.index }, slice);
      await s.query(`UPDATE ${ledger} SET \`rows\` = ? WHERE run_id = ? AND unit_id = ? AND slice = ?`, [
        rows,
        ctx.runId,
        req.unitId,
        slice.index,
      ]);
      await s.query('COMMIT');
      open = false;
      progress.commit(rows, slice.index);
      return rows;
    } catch (err) {
      if (open) await s.query('ROLLBACK').catch(() => s.poison());
      throw rowError(err, plan, slice.index, ctx.runId);
    } finally {
      if (pk.length) await s.query('DROP TEMPORARY TABLE IF EXISTS _nucleus_stage').catch(() => s.poison());
    }
  }

  async #replace(
    s: MySqlSession,
    req: ImportRequest,
    ctx: IngestionContext,
    plan: LoadPlan,
    loader: Loader,
    progress: Progress,
  ): Promise<ImportResult> {
    const ledger = mySqlQualifiedName(this.#ledger!);
    const indices = req.slices.length ? req.slices.map((x) => x.index) : [-1];
    await s.query('START TRANSACTION');
    let open = true;
    let current = -1;
    try {
      try {
        await s.query(
          `INSERT INTO ${ledger} (run_id, unit_id, slice, target, disposition, committed_at) VALUES ${indices.map(() => "(?, ?, ?, ?, 'replace', UTC_TIMESTAMP(6))").join(', ')}`,
          indices.flatMap((i) => [ctx.runId, req.unitId, i, formatMySqlTableName(plan.target)]),
        );
      } catch (err) {
        if ((err as { errno?: number }).errno !== 1062) throw err;
        await s.query('ROLLBACK');
        open = false;
        for (const x of req.slices) progress.add(x.rows, x.index, true);
        return {
          rowsImported: progress.rows,
          provenance: this.#provenance(plan, req, 0, req.slices.length, 0, loader),
        };
      }
      await s.query(`DELETE FROM ${plan.targetSql}`);
      let imported = 0;
      for (const slice of req.slices) {
        current = slice.index;
        const rows = await loader.load(s, { table: plan.targetSql, slice: slice.index }, slice);
        await s.query(`UPDATE ${ledger} SET \`rows\` = ? WHERE run_id = ? AND unit_id = ? AND slice = ?`, [
          rows,
          ctx.runId,
          req.unitId,
          slice.index,
        ]);
        imported += rows;
      }
      await s.query('COMMIT');
      open = false;
      progress.commit(imported, current);
      return {
        rowsImported: imported,
        provenance: this.#provenance(plan, req, req.slices.length, 0, imported, loader),
      };
    } catch (err) {
      if (open) await s.query('ROLLBACK').catch(() => s.poison());
      throw rowError(err, plan, current, ctx.runId);
    }
  }

  #provenance(plan: LoadPlan, req: ImportRequest, committed: number, skipped: number, rows: number, loader: Loader) {
    const { method, passedThrough } = loader;
    return {
      target: formatMySqlTableName(plan.target),
      ledger: formatMySqlTableName(this.#ledger!),
      disposition: req.disposition,
      loadMethod: method,
      slicesPassedThrough: passedThrough,
      slicesCommitted: committed,
      slicesSkipped: skipped,
      rowsCommitted: rows,
    };
  }
}

/** Encodes staged rows and sends them with LOAD DATA LOCAL INFILE or multi-row INSERTs. */
class Loader {
  /** Slices streamed to LOAD DATA as staged (`mysql-tsv`), without decoding rows. */
  passedThrough = 0;
  readonly #batch: number;
  readonly #stmtBytes: number;

  constructor(
    config: MySqlSinkConfig,
    readonly method: 'load-data' | 'insert',
    maxPacket: number,
    readonly plan: LoadPlan,
    readonly ctx: IngestionContext,
    readonly progress: Progress,
  ) {
    this.#batch = config.batchSize ?? DEFAULT_BATCH;
    this.#stmtBytes = Math.max(16_384, Math.min(config.maxStatementBytes ?? DEFAULT_STATEMENT_BYTES, maxPacket - 4096));
  }

  /** Load one slice into `into.table`; returns the rows loaded. */
  load(s: MySqlSession, into: LoadInto, slice: ImportSlice): Promise<number> {
    if (
      this.method === 'load-data' &&
      this.plan.passThrough &&
      slice.codec === MYSQL_LOAD_DATA_CODEC_ID &&
      typeof slice.reader.iterEncoded === 'function'
    )
      return this.#loadDataEncoded(s, into, slice, this.plan.passThrough);
    return this.method === 'load-data' ? this.#loadData(s, into, slice) : this.#insert(s, into, slice);
  }

  /**
   * A slice staged as LOAD DATA text (`mysql-tsv`) streamed to LOAD DATA LOCAL INFILE unchanged, with backpressure.
   * The reader verifies the bytes (sha256, size, rows) and holds the last chunk back until they pass, so a damaged
   * slice never completes its LOAD DATA; the server's row count must equal the manifest's.
   */
  async #loadDataEncoded(
    s: MySqlSession,
    into: LoadInto,
    slice: ImportSlice,
    fields: NonNullable<LoadPlan['passThrough']>,
  ): Promise<number> {
    const targets: string[] = [];
    const sets: string[] = [];
    fields.forEach(({ column, encoding }, i) => {
      if (!column) {
        targets.push('@_nucleus_skip');
        return;
      }
      const q = quoteMySqlIdentifier(column.name);
      if (encoding === 'binary') {
        targets.push(`@v${i}`);
        sets.push(`${q} = UNHEX(@v${i})`);
      } else if (encoding === 'bit') {
        targets.push(`@v${i}`);
        sets.push(`${q} = CAST(CONV(@v${i}, 2, 10) AS UNSIGNED)`);
      } else targets.push(q);
    });
    let sent = 0;
    let failure: unknown;
    const self = this;
    const sock = s.raw.stream as NodeJS.WritableStream & { writableLength?: number };
    async function* chunks(): AsyncGenerator<Uint8Array> {
      try {
        for await (const chunk of slice.reader.iterEncoded!()) {
          throwIfAborted(self.ctx.signal, `MySqlSink.import of ${JSON.stringify(self.ctx.unitId)}`);
          let n = 0;
          for (let i = chunk.indexOf(0x0a); i !== -1; i = chunk.indexOf(0x0a, i + 1)) n++;
          sent += n;
          yield chunk;
          self.progress.add(n, slice.index, false);
          if ((sock.writableLength ?? 0) > 8 * INFILE_CHUNK) await once(sock as never, 'drain');
        }
      } catch (err) {
        failure = err;
        throw err;
      }
    }
    let res: any;
    try {
      ({ rows: res } = await s.query(
        `LOAD DATA LOCAL INFILE 'nucleus-slice-${into.slice}' INTO TABLE ${into.table} CHARACTER SET utf8mb4
         FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (${targets.join(', ')})${sets.length ? ` SET ${sets.join(', ')}` : ''}`,
        [],
        { infileStreamFactory: () => Readable.from(chunks(), { objectMode: false }) },
      ));
    } catch (err) {
      throw failure ?? err;
    }
    if (failure) throw failure;
    if (sent !== slice.rows)
      throw new IngestError(
        'staging_corrupt',
        `Slice ${slice.index} holds ${sent} rows of LOAD DATA text, its manifest says ${slice.rows}`,
        { details: { slice: slice.index, rows: sent, manifestRows: slice.rows } },
      );
    await this.#checkLoaded(s, res, sent);
    this.passedThrough++;
    return sent;
  }

  /** LOAD DATA LOCAL turns bad values into warnings: any warning, or fewer rows than sent, rejects the slice. */
  async #checkLoaded(s: MySqlSession, res: any, sent: number): Promise<void> {
    const warnings = Number(res?.warningStatus ?? 0);
    if (warnings > 0 || Number(res?.affectedRows) !== sent) {
      const { rows } = await s.query('SHOW WARNINGS LIMIT 5');
      const first = (rows as Array<{ Level: string; Code: number; Message: string }>)[0];
      const message = first
        ? `${first.Message} (${first.Level} ${first.Code})`
        : `${res?.affectedRows} of ${sent} rows loaded`;
      const pos = mySqlErrorPosition(first?.Message);
      throw new RowProblem(message, pos.column, pos.row, first?.Code);
    }
  }

  /** Encode one row (values checked against their columns); a bad value is a ValueRejected naming the column. */
  #encode(row: Row): Array<string | Uint8Array | null> {
    const cols = this.plan.columns;
    const out = new Array<string | Uint8Array | null>(cols.length);
    for (let i = 0; i < cols.length; i++) out[i] = sinkValue(row[cols[i].name] as Value | undefined, cols[i]);
    return out;
  }

  async #loadData(s: MySqlSession, into: LoadInto, slice: ImportSlice): Promise<number> {
    const cols = this.plan.columns;
    const targets: string[] = [];
    const sets: string[] = [];
    cols.forEach((c, i) => {
      const q = quoteMySqlIdentifier(c.name);
      if (c.kind === 'binary') {
        targets.push(`@v${i}`);
        sets.push(`${q} = UNHEX(@v${i})`);
      } else if (c.kind === 'bit') {
        targets.push(`@v${i}`);
        sets.push(`${q} = CAST(CONV(@v${i}, 2, 10) AS UNSIGNED)`);
      } else targets.push(q);
    });
    let sent = 0;
    let failure: unknown;
    const self = this;
    const sock = s.raw.stream as NodeJS.WritableStream & { writableLength?: number };
    async function* chunks(): AsyncGenerator<Buffer> {
      try {
        let text = '';
        for await (const batch of slice.reader.iterBatches(self.#batch)) {
          throwIfAborted(self.ctx.signal, `MySqlSink.import of ${JSON.stringify(self.ctx.unitId)}`);
          for (const row of batch) {
            let values: Array<string | Uint8Array | null>;
            try {
              values = self.#encode(row);
            } catch (err) {
              throw rejectAt(err, sent + 1);
            }
            sent++;
            let line = '';
            for (let i = 0; i < values.length; i++) line += (i ? '\t' : '') + tsvField(values[i]);
            text += `${line}\n`;
            if (text.length >= INFILE_CHUNK) {
              yield Buffer.from(text, 'utf8');
              text = '';
              if ((sock.writableLength ?? 0) > 8 * INFILE_CHUNK) await once(sock as never, 'drain');
            }
          }
          self.progress.add(batch.length, slice.index, false);
        }
        if (text) yield Buffer.from(text, 'utf8');
      } catch (err) {
        failure = err;
        throw err;
      }
    }
    let res: any;
    try {
      ({ rows: res } = await s.query(
        `LOAD DATA LOCAL INFILE 'nucleus-slice-${into.slice}' INTO TABLE ${into.table} CHARACTER SET utf8mb4
         FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (${targets.join(', ')})${sets.length ? ` SET ${sets.join(', ')}` : ''}`,
        [],
        { infileStreamFactory: () => Readable.from(chunks(), { objectMode: false }) },
      ));
    } catch (err) {
      throw failure ?? err;
    }
    if (failure) throw failure;
    await this.#checkLoaded(s, res, sent);
    return sent;
  }

  async #insert(s: MySqlSession, into: LoadInto, slice: ImportSlice): Promise<number> {
    const cols = this.plan.columns;
    const head = `INSERT INTO ${into.table} (${cols.map((c) => quoteMySqlIdentifier(c.name)).join(', ')}) VALUES `;
    let sql = head;
    let inStatement = 0;
    let firstRow = 1;
    let total = 0;
    const flush = async () => {
      if (!inStatement) return;
      try {
        await s.query(sql);
      } catch (err) {
        const pos = mySqlErrorPosition((err as Error).message);
        if (isMySqlRowError(err))
          throw new RowProblem(
            (err as Error).message,
            pos.column,
            pos.row !== undefined ? firstRow + pos.row - 1 : undefined,
            (err as { errno?: number }).errno,
            err,
          );
        throw err;
      }
      firstRow = total + 1;
      sql = head;
      inStatement = 0;
    };
    for await (const batch of slice.reader.iterBatches(this.#batch)) {
      throwIfAborted(this.ctx.signal, `MySqlSink.import of ${JSON.stringify(this.ctx.unitId)}`);
      for (const row of batch) {
        let values: Array<string | Uint8Array | null>;
        try {
          values = this.#encode(row);
        } catch (err) {
          throw rejectAt(err, total + 1);
        }
        let tuple = '(';
        for (let i = 0; i < values.length; i++) tuple += (i ? ',' : '') + sqlLiteral(values[i], cols[i]);
        tuple += ')';
        if (head.length + tuple.length > this.#stmtBytes) {
          throw new RowProblem(
            `a row of ${tuple.length} bytes does not fit one statement (max_allowed_packet allows ${this.#stmtBytes}); use loadMethod 'load-data'`,
            undefined,
            total + 1,
          );
        }
        if (inStatement && sql.length + tuple.length + 1 > this.#stmtBytes) await flush();
        sql += inStatement ? `,${tuple}` : tuple;
        inStatement++;
        total++;
      }
      this.progress.add(batch.length, slice.index, false);
    }
    await flush();
    return total;
  }
}

/** A row that does not fit, before it is named with the slice and run. */
class RowProblem extends Error {
  constructor(
    message: string,
    readonly column: string | undefined,
    readonly row: number | undefined,
    readonly errno?: number,
    override readonly cause?: unknown,
  ) {
    super(message);
  }
}

function rejectAt(err: unknown, row: number): unknown {
  if (err instanceof ValueRejected) return new RowProblem(err.message, err.column, row);
  return err;
}

/** Map a failure inside a slice: data errors become `row_rejected` naming the column, row and slice. */
function rowError(err: unknown, plan: LoadPlan, slice: number, runId: string): unknown {
  if (IngestError.is(err)) return err;
  let problem: RowProblem | undefined;
  if (err instanceof RowProblem) problem = err;
  else if (isMySqlRowError(err)) {
    const pos = mySqlErrorPosition((err as Error).message);
    problem = new RowProblem((err as Error).message, pos.column, undefined, (err as { errno?: number }).errno, err);
  }
  if (!problem) return err;
  const { column, row } = problem;
  return new IngestError(
    'row_rejected',
    `Slice ${slice} of run ${runId}: a row does not fit ${plan.targetSql}${column ? ` column ${JSON.stringify(column)}` : ''}${row ? ` (row ${row} of the slice)` : ''}: ${problem.message}`,
    {
      cause: problem.cause ?? problem,
      details: { table: plan.targetSql, column, slice, row, errno: problem.errno },
    },
  );
}

function mergeKey(req: ImportRequest, info: MySqlTableInfo, targetSql: string): string[] {
  const pk = req.primaryKey ?? req.schema?.primaryKey ?? info.primaryKey;
  if (!pk?.length)
    throw new IngestError(
      'config_invalid',
      `merge into ${targetSql} needs a primary key (none given, none staged, none on the table)`,
    );
  const same = (a: string[]) =>
    a.length === pk.length && [...a].sort().join('\u0000') === [...pk].sort().join('\u0000');
  if (!same(info.primaryKey) && !info.uniqueKeys.some(same))
    throw new IngestError(
      'config_invalid',
      `merge into ${targetSql} on ${JSON.stringify(pk)} needs a primary key or unique index on exactly those columns`,
      { details: { table: targetSql, primaryKey: pk } },
    );
  return pk;
}

function buildPlan(
  target: MySqlTableName,
  targetSql: string,
  info: MySqlTableInfo,
  schema: RecordSchema | undefined,
): LoadPlan {
  const byName = new Map(info.columns.map((c) => [c.name.toLowerCase(), c]));
  const names = schema?.fields.length ? schema.fields.map((f) => f.name) : info.columns.map((c) => c.name);
  const missing = names.filter((n) => !byName.has(n.toLowerCase()));
  if (missing.length) {
    throw new IngestError(
      'config_invalid',
      `Target ${targetSql} has no column ${missing.map((m) => JSON.stringify(m)).join(', ')} for the staged field${missing.length > 1 ? 's' : ''}`,
      { details: { table: targetSql, missing } },
    );
  }
  // generated columns compute their own values; the staged field's name is used to read rows
  const columns = names.map((n) => ({ ...byName.get(n.toLowerCase())!, name: n })).filter((c) => !c.generated);
  const plan: LoadPlan = { target, targetSql, columns, info };
  // LOAD DATA text passes through when every staged field's text is what its column reads: hex into a binary
  // column, binary digits into BIT, text into any other column (else the slice is decoded and written as rows)
  if (schema?.fields.length) {
    const fields = schema.fields.map((f) => {
      const c = byName.get(f.name.toLowerCase())!;
      const encoding = loadDataEncodingOf(f);
      const wants: LoadDataEncoding = c.kind === 'binary' ? 'binary' : c.kind === 'bit' ? 'bit' : 'text';
      return { column: c.generated ? undefined : { ...c, name: f.name }, encoding, fits: wants === encoding };
    });
    if (fields.every((f) => f.fits || !f.column))
      plan.passThrough = fields.map(({ column, encoding }) => ({ column, encoding }));
  }
  return plan;
}

async function inferSchema(slices: ImportSlice[]): Promise<RecordSchema | undefined> {
  for (const s of slices) {
    for await (const batch of s.reader.iterBatches(1000)) {
      if (!batch.length) continue;
      const names: string[] = [];
      const types = new Map<string, FieldType | undefined>();
      for (const row of batch) {
        for (const [k, v] of Object.entries(row)) {
          if (!types.has(k)) {
            names.push(k);
            types.set(k, undefined);
          }
          if (v !== null && v !== undefined && !types.get(k)) types.set(k, typeOfValue(v));
        }
      }
      return { fields: names.map((n) => ({ name: n, type: types.get(n) ?? 'string', nullable: true })) };
    }
  }
  return undefined;
}

function typeOfValue(v: Value): FieldType {
  if (typeof v === 'bigint') return 'int64';
  if (typeof v === 'number') return 'float64';
  if (typeof v === 'boolean') return 'boolean';
  if (typeof v === 'string') return 'string';
  if (v instanceof Date) return 'timestamp';
  if (v instanceof Uint8Array) return 'binary';
  const name = (v as object)?.constructor?.name;
  if (name === 'Timestamp') return 'timestamp';
  return 'json';
}

/** Progress events, throttled: at most one every 500 ms, plus one per committed slice. */
class Progress {
  rows = 0;
  committedRows = 0;
  #last = 0;
  constructor(
    readonly ctx: IngestionContext,
    readonly total: number,
  ) {}

  add(n: number, slice: number, committed: boolean): void {
    this.rows += n;
    const now = Date.now();
    if (committed || now - this.#last >= PROGRESS_EVERY_MS) this.#emit(slice, now);
  }

  commit(rows: number, slice: number): void {
    this.committedRows += rows;
    this.#emit(slice, Date.now());
  }

  #emit(slice: number, now: number): void {
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
