import { z } from 'zod';
import type { EndpointDescriptor } from '../../contracts/endpoint.js';
import { connectionStringSchema } from '../connection.js';
import { parseTableName } from '../identifiers.js';

/** Settings of one CDC unit (a published table, `schema.table`). @public */
export interface PostgresCdcUnitConfig {
  /** The unit's replication slot; default: the source's `slot` + the table name + a short hash of the unit id. */
  slot?: string;
  /** Publication(s) the unit streams with; default: the source's `publication`. */
  publication?: string;
}

/** JSON config of the `postgres.cdc` source. @public */
export interface PostgresCdcSourceConfig {
  /** A `postgres://` URL; the source opens `replication=database` connections with it (the role needs `REPLICATION`). */
  connectionString: string;
  /** The publication that holds the units' tables (`CREATE PUBLICATION … FOR TABLE …`). */
  publication: string;
  /** Base name of the units' replication slots (lower-case letters, digits, `_`; at most 40 characters). */
  slot: string;
  /** The units: `schema.table` ids (an array), or ids with their settings. */
  units: string[] | Record<string, PostgresCdcUnitConfig>;
  /** Most change rows one run drains (it stops at the first commit at or past it). @defaultValue 100,000 */
  maxRows?: number;
  /** Most bytes of change messages one run drains (stops at a commit, as `maxRows`). @defaultValue 64 MiB */
  maxBytes?: number;
  /** Longest a run drains, in ms (stops at a commit; a transaction under way is read to its end). @defaultValue 30,000 */
  maxWaitMs?: number;
  /** Rows per batch handed to the pipeline. @defaultValue 5,000 */
  batchRows?: number;
  /**
   * A table this source writes one row to at the start of each run, so an idle database's slots advance (the table
   * must be in the publication to count as a change; otherwise its WAL still moves the slot past idle stretches).
   * Created when missing.
   */
  heartbeatTable?: string;
  /**
   * Retained WAL (bytes) of a unit's slot past which `status()` sets `warning` and each run logs a warning and emits a
   * `source.warning` event with code `cdc.retained_wal`. @defaultValue 1 GiB
   */
  lagWarnBytes?: number;
}

/** Options of {@link PostgresCdcSource}. @public */
export type PostgresCdcSourceOptions = PostgresCdcSourceConfig;

const SLOT = /^[a-z0-9_]{1,63}$/;

/** Why `ref` is not a `schema.table` name, or undefined. */
function tableProblem(ref: string): string | undefined {
  try {
    parseTableName(ref);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

const tableRef = (what: string) =>
  z.string().superRefine((v, ctx) => {
    const problem = tableProblem(v);
    if (problem) ctx.addIssue({ code: 'custom', message: `${what} ${JSON.stringify(v)}: ${problem}` });
  });

/**
 * zod schema of {@link PostgresCdcSourceConfig}.
 * @example
 * ```ts
 * import { postgresCdcSourceConfigSchema } from '@nucleus/ingestion/postgres';
 * postgresCdcSourceConfigSchema.parse({ connectionString: 'postgres://repl@db/shop', publication: 'shop', slot: 'nucleus', units: ['public.orders'] });
 * ```
 * @public
 */
export const postgresCdcSourceConfigSchema: z.ZodType<PostgresCdcSourceConfig> = z
  .object({
    connectionString: connectionStringSchema,
    publication: z.string().min(1, { error: 'Expected `publication` to be a publication name' }),
    slot: z
      .string()
      .regex(/^[a-z0-9_]{1,40}$/, { error: 'Expected `slot` to be 1–40 lower-case letters, digits or underscores' }),
    units: z.union([
      z.array(tableRef('unit')).min(1, { error: 'Expected `units` to name at least one table' }),
      z.record(
        tableRef('unit'),
        z
          .object({
            slot: z
              .string()
              .regex(SLOT, { error: 'Expected a unit `slot` to be 1–63 lower-case letters, digits or underscores' })
              .optional(),
            publication: z.string().min(1).optional(),
          })
          .strict(),
      ),
    ]),
    maxRows: z.number().int().positive().optional(),
    maxBytes: z.number().int().positive().optional(),
    maxWaitMs: z.number().int().positive().optional(),
    batchRows: z.number().int().positive().max(1_000_000).optional(),
    heartbeatTable: tableRef('heartbeatTable').optional(),
    lagWarnBytes: z.number().int().positive().optional(),
  })
  .strict() as z.ZodType<PostgresCdcSourceConfig>;

/** Descriptor of the PostgreSQL change-capture source: id `postgres.cdc`, family `jdbc`. @public */
export const postgresCdcSourceDescriptor: EndpointDescriptor<PostgresCdcSourceConfig> = {
  id: 'postgres.cdc',
  role: 'source',
  family: 'jdbc',
  title: 'PostgreSQL change data capture (logical replication, pgoutput)',
  version: '1.0.0',
  capabilities: ['metadata.collect', 'metadata.preview', 'ingest.full', 'ingest.incremental'],
  config: postgresCdcSourceConfigSchema,
};
