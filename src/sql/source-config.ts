/**
 * The configuration and checkpoint shapes every SQL source shares (docs/decisions/0005-incremental-boundaries.md):
 * per-unit settings, their zod schema, and the version-2 / version-1 checkpoints.
 * @internal
 */
import { z } from 'zod';
import type { EndpointDescriptor } from '../contracts/endpoint.js';
import { IngestError } from '../errors/ingest-error.js';

/** Per-unit settings of a SQL source (`PostgresSource`, `MySqlSource`). @public */
export interface SqlUnitConfig {
  /**
   * Columns whose (tuple) value grows as rows are written: `updated_at`, `id`, `(day, seq)`. Incremental reads resume
   * AT the last value (inclusive) and skip the rows already exported there (boundary dedupe by row fingerprint), so
   * rows that tie with the last value and arrive later are read, whatever their key. See docs/postgresql.md and
   * docs/mysql.md, "Incremental reads".
   */
  cursorColumns?: string[];
  /**
   * Lookback for transactions that commit late: every run re-reads the rows whose first cursor column lies within
   * `lag` of the greatest value seen, and exports those it has not exported before. For date and timestamp cursors an
   * interval (`'15 minutes'`, `'2 days'`) or a number of seconds; for numeric cursors a number in the cursor's own unit
   * (e.g. `1000` ids; an integer for integer columns).
   * @defaultValue no lookback: only rows tying with the last value are re-read
   */
  lag?: string | number;
  /**
   * Most rows a `lag` window may hold in the checkpoint (8 bytes each): a window holding more shrinks to the ties for
   * that run. The ties at the last value and the rows whose cursor is NULL or infinite are kept by fingerprint up to
   * 128 rows; a larger group is kept by its greatest key (see docs/decisions/0005, "Amendment: bounded checkpoints").
   * @defaultValue 100000
   */
  boundaryMaxRows?: number;
  /** Tie-breaker and slicing key; defaults to the table's primary key. */
  primaryKey?: string[];
  /** Columns to read, in this order; defaults to every column. */
  columns?: string[];
}

const columnList = (what: string) =>
  z
    .array(z.string().min(1, { error: `Expected every \`${what}\` entry to be a non-empty string` }), {
      error: `Expected \`${what}\` to be an array of column names`,
    })
    .min(1, { error: `Expected \`${what}\` to name at least one column` });

/** What the JSON config of every SQL source holds (each engine's config adds its own fields). @public */
export interface SqlSourceConfig {
  /** The server's URL (`postgres://…`, `mysql://…`); the password is registered as a secret and never reported. */
  connectionString?: string;
  /** Settings per unit id (`schema.table`; on MySQL `database.table`). */
  units?: Record<string, SqlUnitConfig>;
  /** Most rows per batch (on PostgreSQL also per FETCH) when the run gives no `chunkSize` hint. @defaultValue 10000 */
  batchSize?: number;
  /** Pool size when the source builds its own pool. @defaultValue 4 */
  maxConnections?: number;
}

/** zod schema of a SQL source's config: the shared fields, unit ids checked with the engine's `parse`, and `own`. @internal */
export function sqlSourceConfigSchema<T extends z.ZodRawShape>(
  connectionString: z.ZodType<string>,
  parse: (id: string) => unknown,
  own: T,
) {
  return z
    .object({
      connectionString: connectionString.optional(),
      units: unitsSchema(parse),
      batchSize: z.number().int().positive().max(1_000_000).optional(),
      maxConnections: z.number().int().positive().max(256).optional(),
      ...own,
    })
    .strict();
}

/** The descriptor of a SQL source: family `jdbc`, every capability. @internal */
export function sqlSourceDescriptor<C>(id: string, title: string, config: z.ZodType<C>): EndpointDescriptor<C> {
  const capabilities = ['metadata.collect', 'metadata.preview', 'ingest.full', 'ingest.incremental'] as const;
  return { id, role: 'source', family: 'jdbc', title, version: '1.0.0', capabilities: [...capabilities], config };
}

function unitsSchema(parse: (id: string) => unknown) {
  return z
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
    .superRefine((units, ctx) => {
      for (const id of Object.keys(units)) {
        try {
          parse(id);
        } catch (err) {
          const message = `Unit id ${JSON.stringify(id)}: ${(err as Error).message}`;
          ctx.addIssue({ code: 'custom', path: [id], message });
        }
      }
    })
    .optional();
}

/**
 * A checkpoint of a SQL source (version 2, or 3 with `byKey`; docs/decisions/0005). Cursor values are the server's own exact text of the
 * column (PostgreSQL's `::text` under ISO/UTC settings; MySQL's `CAST(… AS CHAR)`, hex for binary), read back with a
 * cast to the column's type: never through a JS `Date` or number.
 *
 * The next run reads every row whose cursor tuple is `>= from` (and every row whose cursor is NULL or infinite) and
 * skips the ones whose fingerprint is in `seen`: rows that tie with the last value, or commit late within `lag`, are
 * read; rows already exported are not exported again.
 * @public
 */
export type SqlCheckpoint = {
  /** Checkpoint format version: 3 when `byKey` is set (an earlier version refuses it), else 2. */
  version: 2 | 3;
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
  /**
   * The columns `seen` fingerprints, in order (absent in checkpoints written before schema evolution). The next run
   * fingerprints the same columns while they all exist, so a column added to the table (or a type widened: same
   * text) re-exports nothing (docs/decisions/0013-schema-evolution.md).
   */
  fingerprint?: string[];
  /**
   * Set (version 3) when a tie group held more rows than a checkpoint keeps by fingerprint (128): the rows tying at
   * `values` (`ties`) or the rows whose cursor is NULL or infinite (`special`) were exported up to this key, in the
   * order the server sorts `columns` (the unit's key); the next run reads that group's rows with a greater key only. A
   * row joining such a group later with a lower key is not read (docs/decisions/0005, "Amendment: bounded
   * checkpoints").
   */
  byKey?: { columns: string[]; ties?: string[]; special?: string[] };
};

/**
 * The checkpoint format of version 1 (`{ columns, values, key }`): still read, and migrated on the next commit. The
 * rows it had read at `values` (key ≤ `key`) and the rows whose cursor was NULL then count as exported.
 * @public
 */
export type SqlCheckpointV1 = {
  /** Cursor columns, in order. */
  columns: string[];
  /** Their values (text). */
  values: string[];
  /** Primary-key tie-breaker of the last row read at `values`, or null when the position is a cursor bound. */
  key: { columns: string[]; values: string[] } | null;
};

/** A checkpoint that does not fit the unit: `checkpoint_invalid` (not retryable), naming the unit. @internal */
export function invalidCheckpoint(unitId: string, why: string): IngestError {
  return new IngestError(
    'checkpoint_invalid',
    `Checkpoint of unit ${JSON.stringify(unitId)} cannot be used: ${why}. Reset it (delete the checkpoint entry, or run once with mode 'full' and disposition 'replace') to start over`,
    { retryable: false, details: { unitId } },
  );
}
