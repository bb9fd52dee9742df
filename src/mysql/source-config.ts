import { z } from 'zod';
import type { EndpointDescriptor } from '../contracts/endpoint.js';
import { type SqlCheckpoint, type SqlCheckpointV1, type SqlUnitConfig, unitsSchema } from '../sql/source-config.js';
import type { MySqlPoolLike } from './connection.js';
import { mySqlConnectionStringSchema } from './connection.js';
import { parseMySqlTableName } from './identifiers.js';
import type { ZeroDatePolicy } from './type-mapping.js';

/** Per-unit settings of {@link MySqlSource} (cursor, `lag`, `boundaryMaxRows`, key, columns). @public */
export type MySqlUnitConfig = SqlUnitConfig;

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
    units: unitsSchema(parseMySqlTableName),
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
 * A checkpoint of the MySQL source (version 2, {@link SqlCheckpoint}): cursor values are the server's exact text
 * (`CAST(… AS CHAR)`: DATETIME(6) as `2024-01-02 03:04:05.123456`, TIMESTAMP in UTC, DECIMAL and BIGINT UNSIGNED with
 * every digit, binary as hex).
 * @public
 */
export type MySqlCheckpoint = SqlCheckpoint;

/** The checkpoint format of version 1 (`{ columns, values, key }`): still read, and migrated on the next commit. @public */
export type MySqlCheckpointV1 = SqlCheckpointV1;
