import { z } from 'zod';
import type { EndpointDescriptor } from '../contracts/endpoint.js';
import { type SqlSourceConfig, sqlSourceConfigSchema, sqlSourceDescriptor } from '../sql/source-config.js';
import { connectionStringSchema, type PgPoolLike } from './connection.js';
import { parseTableName } from './identifiers.js';

/** The unit settings and checkpoints every SQL source shares (docs/decisions/0005-incremental-boundaries.md). */
export type {
  SqlCheckpoint as PostgresCheckpoint,
  SqlCheckpointV1 as PostgresCheckpointV1,
  SqlUnitConfig as PostgresUnitConfig,
} from '../sql/source-config.js';

/** JSON config of the `postgres` source (what the registry stores); unit ids are `schema.table`. @public */
export interface PostgresSourceConfig extends SqlSourceConfig {
  /** Schemas `collectMetadata` lists; every non-system schema when absent. */
  schemas?: string[];
  /**
   * Target bytes per FETCH: the rows per FETCH adapt to the observed row size so a batch of wide rows stays near this
   * size (at least one row per FETCH). @defaultValue 256 KiB
   */
  fetchMaxBytes?: number;
}

/** Options of {@link PostgresSource}: the JSON config, or an injected pool instead of a connection string. @public */
export interface PostgresSourceOptions extends PostgresSourceConfig {
  /** An injected `pg.Pool` (the source does not end it). */
  pool?: PgPoolLike;
}

/**
 * zod schema of {@link PostgresSourceConfig} (what the registry validates and exports as JSON Schema).
 * @example
 * ```ts
 * import { postgresSourceConfigSchema } from '@nucleus/ingestion/postgres';
 * postgresSourceConfigSchema.parse({ connectionString: 'postgres://app@db/shop', units: { 'public.orders': { cursorColumns: ['updated_at'] } } });
 * ```
 * @public
 */
export const postgresSourceConfigSchema = sqlSourceConfigSchema(connectionStringSchema, parseTableName, {
  schemas: z.array(z.string().min(1)).optional(),
  fetchMaxBytes: z
    .number()
    .int()
    .min(64 * 1024)
    .max(1024 * 1024 * 1024)
    .optional(),
});

/** Descriptor of the PostgreSQL source: id `postgres`, family `jdbc`, every capability. @public */
export const postgresSourceDescriptor: EndpointDescriptor<PostgresSourceConfig> = sqlSourceDescriptor(
  'postgres',
  'PostgreSQL',
  postgresSourceConfigSchema,
);
