import { once } from 'node:events';
import { Readable } from 'node:stream';
import type { IngestionContext } from '../contracts/context.js';
import type { EndpointDescriptor } from '../contracts/endpoint.js';
import type { ImportRequest, ImportSlice } from '../contracts/sink-endpoint.js';
import type { Row, Value } from '../contracts/values.js';
import { IngestError } from '../errors/ingest-error.js';
import type { ImportProgress } from '../sql/import-progress.js';
import { type LedgerSinkDialect, type LoadPlan, RowProblem, type SliceLoader } from '../sql/ledger-dialect.js';
import { LedgerSink, SqlLedgerSink } from '../sql/ledger-sink.js';
import { countLines, rowText } from '../sql/ledger-text.js';
import { throwIfAborted } from '../util/abort.js';
import { describeMySqlTable, type MySqlColumnInfo } from './catalog.js';
import { mySqlChangeApply } from './change-apply.js';
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
import { mySqlSwap } from './swap.js';
import {
  keyCollated,
  mySqlTargetType,
  NOPAD_BIN,
  sinkValue,
  sqlLiteral,
  tsvField,
  ValueRejected,
} from './type-mapping.js';

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
 * - `replace` deletes the target's rows and loads every slice in one transaction with the ledger rows; after a change
 *   the target cannot take in place (a type changed or narrowed, a column dropped) it builds the new table beside the
 *   target, loads and commits it, swaps it in with one atomic `RENAME TABLE` and writes the ledger rows after
 *   (docs/schema-evolution.md).
 * - Sessions run in strict mode; `LOAD DATA LOCAL` turns bad values into warnings, so any warning rolls the slice
 *   back as `row_rejected` naming the column, the row and the slice. Generated columns of the target are not written.
 *
 * @example
 * ```ts
 * import { MySqlSink } from '@nucleus/ingestion/mysql';
 * const sink = new MySqlSink({ connectionString: 'mysql://loader:secret@db:3306/dwh', schema: 'dwh' });
 * ```
 * @throws IngestError `config_invalid` for bad options; `import` throws `row_rejected`, `sink_failed` (retryable for connection errors), `sink_busy`, `schema_conflict`, `aborted`.
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
  /** The server's binary NO PAD collation for created text key columns (asked once). */
  let nopadBin: Promise<string | undefined> | undefined;
  return {
    ...mySqlDialect,
    sinkName: 'MySqlSink',
    caseInsensitiveColumns: true,
    maxRunIdBytes: 255,
    begin: 'START TRANSACTION',
    tableOptions: ' ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin',
    stage: {
      table: STAGE_TABLE,
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
    swap: mySqlSwap,
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
    columnType: async (s, f, inKey) => {
      const type = mySqlTargetType(f, inKey);
      if (!inKey) return type;
      nopadBin ??= s
        .query(
          `SELECT COLLATION_NAME AS c FROM information_schema.COLLATIONS WHERE COLLATION_NAME IN (${NOPAD_BIN.map((c) => `'${c}'`).join(', ')})`,
        )
        .then(({ rows }) => NOPAD_BIN.find((c) => (rows as Array<{ c: string }>).some((r) => r.c === c)));
      return keyCollated(type, await nopadBin);
    },
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
    async loader(s, plan, req, ctx, progress) {
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
      const loader = new Loader(config, method, maxPacket, plan, ctx, progress);
      loader.paddedKeys = paddedMergeKeys(req, plan);
      return loader;
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
    changes: mySqlChangeApply(),
  };
}

const STAGE_TABLE = '_nucleus_stage';

/**
 * The merge key's columns when one of them is text under a collation that is not binary NO PAD (a pre-created
 * target's `utf8mb4_general_ci`, `utf8mb4_bin`, …): there, keys the source holds apart (`'a'`, `'a '`, `'A'`) can
 * be one key, and `ON DUPLICATE KEY UPDATE` would fold their rows into one. Empty otherwise (no check needed).
 */
function paddedMergeKeys(req: ImportRequest, plan: LoadPlan<MySqlColumnInfo>): MySqlColumnInfo[] {
  if (req.disposition !== 'merge') return [];
  const pk = (req.primaryKey ?? req.schema?.primaryKey ?? plan.info.primaryKey).map((k) => k.toLowerCase());
  const keys = plan.columns.filter((c) => pk.includes(c.name.toLowerCase()));
  const text = (c: MySqlColumnInfo) => c.kind === 'string' || c.kind === 'enum' || c.kind === 'set';
  const nopad = (c: MySqlColumnInfo) => (NOPAD_BIN as readonly string[]).includes(c.collation ?? '');
  return keys.some((c) => text(c) && !nopad(c)) ? keys : [];
}

/**
 * Refuse a slice holding two keys that are distinct byte for byte but one key under the target's collation, before
 * the merge writes anything (`row_rejected` naming the column and the second row).
 */
async function refuseCollidingKeys(s: MySqlSession, keys: MySqlColumnInfo[]): Promise<void> {
  const q = (c: MySqlColumnInfo) => mySqlDialect.quote(c.name);
  const first = keys.find((c) => c.kind === 'string' || c.kind === 'enum' || c.kind === 'set') ?? keys[0];
  const { rows } = await s.query(
    `SELECT MAX(_nucleus_seq) AS seq, HEX(MIN(CAST(${q(first)} AS BINARY))) AS a, HEX(MAX(CAST(${q(first)} AS BINARY))) AS b
       FROM ${STAGE_TABLE} GROUP BY ${keys.map(q).join(', ')}
      HAVING COUNT(DISTINCT ${keys.map((c) => `CAST(${q(c)} AS BINARY)`).join(', ')}) > 1 LIMIT 1`,
  );
  const hit = (rows as Array<{ seq: number; a: string; b: string }>)[0];
  if (!hit) return;
  const text = (h: string) => JSON.stringify(Buffer.from(String(h), 'hex').toString('utf8'));
  throw new RowProblem(
    `the keys ${text(hit.a)} and ${text(hit.b)} are distinct in the source but one key under the target's collation ${first.collation ?? ''} (trailing spaces, case or accents): merging would fold their rows into one; use a binary NO PAD collation (utf8mb4_nopad_bin, utf8mb4_0900_bin) for the key`,
    first.name,
    Number(hit.seq),
  );
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
  async load(s: MySqlSession, table: string, slice: ImportSlice): Promise<number> {
    const rows = await this.#load(s, table, slice);
    if (table === STAGE_TABLE && this.paddedKeys.length) await refuseCollidingKeys(s, this.paddedKeys);
    return rows;
  }

  /** Merge-key columns of a pre-created target compared with padding or case folding (see {@link paddedMergeKeys}). */
  paddedKeys: MySqlColumnInfo[] = [];

  #load(s: MySqlSession, table: string, slice: ImportSlice): Promise<number> {
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
    if (warnings > 0 || Number(res?.affectedRows) !== sent)
      await this.#rejectWarnings(s, `${res?.affectedRows} of ${sent} rows loaded`, 1);
  }

  /** The first warning or note of the last statement as a RowProblem (its row counted from `firstRow`). */
  async #rejectWarnings(s: MySqlSession, otherwise: string, firstRow: number): Promise<never> {
    const { rows } = await s.query('SHOW WARNINGS LIMIT 5');
    const first = (rows as Array<{ Level: string; Code: number; Message: string }>)[0];
    const message = first ? `${first.Message} (${first.Level} ${first.Code})` : otherwise;
    const pos = mySqlErrorPosition(first?.Message);
    const row = pos.row !== undefined ? firstRow + pos.row - 1 : undefined;
    throw new RowProblem(message, pos.column, row, { errno: first?.Code });
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
      let res: any;
      try {
        ({ rows: res } = await s.query(sql));
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
      // strict mode refuses what does not fit, but a DECIMAL rounds extra decimals with only a note (1e-100 → 0.00):
      // any warning or note rejects the slice, as LOAD DATA's does
      if (Number(res?.warningStatus ?? 0) > 0) await this.#rejectWarnings(s, 'inserted', firstRow);
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
