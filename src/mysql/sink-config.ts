import { z } from 'zod';
import type { EndpointDescriptor } from '../contracts/endpoint.js';
import { type MySqlPoolLike, mySqlConnectionStringSchema } from './connection.js';

/**
 * How the MySQL sink loads rows: `load-data` streams each slice with `LOAD DATA LOCAL INFILE` (needs `local_infile`
 * on the server), `insert` sends multi-row `INSERT`s sized by bytes, `auto` uses `load-data` when the server allows it.
 * @public
 */
export type MySqlLoadMethod = 'auto' | 'load-data' | 'insert';

/** JSON config of the MySQL sink. @public */
export interface MySqlSinkConfig {
  /** `mysql://user:password@host:3306/db`; the password is registered as a secret and never reported. */
  connectionString?: string;
  /**
   * Schema (MySQL's database) of target tables (target = this schema + the unit's table name); the same name as
   * PostgreSQL's `schema`. @defaultValue the connection's database
   */
  schema?: string;
  /**
   * The former name of {@link MySqlSinkConfig.schema}, still read; giving both with different values is
   * `config_invalid`.
   * @deprecated Use `schema` (MySQL's database is its schema); `database` goes away in the next major version.
   */
  database?: string;
  /** Explicit targets: unit id → `database.table` (or a table name in the sink schema). */
  tables?: Record<string, string>;
  /** Load ledger, `database.table` or a table name in the sink schema. @defaultValue '_nucleus_ingest_ledger' */
  ledgerTable?: string;
  /** Pool size when the sink builds its own pool. @defaultValue 4 */
  maxConnections?: number;
  /** Rows read from staging per batch. @defaultValue 10000 */
  batchSize?: number;
  /** `append` slices loaded at once, each on its own connection and transaction (capped by the pool size). @defaultValue 2 */
  importConcurrency?: number;
  /**
   * How change rows of a change-capture source are applied with `merge` and `replace` (docs/cdc.md): `deletes: 'soft'`
   * keeps deleted rows with `_deleted_at`, `_op`, `_lsn`; `truncate: 'ignore'` keeps the target on a source TRUNCATE.
   */
  changes?: { deletes?: 'delete' | 'soft'; truncate?: 'apply' | 'ignore' };
  /** @defaultValue 'auto' */
  loadMethod?: MySqlLoadMethod;
  /** Upper bound of one multi-row INSERT (also capped by the server's `max_allowed_packet`). @defaultValue 4194304 */
  maxStatementBytes?: number;
}

/** Options of {@link MySqlSink}: the JSON config, or an injected mysql2 pool instead of a connection string. @public */
export interface MySqlSinkOptions extends MySqlSinkConfig {
  /** An injected mysql2 pool (the sink does not end it). */
  pool?: MySqlPoolLike;
}

/**
 * zod schema of {@link MySqlSinkConfig}.
 * @example
 * ```ts
 * import { mySqlSinkConfigSchema } from '@nucleus/ingestion/mysql';
 * mySqlSinkConfigSchema.parse({ connectionString: 'mysql://app@db:3306/dwh', loadMethod: 'insert' });
 * ```
 * @public
 */
export const mySqlSinkConfigSchema = z
  .object({
    connectionString: mySqlConnectionStringSchema.optional(),
    schema: z.string().min(1).max(64).optional(),
    database: z.string().min(1).max(64).optional(),
    tables: z.record(z.string().min(1), z.string().min(1)).optional(),
    ledgerTable: z.string().min(1).optional(),
    maxConnections: z.number().int().positive().max(256).optional(),
    batchSize: z.number().int().positive().max(1_000_000).optional(),
    importConcurrency: z.number().int().positive().max(64).optional(),
    changes: z
      .object({ deletes: z.enum(['delete', 'soft']).optional(), truncate: z.enum(['apply', 'ignore']).optional() })
      .strict()
      .optional(),
    loadMethod: z.enum(['auto', 'load-data', 'insert']).optional(),
    maxStatementBytes: z.number().int().min(65_536).max(1_073_741_824).optional(),
  })
  .strict()
  .refine((c) => c.schema === undefined || c.database === undefined || c.schema === c.database, {
    error: 'Pass `schema` (or its deprecated alias `database`), not both with different values',
    path: ['database'],
  });

/**
 * Descriptor of the MySQL/MariaDB sink (id `mysql`).
 * @public
 */
export const mySqlSinkDescriptor: EndpointDescriptor<MySqlSinkConfig> = {
  id: 'mysql',
  role: 'sink',
  family: 'jdbc',
  title: 'MySQL / MariaDB',
  version: '1.0.0',
  capabilities: ['ingest.full', 'ingest.incremental'],
  config: mySqlSinkConfigSchema,
};
