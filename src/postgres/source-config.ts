import { z } from 'zod';
import type { EndpointDescriptor } from '../contracts/endpoint.js';
import { IngestError } from '../errors/ingest-error.js';
import { connectionStringSchema, type PgPoolLike } from './connection.js';
import { parseTableName } from './identifiers.js';

/** Per-unit settings of {@link PostgresSource}. @public */
export interface PostgresUnitConfig {
  /** Columns whose (tuple) value only grows: incremental reads resume strictly after the last one seen. */
  cursorColumns?: string[];
  /** Tie-breaker and slicing key; defaults to the table's primary key. */
  primaryKey?: string[];
  /** Columns to read, in this order; defaults to every column. */
  columns?: string[];
}

/** JSON config of the `postgres` source (what the registry stores). @public */
export interface PostgresSourceConfig {
  /** `postgres://user:password@host:5432/db`; the password is registered as a secret and never reported. */
  connectionString?: string;
  /** Settings per unit id (`schema.table`). */
  units?: Record<string, PostgresUnitConfig>;
  /** Schemas `collectMetadata` lists; every non-system schema when absent. */
  schemas?: string[];
  /** Rows per FETCH when the run gives no `chunkSize` hint. @defaultValue 10000 */
  batchSize?: number;
  /** Pool size when the source builds its own pool. @defaultValue 4 */
  maxConnections?: number;
}

/** Options of {@link PostgresSource}: the JSON config, or an injected pool instead of a connection string. @public */
export interface PostgresSourceOptions extends PostgresSourceConfig {
  /** An injected `pg.Pool` (the source does not end it). */
  pool?: PgPoolLike;
}

const columnList = (what: string) =>
  z
    .array(z.string().min(1, { error: `Expected every \`${what}\` entry to be a non-empty string` }), {
      error: `Expected \`${what}\` to be an array of column names`,
    })
    .min(1, { error: `Expected \`${what}\` to name at least one column` });

/** Every unit id must read as `schema.table` with names PostgreSQL would not truncate. */
function checkUnitIds(units: Record<string, unknown>, ctx: z.RefinementCtx): void {
  for (const id of Object.keys(units)) {
    try {
      parseTableName(id);
    } catch (err) {
      ctx.addIssue({ code: 'custom', path: [id], message: `Unit id ${JSON.stringify(id)}: ${(err as Error).message}` });
    }
  }
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
    units: z
      .record(
        z.string(),
        z
          .object({
            cursorColumns: columnList('cursorColumns').optional(),
            primaryKey: columnList('primaryKey').optional(),
            columns: columnList('columns').optional(),
          })
          .strict(),
      )
      .superRefine(checkUnitIds)
      .optional(),
    schemas: z.array(z.string().min(1)).optional(),
    batchSize: z.number().int().positive().max(1_000_000).optional(),
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
 * A checkpoint of the PostgreSQL source: the cursor tuple (exact text: integers and numerics as written by
 * PostgreSQL, timestamps as ISO-8601 with microseconds), plus the primary-key tuple when the position is a row
 * rather than a cursor bound.
 * @public
 */
export type PostgresCheckpoint = {
  /** Cursor columns, in order. */
  columns: string[];
  /** Their values (text), strictly after which the next read starts. */
  values: string[];
  /** Primary-key tie-breaker of the last row read, or null when the position is a cursor bound. */
  key: { columns: string[]; values: string[] } | null;
};

export function invalidCheckpoint(unitId: string, why: string): IngestError {
  return new IngestError('config_invalid', `Checkpoint of unit ${JSON.stringify(unitId)} does not fit: ${why}`, {
    details: { unitId },
  });
}
