import { z } from 'zod';
import type { EndpointDescriptor } from '../contracts/endpoint.js';
import { type SqlCheckpoint, type SqlCheckpointV1, type SqlUnitConfig, unitsSchema } from '../sql/source-config.js';
import { connectionStringSchema, type PgPoolLike } from './connection.js';
import { parseTableName } from './identifiers.js';

/** Per-unit settings of {@link PostgresSource} (cursor, `lag`, `boundaryMaxRows`, key, columns). @public */
export type PostgresUnitConfig = SqlUnitConfig;

/** JSON config of the `postgres` source (what the registry stores). @public */
export interface PostgresSourceConfig {
  /** `postgres://user:password@host:5432/db`; the password is registered as a secret and never reported. */
  connectionString?: string;
  /** Settings per unit id (`schema.table`). */
  units?: Record<string, PostgresUnitConfig>;
  /** Schemas `collectMetadata` lists; every non-system schema when absent. */
  schemas?: string[];
  /** Most rows per FETCH (and per batch) when the run gives no `chunkSize` hint. @defaultValue 10000 */
  batchSize?: number;
  /**
   * Target bytes per FETCH: the rows per FETCH adapt to the observed row size so a batch of wide rows stays near this
   * size (at least one row per FETCH). @defaultValue 256 KiB
   */
  fetchMaxBytes?: number;
  /** Pool size when the source builds its own pool. @defaultValue 4 */
  maxConnections?: number;
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
export const postgresSourceConfigSchema = z
  .object({
    connectionString: connectionStringSchema.optional(),
    units: unitsSchema(parseTableName),
    schemas: z.array(z.string().min(1)).optional(),
    batchSize: z.number().int().positive().max(1_000_000).optional(),
    fetchMaxBytes: z
      .number()
      .int()
      .min(64 * 1024)
      .max(1024 * 1024 * 1024)
      .optional(),
    maxConnections: z.number().int().positive().max(256).optional(),
  })
  .strict();

/**
 * Descriptor of the PostgreSQL source: id `postgres`, family `jdbc`, every capability.
 * @public
 */
export const postgresSourceDescriptor: EndpointDescriptor<PostgresSourceConfig> = {
  id: 'postgres',
  role: 'source',
  family: 'jdbc',
  title: 'PostgreSQL',
  version: '1.0.0',
  capabilities: ['metadata.collect', 'metadata.preview', 'ingest.full', 'ingest.incremental'],
  config: postgresSourceConfigSchema,
};

/**
 * A checkpoint of the PostgreSQL source (version 2, {@link SqlCheckpoint}): cursor values are PostgreSQL's own text
 * of the column (`2024-01-01 00:00:00.000001+00`, `123.450`, `ab      ` for `char(8)`, `1010` for `bit(4)`).
 * @public
 */
export type PostgresCheckpoint = SqlCheckpoint;

/** The checkpoint format of version 1.x (`{ columns, values, key }`): still read, and migrated on the next commit. @public */
export type PostgresCheckpointV1 = SqlCheckpointV1;
