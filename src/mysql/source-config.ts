import { z } from 'zod';
import type { EndpointDescriptor } from '../contracts/endpoint.js';
import { IngestError } from '../errors/ingest-error.js';
import type { MySqlPoolLike } from './connection.js';
import { mySqlConnectionStringSchema } from './connection.js';
import { parseMySqlTableName } from './identifiers.js';
import type { ZeroDatePolicy } from './type-mapping.js';

/** Per-unit settings of {@link MySqlSource}. @public */
export interface MySqlUnitConfig {
  /**
   * Columns whose (tuple) value grows as rows are written: `updated_at`, `id`, `(day, seq)`. Incremental reads resume
   * AT the last value (inclusive) and skip the rows already exported there (boundary dedupe by row fingerprint), so
   * rows that tie with the last value and arrive later are read, whatever their key. See docs/mysql.md.
   */
  cursorColumns?: string[];
  /**
   * Lookback for transactions that commit late: every run re-reads the rows whose first cursor column lies within
   * `lag` of the greatest value seen, and exports those it has not exported before. For `DATE`/`DATETIME`/`TIMESTAMP`
   * cursors an interval (`'15 minutes'`, `'2 days'`; units microsecond to year) or a number of seconds; for numeric
   * cursors a number in the cursor's own unit (an integer for integer columns).
   * @defaultValue no lookback: only rows tying with the last value are re-read
   */
  lag?: string | number;
  /**
   * Most rows the boundary (rows within `lag`, ties with the last value, rows whose cursor is NULL) may hold in the
   * checkpoint (8 bytes each). A `lag` window holding more shrinks to the ties for that run; ties and NULL rows are
   * always kept (a warning is logged when they alone exceed it).
   * @defaultValue 100000
   */
  boundaryMaxRows?: number;
  /** Tie-breaker and slicing key; defaults to the table's primary key. */
  primaryKey?: string[];
  /** Columns to read, in this order; defaults to every column. */
  columns?: string[];
}

/** JSON config of the `mysql` source. @public */
export interface MySqlSourceConfig {
  /** `mysql://user:password@host:3306/db`; the password is registered as a secret and never reported. */
  connectionString?: string;
  /** Settings per unit id (`database.table`). */
  units?: Record<string, MySqlUnitConfig>;
  /** Databases `collectMetadata` lists; every non-system database when absent. */
  databases?: string[];
  /** Rows per batch when the run gives no `chunkSize` hint. @defaultValue 10000 */
  batchSize?: number;
  /** A batch is cut once its rows hold about this many bytes, whatever the row count. @defaultValue 16777216 */
  batchMaxBytes?: number;
  /** Pool size when the source builds its own pool. @defaultValue 4 */
  maxConnections?: number;
  /**
   * Zero and partial-zero dates (`0000-00-00`, `2024-00-10`, `0000-00-00 00:00:00`) are not dates: `'null'` reads
   * them as `null` (date and time fields are then declared nullable, and each read logs how many it met), `'error'`
   * fails the read naming the column. @defaultValue 'null'
   */
  zeroDates?: ZeroDatePolicy;
}

/** Options of {@link MySqlSource}: the JSON config, or an injected mysql2 pool instead of a connection string. @public */
export interface MySqlSourceOptions extends MySqlSourceConfig {
  /** An injected mysql2 pool (the source does not end it). */
  pool?: MySqlPoolLike;
}

const columnList = (what: string) =>
  z
    .array(z.string().min(1, { error: `Expected every \`${what}\` entry to be a non-empty string` }), {
      error: `Expected \`${what}\` to be an array of column names`,
    })
    .min(1, { error: `Expected \`${what}\` to name at least one column` });

function checkUnitIds(units: Record<string, unknown>, ctx: z.RefinementCtx): void {
  for (const id of Object.keys(units)) {
    try {
      parseMySqlTableName(id);
    } catch (err) {
      ctx.addIssue({ code: 'custom', path: [id], message: `Unit id ${JSON.stringify(id)}: ${(err as Error).message}` });
    }
  }
}

/**
 * zod schema of {@link MySqlSourceConfig}.
 * @example
 * ```ts
 * import { mySqlSourceConfigSchema } from '@nucleus/ingestion/mysql';
 * mySqlSourceConfigSchema.parse({ connectionString: 'mysql://app@db:3306/shop', units: { 'shop.orders': { cursorColumns: ['updated_at'] } } });
 * ```
 * @public
 */
export const mySqlSourceConfigSchema = z
  .object({
    connectionString: mySqlConnectionStringSchema.optional(),
    units: z
      .record(
        z.string(),
        z
          .object({
            cursorColumns: columnList('cursorColumns').optional(),
            lag: z
              .union([
                z.number().nonnegative({ error: 'Expected `lag` to be a non-negative number' }),
                z.string().trim().min(1, { error: 'Expected `lag` to be a non-empty interval or number' }),
              ])
              .optional(),
            boundaryMaxRows: z.number().int().positive().max(10_000_000).optional(),
            primaryKey: columnList('primaryKey').optional(),
            columns: columnList('columns').optional(),
          })
          .strict(),
      )
      .superRefine(checkUnitIds)
      .optional(),
    databases: z.array(z.string().min(1)).optional(),
    batchSize: z.number().int().positive().max(1_000_000).optional(),
    batchMaxBytes: z.number().int().min(65_536).optional(),
    maxConnections: z.number().int().positive().max(256).optional(),
    zeroDates: z.enum(['null', 'error']).optional(),
  })
  .strict();

/**
 * Descriptor of the MySQL/MariaDB source: id `mysql`, family `jdbc`, every capability.
 * @public
 */
export const mySqlSourceDescriptor: EndpointDescriptor<MySqlSourceConfig> = {
  id: 'mysql',
  role: 'source',
  family: 'jdbc',
  title: 'MySQL / MariaDB',
  version: '1.0.0',
  capabilities: ['metadata.collect', 'metadata.preview', 'ingest.full', 'ingest.incremental'],
  config: mySqlSourceConfigSchema,
};

/**
 * A checkpoint of the MySQL source (version 2, as the PostgreSQL source's; docs/decisions/0005). Cursor values are
 * the server's exact text (`CAST(… AS CHAR)`: DATETIME(6) as `2024-01-02 03:04:05.123456`, TIMESTAMP in UTC, DECIMAL
 * and BIGINT UNSIGNED with every digit, binary as hex), never through a JS `Date` or number.
 *
 * The next run reads every regular row whose cursor tuple is `>= from` (and every row whose cursor is NULL) and skips
 * the ones whose fingerprint is in `seen`: rows that tie with the last value, or commit late within `lag`, are read;
 * rows already exported are not exported again.
 * @public
 */
export type MySqlCheckpoint = {
  /** Checkpoint format version. */
  version: 2;
  /** Cursor columns, in order. */
  columns: string[];
  /** Greatest non-NULL cursor tuple exported so far (text), or null when none was. */
  values: string[] | null;
  /** Start of the boundary window (inclusive; the first column alone when `lag` is set), or null. */
  from: string[] | null;
  /**
   * Fingerprints of the rows in the window and of the rows whose cursor is NULL, exported by this or an earlier run:
   * 8 bytes each (the first half of the md5 of the row's exact text), sorted, base64; a multiset.
   */
  seen: string;
  /** How many fingerprints `seen` holds. */
  seenRows: number;
};

/**
 * The checkpoint format of version 1 (`{ columns, values, key }`): still read, and migrated on the next commit. The
 * rows it had read at `values` (key ≤ `key`) and the rows whose cursor was NULL then count as exported.
 * @public
 */
export type MySqlCheckpointV1 = {
  /** Cursor columns, in order. */
  columns: string[];
  /** Their values (text). */
  values: string[];
  /** Primary-key tie-breaker of the last row at `values`; null when the unit has no key. */
  key: { columns: string[]; values: string[] } | null;
};

/** A checkpoint that does not fit the unit: `checkpoint_invalid` (not retryable), naming the unit. @internal */
export function invalidMySqlCheckpoint(unitId: string, why: string): IngestError {
  return new IngestError(
    'checkpoint_invalid',
    `Checkpoint of unit ${JSON.stringify(unitId)} cannot be used: ${why}. Reset it (delete the checkpoint entry, or run once with mode 'full' and disposition 'replace') to start over`,
    { retryable: false, details: { unitId } },
  );
}
