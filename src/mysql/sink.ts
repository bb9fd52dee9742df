import { once } from 'node:events';
import { Readable } from 'node:stream';
import type { IngestionContext } from '../contracts/context.js';
import type { EndpointDescriptor } from '../contracts/endpoint.js';
import type { ImportSlice } from '../contracts/sink-endpoint.js';
import type { Row, Value } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import type { ImportProgress } from '../sql/import-progress.js';
import { type LedgerSinkDialect, type LoadPlan, RowProblem, type SliceLoader } from '../sql/ledger-dialect.js';
import { LedgerSink, SqlLedgerSink } from '../sql/ledger-sink.js';
import { countLines, rowText } from '../sql/ledger-text.js';
import { throwIfAborted } from '../util/abort.js';
import { describeMySqlTable, type MySqlColumnInfo } from './catalog.js';
import { endPool, type MySqlPoolLike, MySqlSession, parseMySqlEndpointOptions } from './connection.js';
import { mySqlDialect } from './dialect.js';
import { isMySqlRowError, mySqlErrorPosition } from './errors.js';
import type { TableName } from './identifiers.js';
import { type LoadDataEncoding, loadDataEncodingOf, MYSQL_LOAD_DATA_CODEC_ID } from './load-data-codec.js';
import {
  type MySqlLoadMethod,
  type MySqlSinkConfig,
  type MySqlSinkOptions,
  mySqlSinkConfigSchema,
  mySqlSinkDescriptor,
} from './sink-config.js';
import { mySqlTargetType, sinkValue, sqlLiteral, tsvField, ValueRejected } from './type-mapping.js';

const DEFAULT_BATCH = 10_000;
const DEFAULT_STATEMENT_BYTES = 4 * 1024 * 1024;
const INFILE_CHUNK = 1024 * 1024;

/** One field of a LOAD DATA text: its target column (none: skipped, a generated column) and how its text is written. */
interface LoadField {
  column: string | undefined;
  encoding: LoadDataEncoding;
}

/** How a column reads LOAD DATA text: hex into a binary column, binary digits into BIT, text into any other. */
const encodingOf = (c: MySqlColumnInfo): LoadDataEncoding =>
  c.kind === 'binary' ? 'binary' : c.kind === 'bit' ? 'bit' : 'text';

/**
 * MySQL / MariaDB sink (descriptor id `mysql`): exactly-once loads with a ledger, `LOAD DATA LOCAL INFILE` streamed
 * from staging or multi-row `INSERT`s sized by bytes.
 *
 * - Creates the target from the staged `RecordSchema` when it is missing, keeping types: a field read from
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
 * const sink = new MySqlSink({ connectionString: 'mysql://loader:secret@db:3306/dwh', schema: 'dwh' });
 * ```
 * @throws IngestError `config_invalid` for bad options; `import` throws `row_rejected`, `sink_failed` (retryable for connection errors), `aborted`.
 * @public
 */
export class MySqlSink extends SqlLedgerSink {
  readonly descriptor: EndpointDescriptor<MySqlSinkConfig> = mySqlSinkDescriptor;

  constructor(options: MySqlSinkOptions) {
    const { config, connection: c } = parseMySqlEndpointOptions('MySqlSink', mySqlSinkConfigSchema, options);
    const core = { ...config, schema: config.schema ?? config.database };
    super(new LedgerSink(mySqlLedgerDialect(c.pool, config), core, c.owned ? () => endPool(c.pool) : undefined));
  }

  /** The target table of a unit: `tables[unitId]`, else the sink schema + the unit's table name. @throws IngestError `config_invalid` */
  targetOf(unitId: string, database?: string): TableName {
    const t = this.target(unitId, database);
    return { database: t.schema, name: t.name };
  }
}

/** MySQL's part of the ledger sink (docs/decisions/0009-one-sql-layer.md). */
function mySqlLedgerDialect(
  pool: MySqlPoolLike,
  config: MySqlSinkConfig,
): LedgerSinkDialect<MySqlSession, MySqlColumnInfo> {
  /** Whether the server takes LOAD DATA LOCAL, and its packet limit (asked once). */
  let server: Promise<{ localInfile: boolean; maxPacket: number }> | undefined;
  return {
    ...mySqlDialect,
    sinkName: 'MySqlSink',
    caseInsensitiveColumns: true,
    maxRunIdBytes: 255,
    begin: 'START TRANSACTION',
    tableOptions: ' ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin',
    stage: {
      table: '_nucleus_stage',
      // the AUTO_INCREMENT sequence keeps the slice's row order for the merge
      create: (cols, target) =>
        `CREATE TEMPORARY TABLE _nucleus_stage (_nucleus_seq BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY) ENGINE=InnoDB SELECT ${cols} FROM ${target} LIMIT 0`,
      merge: (target, cols, keys, rest, nulls) => {
        const sets = [
          ...(rest.length ? rest : keys.slice(0, 1)).map((c) => `${c} = VALUES(${c})`),
          ...nulls.map((c) => `${c} = NULL`),
        ];
        return `INSERT INTO ${target} (${cols.join(', ')}) SELECT ${cols.join(', ')} FROM _nucleus_stage ORDER BY _nucleus_seq ON DUPLICATE KEY UPDATE ${sets.join(', ')}`;
      },
      drop: 'DROP TEMPORARY TABLE IF EXISTS _nucleus_stage',
    },
    typeRules: 'mysql',
    columnTypeOf: (c) => c.columnType,
    alterType: (t, c, type) =>
      `ALTER TABLE ${t} MODIFY COLUMN ${mySqlDialect.quote(c.name)} ${type}${c.nullable ? ' NULL' : ' NOT NULL'}`,
    dropNotNull: (t, c) =>
      `ALTER TABLE ${t} MODIFY COLUMN ${mySqlDialect.quote(c.name)} ${c.columnType}${c.charset ? ` CHARACTER SET ${c.charset}` : ''}${c.collation ? ` COLLATE ${c.collation}` : ''} NULL`,
    async alterTable(s, _t, sql) {
      try {
        await s.query(sql);
      } catch (err) {
        // 1060: a column another importer added meanwhile
        if ((err as { errno?: number }).errno !== 1060) throw err;
      }
    },
    open: (what, details) => MySqlSession.open(pool, what, details, 'sink_failed'),
    async currentSchema(s) {
      const { rows } = await s.query('SELECT DATABASE() AS db');
      if (!rows[0].db)
        throw new IngestError(
          'config_invalid',
          'MySqlSink: no `schema` given and the connection has no default database',
        );
      return String(rows[0].db);
    },
    poolSize: () => (pool as { config?: { connectionLimit?: number } }).config?.connectionLimit ?? 64,
    ledgerDdl: (t) => `CREATE TABLE IF NOT EXISTS ${t} (
          run_id VARBINARY(255) NOT NULL,
          unit_id VARBINARY(1024) NOT NULL,
          slice INT NOT NULL,
          target VARCHAR(300) CHARACTER SET utf8mb4 NOT NULL,
          disposition VARCHAR(16) NOT NULL,
          \`rows\` BIGINT NOT NULL DEFAULT 0,
          committed_at DATETIME(6) NOT NULL,
          PRIMARY KEY (run_id, unit_id, slice)
        ) ENGINE=InnoDB`,
    createTable: async (s, _t, ddl) => void (await s.query(ddl)),
    columnType: async (_s, f, inKey) => mySqlTargetType(f, inKey),
    describe: (s, t) => describeMySqlTable(s, { database: t.schema, name: t.name }),
    clear: (t) => `DELETE FROM ${t}`,
    async claim(s, ledger, c) {
      try {
        await s.query(
          `INSERT INTO ${mySqlDialect.qualified(ledger)} (run_id, unit_id, slice, target, disposition, committed_at) VALUES ${c.slices.map(() => '(?, ?, ?, ?, ?, UTC_TIMESTAMP(6))').join(', ')}`,
          c.slices.flatMap((i) => [c.runId, c.unitId, i, c.target, c.disposition]),
        );
        return true;
      } catch (err) {
        if ((err as { errno?: number }).errno !== 1062) throw err;
        return false;
      }
    },
    async loader(s, plan, _req, ctx, progress) {
      server ??= s
        .query('SELECT @@GLOBAL.local_infile AS li, @@SESSION.max_allowed_packet AS mp')
        .then(({ rows }) => ({ localInfile: Number(rows[0].li) === 1, maxPacket: Number(rows[0].mp) }))
        .catch((err) => {
          server = undefined;
          throw err;
        });
      const { localInfile, maxPacket } = await server;
      const method: Exclude<MySqlLoadMethod, 'auto'> =
        (config.loadMethod ?? 'auto') === 'auto'
          ? localInfile
            ? 'load-data'
            : 'insert'
          : (config.loadMethod as 'insert');
      return new Loader(config, method, maxPacket, plan, ctx, progress);
    },
    rowProblem(err) {
      if (!isMySqlRowError(err)) return undefined;
      const { column } = mySqlErrorPosition((err as Error).message);
      return new RowProblem(
        (err as Error).message,
        column,
        undefined,
        { errno: (err as { errno?: number }).errno },
        err,
      );
    },
    reusableAfter: (err) => !(err as { fatal?: boolean })?.fatal,
  };
}

/** Encodes staged rows and sends them with LOAD DATA LOCAL INFILE or multi-row INSERTs. */
class Loader implements SliceLoader<MySqlSession> {
  /** Slices streamed to LOAD DATA as staged (`mysql-tsv`), without decoding rows. */
  passedThrough = 0;
  readonly #batch: number;
  readonly #stmtBytes: number;
  /** The LOAD DATA fields of a slice staged as LOAD DATA text whose every field is read by its column as written. */
  readonly #passThrough: LoadField[] | undefined;

  constructor(
    config: MySqlSinkConfig,
    readonly method: 'load-data' | 'insert',
    maxPacket: number,
    readonly plan: LoadPlan<MySqlColumnInfo>,
    readonly ctx: IngestionContext,
    readonly progress: ImportProgress,
  ) {
    this.#batch = config.batchSize ?? DEFAULT_BATCH;
    this.#stmtBytes = Math.max(16_384, Math.min(config.maxStatementBytes ?? DEFAULT_STATEMENT_BYTES, maxPacket - 4096));
    const fields = plan.schema?.fields;
    if (fields?.length) {
      const byName = new Map(plan.info.columns.map((c) => [c.name.toLowerCase(), c]));
      const staged = fields.map((f) => ({ f, c: byName.get(f.name.toLowerCase())! }));
      if (staged.every(({ f, c }) => c.generated || encodingOf(c) === loadDataEncodingOf(f)))
        this.#passThrough = staged.map(({ f, c }) => ({
          column: c.generated ? undefined : f.name,
          encoding: loadDataEncodingOf(f),
        }));
    }
  }

  provenance() {
    return { loadMethod: this.method, slicesPassedThrough: this.passedThrough };
  }

  /** Load one slice into `table`; returns the rows loaded. */
  load(s: MySqlSession, table: string, slice: ImportSlice): Promise<number> {
    if (this.method === 'insert') return this.#insert(s, table, slice);
    if (this.#passThrough && slice.codec === MYSQL_LOAD_DATA_CODEC_ID && typeof slice.reader.iterEncoded === 'function')
      return this.#loadDataEncoded(s, table, slice, this.#passThrough);
    return this.#loadRows(s, table, slice);
  }

  #checkAborted(): void {
    throwIfAborted(this.ctx.signal, `MySqlSink.import of ${JSON.stringify(this.ctx.unitId)}`);
  }

  /**
   * A slice staged as LOAD DATA text (`mysql-tsv`) streamed to LOAD DATA LOCAL INFILE unchanged. The reader verifies
   * the bytes (sha256, size, rows) and holds the last chunk back until they pass, so a damaged slice never completes
   * its LOAD DATA; the server's row count must equal the manifest's.
   */
  async #loadDataEncoded(s: MySqlSession, table: string, slice: ImportSlice, fields: LoadField[]): Promise<number> {
    let sent = 0;
    const self = this;
    async function* chunks(): AsyncGenerator<Uint8Array> {
      for await (const chunk of slice.reader.iterEncoded!()) {
        self.#checkAborted();
        const n = countLines(chunk);
        sent += n;
        yield chunk;
        self.progress.add(n, slice.index);
      }
    }
    const res = await this.#loadData(s, table, slice, fields, chunks());
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

  /** Rows encoded (values checked against their columns) as LOAD DATA text. */
  async #loadRows(s: MySqlSession, table: string, slice: ImportSlice): Promise<number> {
    let sent = 0;
    const encode = (row: Row, n: number) => {
      const values = this.#encode(row, n);
      sent = n;
      let line = '';
      for (let i = 0; i < values.length; i++) line += (i ? '\t' : '') + tsvField(values[i]);
      return `${line}\n`;
    };
    const on = { batch: () => this.#checkAborted(), rows: (n: number) => this.progress.add(n, slice.index) };
    const chunks = rowText(slice.reader.iterBatches(this.#batch), INFILE_CHUNK, encode, on);
    const fields = this.plan.columns.map((c) => ({ column: c.name, encoding: encodingOf(c) }));
    await this.#checkLoaded(s, await this.#loadData(s, table, slice, fields, chunks), sent);
    return sent;
  }

  /** Stream `text` to LOAD DATA LOCAL INFILE into `fields`, with backpressure on the socket; returns the OK packet. */
  async #loadData(
    s: MySqlSession,
    table: string,
    slice: ImportSlice,
    fields: LoadField[],
    text: AsyncIterable<Uint8Array>,
  ): Promise<any> {
    const targets: string[] = [];
    const sets: string[] = [];
    fields.forEach(({ column, encoding }, i) => {
      const q = column === undefined ? '@_nucleus_skip' : mySqlDialect.quote(column);
      if (column === undefined || encoding === 'text') targets.push(q);
      else {
        targets.push(`@v${i}`);
        sets.push(`${q} = ${encoding === 'binary' ? `UNHEX(@v${i})` : `CAST(CONV(@v${i}, 2, 10) AS UNSIGNED)`}`);
      }
    });
    let failure: unknown;
    const sock = s.raw.stream as NodeJS.WritableStream & { writableLength?: number };
    async function* guarded(): AsyncGenerator<Uint8Array> {
      try {
        for await (const chunk of text) {
          yield chunk;
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
        `LOAD DATA LOCAL INFILE 'nucleus-slice-${slice.index}' INTO TABLE ${table} CHARACTER SET utf8mb4
         FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (${targets.join(', ')})${sets.length ? ` SET ${sets.join(', ')}` : ''}`,
        [],
        { infileStreamFactory: () => Readable.from(guarded(), { objectMode: false }) },
      ));
    } catch (err) {
      throw failure ?? err;
    }
    if (failure) throw failure;
    return res;
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
      throw new RowProblem(message, pos.column, pos.row, { errno: first?.Code });
    }
  }

  /** Encode row number `row` (values checked against their columns); a bad value is a RowProblem naming the column. */
  #encode(row: Row, n: number): Array<string | Uint8Array | null> {
    const cols = this.plan.columns;
    const out = new Array<string | Uint8Array | null>(cols.length);
    try {
      for (let i = 0; i < cols.length; i++) out[i] = sinkValue(row[cols[i].name] as Value | undefined, cols[i]);
    } catch (err) {
      throw err instanceof ValueRejected ? new RowProblem(err.message, err.column, n) : err;
    }
    return out;
  }

  async #insert(s: MySqlSession, table: string, slice: ImportSlice): Promise<number> {
    const cols = this.plan.columns;
    const head = `INSERT INTO ${table} (${cols.map((c) => mySqlDialect.quote(c.name)).join(', ')}) VALUES `;
    let sql = head;
    let inStatement = 0;
    let firstRow = 1;
    let total = 0;
    const flush = async () => {
      if (!inStatement) return;
      try {
        await s.query(sql);
      } catch (err) {
        if (!isMySqlRowError(err)) throw err;
        const pos = mySqlErrorPosition((err as Error).message);
        const row = pos.row !== undefined ? firstRow + pos.row - 1 : undefined;
        throw new RowProblem(
          (err as Error).message,
          pos.column,
          row,
          { errno: (err as { errno?: number }).errno },
          err,
        );
      }
      firstRow = total + 1;
      sql = head;
      inStatement = 0;
    };
    for await (const batch of slice.reader.iterBatches(this.#batch)) {
      this.#checkAborted();
      for (const row of batch) {
        const values = this.#encode(row, total + 1);
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
      this.progress.add(batch.length, slice.index);
    }
    await flush();
    return total;
  }
}
