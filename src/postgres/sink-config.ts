import { z } from 'zod';
import type { Capability, EndpointDescriptor } from '../contracts/endpoint.js';
import { connectionStringSchema, type PgPoolLike } from './connection.js';

/** JSON config of the PostgreSQL sink. @public */
export interface PostgresSinkConfig {
  /** `postgres://user:password@host:5432/db`; the password is registered as a secret and never reported. */
  connectionString?: string;
  /** Schema of target tables (target = this schema + the unit's table name). @defaultValue 'public' */
  schema?: string;
  /** Explicit targets: unit id → `schema.table`. */
  tables?: Record<string, string>;
  /** Load ledger, `schema.table` or a table name in the sink schema. @defaultValue '_nucleus_ingest_ledger' */
  ledgerTable?: string;
  /** Pool size when the sink builds its own pool. @defaultValue 4 */
  maxConnections?: number;
  /**
   * Most rows read from staging per batch. Batches are also sized by bytes (about 256 KiB, from the row size seen in
   * earlier slices), rows are encoded for COPY one by one and sent in pieces of about 256 KiB: memory follows bytes,
   * not rows. @defaultValue 10000
   */
  batchSize?: number;
  /**
   * `append` slices loaded at once, each on its own connection and in its own transaction (`merge` and `replace`
   * load in order). Never more than the pool's `max`; connections beyond the first are used when the pool has them,
   * never waited for (a pool of one, or one shared with the application, cannot deadlock the import).
   * @defaultValue 2
   */
  importConcurrency?: number;
  /**
   * Longest wait, in milliseconds, for a slice's row in the load ledger when another importer's transaction holds
   * it (a worker paused past its lease). Past it the import fails with `sink_busy` (retryable). `0` waits without
   * bound. @defaultValue 5000
   */
  ledgerLockTimeoutMs?: number;
  /**
   * How change rows of a change-capture source (`PostgresCdcSource`) are applied with `merge` and `replace`
   * (docs/cdc.md): `deletes: 'delete'` (default) removes deleted rows, `'soft'` keeps them with `_deleted_at`, `_op`
   * and `_lsn` columns; `truncate: 'apply'` (default) empties the target on a source TRUNCATE, `'ignore'` keeps it.
   * With `append` the change rows are kept as they are: a change log.
   */
  changes?: { deletes?: 'delete' | 'soft'; truncate?: 'apply' | 'ignore' };
}

/** Options of {@link PostgresSink}: the JSON config, or an injected pool instead of a connection string. @public */
export interface PostgresSinkOptions extends PostgresSinkConfig {
  /** An injected `pg.Pool` (the sink does not end it). */
  pool?: PgPoolLike;
}

/**
 * zod schema of {@link PostgresSinkConfig}.
 * @example
 * ```ts
 * import { postgresSinkConfigSchema } from '@nucleus/ingestion/postgres';
 * postgresSinkConfigSchema.parse({ connectionString: 'postgres://app@db/dwh', schema: 'analytics' });
 * ```
 * @public
 */
export const postgresSinkConfigSchema = z
  .object({
    connectionString: connectionStringSchema.optional(),
    schema: z.string().min(1).optional(),
    tables: z.record(z.string().min(1), z.string().min(1)).optional(),
    ledgerTable: z.string().min(1).optional(),
    maxConnections: z.number().int().positive().max(256).optional(),
    batchSize: z.number().int().positive().max(1_000_000).optional(),
    importConcurrency: z.number().int().positive().max(64).optional(),
    ledgerLockTimeoutMs: z.number().int().nonnegative().max(3_600_000).optional(),
    changes: z
      .object({ deletes: z.enum(['delete', 'soft']).optional(), truncate: z.enum(['apply', 'ignore']).optional() })
      .strict()
      .optional(),
  })
  .strict();

const base = {
  role: 'sink' as const,
  family: 'jdbc',
  version: '1.0.0',
  // a sink takes full and incremental runs alike (append, replace and merge; see docs/postgresql.md)
  capabilities: ['ingest.full', 'ingest.incremental'] as Capability[],
  config: postgresSinkConfigSchema,
};

/**
 * Descriptor of the PostgreSQL sink (id `postgres`).
 * @public
 */
export const postgresSinkDescriptor: EndpointDescriptor<PostgresSinkConfig> = {
  ...base,
  id: 'postgres',
  title: 'PostgreSQL',
};

/**
 * The same sink under the CDM id `cdm.jdbc`.
 * @public
 */
export const cdmJdbcSinkDescriptor: EndpointDescriptor<PostgresSinkConfig> = {
  ...base,
  id: 'cdm.jdbc',
  title: 'CDM JDBC (PostgreSQL)',
};
