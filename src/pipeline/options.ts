import { z } from 'zod';
import type { IngestionContext, IngestionEvent, Logger } from '../contracts/context.js';
import type { KvStore } from '../contracts/kv-store.js';
import type { Disposition, SinkEndpoint } from '../contracts/sink-endpoint.js';
import type { SourceEndpoint } from '../contracts/source-endpoint.js';
import type { StagingHandle, StagingProvider, StagingSessionRef } from '../contracts/staging.js';
import type { Json } from '../contracts/values.js';
import { configInvalid } from '../errors/config-invalid.js';
import { SCHEMA_CONTRACT_MODES, type SchemaContract } from '../schema/schema-contract.js';
import type { RetryPolicy } from '../util/retry.js';

/** Which unit a run is for; the checkpoint key is derived from it. @public */
export interface UnitRef {
  /** @defaultValue 'default' */
  workspaceId?: string;
  /** Connector vendor, e.g. 'postgres'. @defaultValue 'default' */
  vendor?: string;
  endpointId: string;
  unitId: string;
  sinkId?: string;
}

/** How a run behaves. Every field is optional. @public */
export interface RunPolicy {
  /** Rows per batch read back from staging. @defaultValue 10000 */
  chunkSize?: number;
  /**
   * Rows per staged slice. With the overlapped import a slice reaches the sink while it is exported (ADR 0018 §7), so
   * smaller slices no longer start the import sooner; each slice costs a query and a staged object of its own (an
   * export of 1,000,000 rows: 1.04–1.39 s as one slice, 1.40–1.47 s as two, docs/performance.md). Smaller slices
   * bound what a failed slice exports again.
   * @defaultValue 1000000
   */
  sliceMaxRows?: number;
  /** Estimated bytes per staged slice. @defaultValue 256 MiB */
  sliceMaxBytes?: number;
  /** A row larger than this (estimated) is refused with `row_rejected`. @defaultValue 64 MiB */
  maxRowBytes?: number;
  /**
   * Planned slices exported at once. One stream by default: with the overlapped import it is the pipe's shape (one
   * stream out, one in), and on a small machine more export streams only compete with the import for the cores
   * (docs/performance.md). Raise it for export-only jobs against a server with cores to spare.
   * @defaultValue 1
   */
  exportConcurrency?: number;
  /** Retries of retryable failures, per slice on export and per attempt on import. */
  retry?: Partial<RetryPolicy>;
  /** Lease lifetime; renewed every third of it while the run is alive. @defaultValue 60000 */
  leaseTtlMs?: number;
  /**
   * Time limit of every KvStore call of the run (checkpoint, run state, receipts, lease acquire and renewal): a
   * store that hangs fails the call with `timeout` instead of stalling the commit. @defaultValue a third of `leaseTtlMs`
   */
  kvTimeoutMs?: number;
  /** Keep staged data after the run landed (for audit; `sweepStaging` removes it later). `false` deletes it at once. @defaultValue true */
  keepStaging?: boolean;
  /**
   * What to do with a source row over `maxRowBytes`: `'fail'` refuses the run with `row_rejected`;
   * `'dead-letter'` hands the row's index and reason to the `deadLetter` sink of the call and stages the run
   * without it (the run completes; `stats.rowsRejected` counts them). `'dead-letter'` needs a `deadLetter` sink.
   * @defaultValue 'fail'
   */
  onRejectedRow?: 'fail' | 'dead-letter';
  /**
   * Overlap the export and the import (docs/decisions/0018-overlapped-import.md): when the source plans its slices
   * and the sink takes streamed slices (`SinkEndpoint.importSlices`, as `PostgresSink` and `MySqlSink` do), each slice
   * is imported as soon as it is staged while later slices export. `false` keeps the phases apart (export all,
   * seal, then import). The checkpoint moves only after every slice is durable in the sink either way.
   * @defaultValue true
   */
  overlap?: boolean;
}

/**
 * A source row the run left out (see `RunPolicy.onRejectedRow`). The row itself is not kept (it may be
 * hundreds of MB); its position is: `row` is its index in the source's read — of planned slice `slice` for a
 * source with `plan()`, of the whole unit for a streamed read (then `slice` is the slice being written when the
 * row's batch arrived).
 * @public
 */
export interface RejectedRow {
  runId: string;
  unitId: string;
  slice: number;
  row: number;
  code: 'row_rejected';
  reason: string;
  details?: { bytes: number; maxRowBytes: number };
  /**
   * Where the source holds the record, when the source itself rejected it (`SourceRejection.position`); `row` is then
   * the number of rows the read had produced before the record's batch.
   */
  position?: Json;
}

/**
 * Where rejected rows go when `policy.onRejectedRow` is `'dead-letter'`. Called once per source batch that had
 * rejected rows, before the batch's other rows are staged. A retried slice reads its rows again, so an entry can
 * be delivered more than once (deduplicate on `runId`, `slice`, `row`). A failure fails the run (`sink_failed`).
 *
 * @example
 * ```ts
 * import type { DeadLetterSink, RejectedRow } from '@nucleus/ingestion';
 * const rejected: RejectedRow[] = [];
 * const deadLetter: DeadLetterSink = { async write(rows) { rejected.push(...rows); } };
 * // runUnit({ …, deadLetter, policy: { onRejectedRow: 'dead-letter' } })
 * ```
 * @public
 */
export interface DeadLetterSink {
  /** Take the rejected rows of one source batch. @throws anything: the run fails with `sink_failed` */
  write(rows: RejectedRow[], ctx: IngestionContext): Promise<void>;
}

/** The policy with every default filled in. @public */
export interface ResolvedRunPolicy {
  chunkSize: number;
  sliceMaxRows: number;
  sliceMaxBytes: number;
  maxRowBytes: number;
  exportConcurrency: number;
  retry: RetryPolicy;
  leaseTtlMs: number;
  /** A third of `leaseTtlMs` unless given. */
  kvTimeoutMs: number;
  keepStaging: boolean;
  onRejectedRow: 'fail' | 'dead-letter';
  overlap: boolean;
}

/** Options shared by {@link runUnit}, {@link exportUnit} and {@link importUnit}. @public */
export interface BaseRunOptions {
  staging: StagingProvider;
  kv: KvStore;
  unit: UnitRef;
  /** @defaultValue 'incremental' when the source declares `ingest.incremental`, else 'full' */
  mode?: 'full' | 'incremental';
  /** Stable id of this run (e.g. from an orchestrator). A new id is generated when absent; a resumed run keeps its own. */
  runId?: string;
  policy?: RunPolicy;
  signal?: AbortSignal;
  /** Receives every {@link IngestionEvent} of the run (progress, commits, failures); secrets masked. */
  onEvent?: (event: IngestionEvent) => void;
  logger?: Logger;
  /** Identifies this worker in the lease (for `status`). @defaultValue `<hostname>:<pid>` */
  workerId?: string;
  /** Receives rows over `policy.maxRowBytes` when `policy.onRejectedRow` is `'dead-letter'`. */
  deadLetter?: DeadLetterSink;
  /**
   * What a run does when the source's schema differs from the unit's recorded one (docs/schema-evolution.md):
   * `'evolve'`, `'freeze'`, `'discard_value'`, `'discard_row'`, or one mode per entity (`{ columns, dataType }`).
   * A refused change fails with `schema_conflict` before anything is staged.
   * @defaultValue 'evolve'
   */
  schemaContract?: SchemaContract;
}

/** Options of {@link runUnit}. @public */
export interface RunUnitOptions extends BaseRunOptions {
  source: SourceEndpoint<any>;
  sink: SinkEndpoint;
  /**
   * Kept in the run state: a call resuming the run with another disposition is refused (`run_state_invalid`);
   * omitted, a resumed run keeps the recorded one.
   * @defaultValue 'append'
   */
  disposition?: Disposition;
  /** Merge key; defaults to the staged schema's primary key. Kept in the run state like `disposition`. */
  primaryKey?: string[];
}

/** Options of {@link exportUnit}: `runUnit`'s without the sink. @public */
export interface ExportOptions extends BaseRunOptions {
  source: SourceEndpoint<any>;
}

/** Options of {@link importUnit}: `runUnit`'s without the source, plus where the staged data is. @public */
export interface ImportOptions extends BaseRunOptions {
  sink: SinkEndpoint;
  /** The exported session; defaults to the one recorded in the unit's run state. */
  sessionRef?: StagingSessionRef;
  /** Handles returned by `exportUnit`; used to check they match the recorded session. */
  stagingHandles?: StagingHandle[];
  disposition?: Disposition;
  primaryKey?: string[];
}

/** Result of {@link runUnit} and {@link importUnit} (the seed's result shape plus counters). @public */
export interface RunUnitResult {
  runId: string;
  newCheckpoint: Json | null;
  stats: {
    rowsExported: number;
    rowsImported: number;
    /** Rows sent to the dead-letter sink instead of staged; absent when none were. */
    rowsRejected?: number;
    slices: number;
    bytesStaged: number;
    startedAt: string;
    completedAt: string;
  };
  stagingHandles: StagingHandle[];
  /** True when the run picked up an earlier attempt's staged data. */
  resumed?: boolean;
  /**
   * True when the call named a run id that had already committed: this is that run's recorded result, nothing
   * was read, imported or committed by this call.
   */
  repeated?: boolean;
}

/** Result of {@link exportUnit}. @public */
export interface ExportResult {
  runId: string;
  sessionRef: StagingSessionRef;
  stagingHandles: StagingHandle[];
  /** The checkpoint that becomes current once the import commits. */
  plannedCheckpoint: Json | null;
  stats: {
    rowsExported: number;
    rowsRejected?: number;
    slices: number;
    bytesStaged: number;
    startedAt: string;
    completedAt: string;
  };
}

const DEFAULTS: ResolvedRunPolicy = {
  chunkSize: 10_000,
  sliceMaxRows: 1_000_000,
  sliceMaxBytes: 256 * 1024 * 1024,
  maxRowBytes: 64 * 1024 * 1024,
  exportConcurrency: 1,
  retry: { maxAttempts: 3, baseDelayMs: 200, maxDelayMs: 10_000 },
  leaseTtlMs: 60_000,
  kvTimeoutMs: 20_000,
  keepStaging: true,
  onRejectedRow: 'fail',
  overlap: true,
};

const posInt = (name: string) =>
  z
    .number({ error: `Expected \`${name}\` to be a positive integer` })
    .int({ error: `Expected \`${name}\` to be a positive integer` })
    .positive({ error: `Expected \`${name}\` to be a positive integer` });

const hasFn = (name: string, ...fns: string[]) =>
  z.custom<any>((v) => v != null && typeof v === 'object' && fns.every((f) => typeof (v as any)[f] === 'function'), {
    error: `Expected \`${name}\` to implement ${fns.map((f) => `${f}()`).join(', ')}`,
  });

const identifier = (name: string) =>
  z
    .string({ error: `Expected \`${name}\` to be a string` })
    .min(1, { error: `Expected \`${name}\` to be non-empty` })
    .max(512, { error: `Expected \`${name}\` to be at most 512 characters` })
    // biome-ignore lint/suspicious/noControlCharactersInRegex: refuse control characters in ids
    .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), {
      error: `Expected \`${name}\` to contain no control characters`,
    });

const policySchema = z
  .object({
    chunkSize: posInt('policy.chunkSize').max(1_000_000).optional(),
    sliceMaxRows: posInt('policy.sliceMaxRows').optional(),
    sliceMaxBytes: posInt('policy.sliceMaxBytes').optional(),
    maxRowBytes: posInt('policy.maxRowBytes').optional(),
    exportConcurrency: posInt('policy.exportConcurrency').max(256).optional(),
    retry: z
      .object({
        maxAttempts: posInt('policy.retry.maxAttempts').max(100).optional(),
        baseDelayMs: z.number().int().nonnegative().optional(),
        maxDelayMs: z.number().int().nonnegative().optional(),
      })
      .strict()
      .optional(),
    leaseTtlMs: posInt('policy.leaseTtlMs')
      .min(100, { error: 'Expected `policy.leaseTtlMs` to be at least 100' })
      .optional(),
    kvTimeoutMs: posInt('policy.kvTimeoutMs').optional(),
    keepStaging: z.boolean().optional(),
    onRejectedRow: z.enum(['fail', 'dead-letter']).optional(),
    overlap: z.boolean({ error: 'Expected `policy.overlap` to be a boolean' }).optional(),
  })
  .strict();

const unitSchema = z
  .object({
    workspaceId: identifier('unit.workspaceId').optional(),
    vendor: identifier('unit.vendor').optional(),
    endpointId: identifier('unit.endpointId'),
    unitId: identifier('unit.unitId'),
    sinkId: identifier('unit.sinkId').optional(),
  })
  .strict();

const baseShape = {
  staging: hasFn('staging', 'allocateSession', 'openSession'),
  kv: hasFn('kv', 'get', 'put', 'delete', 'list'),
  unit: unitSchema,
  mode: z.enum(['full', 'incremental']).optional(),
  runId: identifier('runId')
    .refine((s) => /^[A-Za-z0-9._:-]+$/.test(s) && s !== '.' && s !== '..', {
      error: 'Expected `runId` to use only letters, digits and . _ : -',
    })
    .optional(),
  policy: policySchema.optional(),
  signal: z
    .custom<AbortSignal>((v) => v instanceof AbortSignal, { error: 'Expected `signal` to be an AbortSignal' })
    .optional(),
  onEvent: z
    .custom<(e: IngestionEvent) => void>((v) => typeof v === 'function', {
      error: 'Expected `onEvent` to be a function',
    })
    .optional(),
  logger: hasFn('logger', 'info', 'warn', 'error').optional(),
  workerId: z.string().min(1).max(256).optional(),
  deadLetter: hasFn('deadLetter', 'write').optional(),
  schemaContract: z
    .union([
      z.enum(SCHEMA_CONTRACT_MODES),
      z
        .object({
          columns: z.enum(SCHEMA_CONTRACT_MODES).optional(),
          dataType: z.enum(SCHEMA_CONTRACT_MODES).optional(),
        })
        .strict(),
    ])
    .optional(),
};

const importExtras = {
  disposition: z.enum(['append', 'replace', 'merge']).optional(),
  primaryKey: z.array(z.string().min(1)).min(1).optional(),
};

const schemas = {
  run: z.object({ ...baseShape, ...importExtras, source: hasFn('source', 'read'), sink: hasFn('sink', 'import') }),
  export: z.object({ ...baseShape, source: hasFn('source', 'read') }),
  import: z.object({
    ...baseShape,
    ...importExtras,
    sink: hasFn('sink', 'import'),
    sessionRef: z.object({ provider: z.string(), sessionId: z.string(), runId: z.string() }).passthrough().optional(),
    stagingHandles: z.array(z.object({ bucket: z.string(), key: z.string() }).passthrough()).optional(),
  }),
};

/**
 * Validate pipeline options once, at the boundary: a bad option is `config_invalid` listing every issue.
 * @throws IngestError `config_invalid`
 */
export function parseOptions<K extends keyof typeof schemas>(kind: K, opts: unknown): void {
  const schema = schemas[kind] as z.ZodType;
  const res = schema
    .refine((o: any) => o.policy?.onRejectedRow !== 'dead-letter' || o.deadLetter !== undefined, {
      error: "Expected `deadLetter` (a DeadLetterSink) when `policy.onRejectedRow` is 'dead-letter'",
      path: ['deadLetter'],
    })
    .safeParse(opts);
  if (!res.success)
    throw configInvalid(`Invalid ${kind === 'run' ? 'runUnit' : `${kind}Unit`} options`, res.error.issues);
}

/** Fill in policy defaults. */
export function resolvePolicy(policy: RunPolicy | undefined): ResolvedRunPolicy {
  const given = Object.fromEntries(Object.entries(policy ?? {}).filter(([, v]) => v !== undefined));
  const leaseTtlMs = (given.leaseTtlMs as number | undefined) ?? DEFAULTS.leaseTtlMs;
  const kvTimeoutMs = Math.max(10, Math.floor(leaseTtlMs / 3));
  return { ...DEFAULTS, kvTimeoutMs, ...given, retry: { ...DEFAULTS.retry, ...(policy?.retry ?? {}) } };
}
