import { z } from 'zod';
import type { EndpointDescriptor } from '../contracts/endpoint.js';
import { type SqlSourceConfig, sqlSourceConfigSchema, sqlSourceDescriptor } from '../sql/source-config.js';
import { type MySqlPoolLike, mySqlConnectionStringSchema } from './connection.js';
import { parseTableName } from './identifiers.js';
import type { ZeroDatePolicy } from './type-mapping.js';

/** The unit settings and checkpoints every SQL source shares (docs/decisions/0005-incremental-boundaries.md). */
export type {
  SqlCheckpoint as MySqlCheckpoint,
  SqlCheckpointV1 as MySqlCheckpointV1,
  SqlUnitConfig as MySqlUnitConfig,
} from '../sql/source-config.js';

/** JSON config of the `mysql` source; unit ids are `database.table`. @public */
export interface MySqlSourceConfig extends SqlSourceConfig {
  /** Databases `collectMetadata` lists; every non-system database when absent. */
  databases?: string[];
  /** A batch is cut once its rows hold about this many bytes, whatever the row count. @defaultValue 16777216 */
  batchMaxBytes?: number;
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
export const mySqlSourceConfigSchema = sqlSourceConfigSchema(mySqlConnectionStringSchema, parseTableName, {
  databases: z.array(z.string().min(1)).optional(),
  batchMaxBytes: z.number().int().min(65_536).optional(),
  zeroDates: z.enum(['null', 'error']).optional(),
});

/** Descriptor of the MySQL/MariaDB source: id `mysql`, family `jdbc`, every capability. @public */
export const mySqlSourceDescriptor: EndpointDescriptor<MySqlSourceConfig> = sqlSourceDescriptor(
  'mysql',
  'MySQL / MariaDB',
  mySqlSourceConfigSchema,
);
