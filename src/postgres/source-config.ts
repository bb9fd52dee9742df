import { z } from 'zod';
import type { EndpointDescriptor } from '../contracts/endpoint.js';
import { IngestError } from '../errors/ingest-error.js';
import { connectionStringSchema, type PgPoolLike } from './connection.js';
import { parseTableName } from './identifiers.js';

/** Per-unit settings of {@link PostgresSource}. @public */
export interface PostgresUnitConfig {
  /**
   * Columns whose (tuple) value grows as rows are written: `updated_at`, `id`, `(day, seq)`. Required for
   * `incremental` runs (a unit without them is refused with `config_invalid`). Incremental reads resume AT the last
   * value (inclusive) and skip the rows already exported there (boundary dedupe), so rows that tie with the last
   * value and arrive later are read. See docs/postgresql.md, "Incremental reads".
   */
  cursorColumns?: string[];
  /**
   * Lookback for transactions that commit late: every run re-reads the rows whose first cursor column lies within
   * `lag` of the greatest value seen, and exports those it has not exported before. For `date`/`timestamp`/
   * `timestamptz` cursors an interval (`'15 minutes'`, `'2 days'`) or a number of seconds; for numeric cursors
   * (`int2`/`int4`/`int8`/`numeric`/`float4`/`float8`) a number in the cursor's own unit (e.g. `1000` ids).
   * @defaultValue no lookback: only rows tying with the last value are re-read
   */
  lag?: string | number;
  /**
   * Most rows the boundary (rows within `lag`, rows tying with the last value, rows whose cursor is NULL or
   * infinite) may hold in the checkpoint (8 bytes each). A `lag` window holding more shrinks to fit; ties and
   * NULL/infinite rows are always kept (a warning is logged when they alone exceed it).
   * @defaultValue 100000
   */
  boundaryMaxRows?: number;
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
            lag: z
              .union([
                z.number().nonnegative({ error: 'Expected `lag` to be a non-negative number' }),
                z.string().trim().min(1, { error: 'Expected `lag` to be a non-empty interval or number' }),
              ])
              .optional(),
            boundaryMaxRows: z.number().int().positive().max(10_000_000).optional(),
          })
          .strict(),
      )
      .superRefine(checkUnitIds)
      .optional(),
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
 * A checkpoint of the PostgreSQL source (version 2). Cursor values are PostgreSQL's own text of the column
 * (`2024-01-01 00:00:00.000001+00`, `123.450`, `ab      ` for `char(8)`, `1010` for `bit(4)`), read back with a cast
 * to the column's type: exact, never through a JS `Date` or number.
 *
 * The next run reads every row whose cursor tuple is `>= from` (and every row whose cursor is NULL or infinite) and
 * skips the ones whose fingerprint is in `seen`: rows that tie with the last value, or commit late within `lag`, are
 * read; rows already exported are not exported again.
 * @public
 */
export type PostgresCheckpoint = {
  /** Checkpoint format version. */
  version: 2;
  /** Cursor columns, in order. */
  columns: string[];
  /** Greatest finite, non-NULL cursor tuple exported so far (text), or null when none was. */
  values: string[] | null;
  /**
   * Start of the boundary window (inclusive, a prefix of the cursor tuple: the first column alone when `lag` is set),
   * or null when `values` is null.
   */
  from: string[] | null;
  /**
   * Fingerprints of the rows in the window and of the rows whose cursor is NULL or infinite, exported by this or an
   * earlier run: 8 bytes each (the first half of the md5 of the row's text), sorted, base64. A multiset: identical
   * rows appear once per copy.
   */
  seen: string;
  /** How many fingerprints `seen` holds. */
  seenRows: number;
};

/**
 * The checkpoint format of version 1.x (`{ columns, values, key }`): still read, and migrated on the next commit.
 * A run resumes strictly after `values` (and `key`), as that version did; rows with a NULL cursor present then are
 * taken as already exported.
 * @public
 */
export type PostgresCheckpointV1 = {
  /** Cursor columns, in order. */
  columns: string[];
  /** Their values (text), strictly after which the next read starts. */
  values: string[];
  /** Primary-key tie-breaker of the last row read, or null when the position is a cursor bound. */
  key: { columns: string[]; values: string[] } | null;
};

/**
 * A checkpoint that does not fit the unit: the typed error `checkpoint_invalid`, naming the unit and what to do.
 * @internal
 */
export function invalidCheckpoint(unitId: string, why: string): IngestError {
  return new IngestError(
    'checkpoint_invalid',
    `Checkpoint of unit ${JSON.stringify(unitId)} cannot be used: ${why}. Reset it (delete the checkpoint entry, or run once with mode 'full' and disposition 'replace') to start over`,
    { details: { unitId } },
  );
}
