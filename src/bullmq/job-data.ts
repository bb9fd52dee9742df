import { z } from 'zod';
import type { Disposition } from '../contracts/sink-endpoint.js';
import { configInvalid } from '../errors/config-invalid.js';
import { redact } from '../errors/redact.js';
import { fnv1a64 } from '../host/run-id.js';
import type { RunPolicy } from '../pipeline/options.js';

/**
 * What one BullMQ job of the ingestion queue carries: which unit to run and how. Plain JSON of ids and numbers —
 * never an endpoint config, a connection string or a secret (the worker resolves endpoint configs itself).
 * @public
 */
export interface IngestionJobData {
  /** Source endpoint instance id (resolved to a config on the worker; part of the checkpoint key). */
  endpointId: string;
  unitId: string;
  /** Sink endpoint instance id. @defaultValue the worker's `defaultSinkId` */
  sinkId?: string;
  /** @defaultValue the worker's `workspaceId`, else `'default'` */
  workspaceId?: string;
  /** Connector vendor in the checkpoint key. @defaultValue the source's descriptor id (`'postgres'`, …) */
  vendor?: string;
  mode?: 'full' | 'incremental';
  /** @defaultValue 'append' */
  disposition?: Disposition;
  primaryKey?: string[];
  /** Staging provider id when the worker has several. */
  stagingProviderId?: string;
  /** Run policy over the worker's (this one wins field by field). `leaseTtlMs` must stay within the lock duration. */
  policy?: RunPolicy;
}

const id = (name: string) =>
  z
    .string({ error: `Expected \`${name}\` to be a string` })
    .min(1, { error: `Expected \`${name}\` to be non-empty` })
    .max(512, { error: `Expected \`${name}\` to be at most 512 characters` })
    // biome-ignore lint/suspicious/noControlCharactersInRegex: ids never hold control characters
    .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), { error: `Expected \`${name}\` to contain no control characters` })
    .refine((s) => redact(s) === s, {
      error: `Expected \`${name}\` to be an id, not a credential (job data is stored in Redis as plain text)`,
    });

const posInt = z.number().int().positive();

/**
 * zod schema of {@link IngestionJobData}: strict (an unknown field — an endpoint config, a password — is refused,
 * because job data sits in Redis in plain text and shows in every dashboard).
 * @example
 * ```ts
 * import { ingestionJobDataSchema } from '@nucleus/ingestion/bullmq';
 * ingestionJobDataSchema.parse({ endpointId: 'warehouse', unitId: 'public.orders', sinkId: 'lake' });
 * ```
 * @public
 */
export const ingestionJobDataSchema = z
  .object({
    endpointId: id('endpointId'),
    unitId: id('unitId'),
    sinkId: id('sinkId').optional(),
    workspaceId: id('workspaceId').optional(),
    vendor: id('vendor').optional(),
    mode: z.enum(['full', 'incremental']).optional(),
    disposition: z.enum(['append', 'replace', 'merge']).optional(),
    primaryKey: z.array(id('primaryKey[]')).min(1).optional(),
    stagingProviderId: id('stagingProviderId').optional(),
    policy: z
      .object({
        chunkSize: posInt.optional(),
        sliceMaxRows: posInt.optional(),
        sliceMaxBytes: posInt.optional(),
        maxRowBytes: posInt.optional(),
        exportConcurrency: posInt.optional(),
        retry: z
          .object({
            maxAttempts: posInt.optional(),
            baseDelayMs: z.number().int().nonnegative().optional(),
            maxDelayMs: z.number().int().nonnegative().optional(),
          })
          .strict()
          .optional(),
        leaseTtlMs: posInt.optional(),
        keepStaging: z.boolean().optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

/**
 * Validate job data (on enqueue and again on the worker: Redis is shared, anyone may have written the job).
 * @throws IngestError `config_invalid` listing every issue
 * @internal
 */
export function parseJobData(data: unknown, what = 'ingestion job data'): IngestionJobData {
  const res = ingestionJobDataSchema.safeParse(data);
  if (!res.success) throw configInvalid(`Invalid ${what}`, res.error.issues);
  return res.data as IngestionJobData;
}

const MAX_READABLE = 120;

/**
 * The BullMQ job id of a unit: derived from the unit's identity (workspace, endpoint, unit, sink), so enqueuing a
 * unit that is already waiting, delayed or running adds nothing. BullMQ refuses ids that contain `:` or look like
 * integers, so characters outside `[A-Za-z0-9._-]` become `_` and a 64-bit hash of the exact parts is appended
 * (distinct units never share an id, however their names were folded). The same id names the unit's job scheduler.
 * The vendor is not part of it: an endpoint instance has one connector.
 * @example
 * ```ts
 * import { ingestionJobId } from '@nucleus/ingestion/bullmq';
 * ingestionJobId({ endpointId: 'warehouse', unitId: 'public.orders', sinkId: 'lake' });
 * // 'unit.default.warehouse.public.orders.lake-<16 hex digits>'
 * ```
 * @public
 */
export function ingestionJobId(unit: {
  workspaceId?: string;
  endpointId: string;
  unitId: string;
  sinkId?: string;
}): string {
  const parts = [unit.workspaceId ?? 'default', unit.endpointId, unit.unitId, unit.sinkId ?? ''];
  const readable = parts
    .join('.')
    .replace(/[^A-Za-z0-9._-]/g, '_')
    .slice(0, MAX_READABLE);
  return `unit.${readable}-${fnv1a64(parts.join('\u0000'))}`;
}
