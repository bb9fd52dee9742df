import { z } from 'zod';
import { IngestError } from '../errors/ingest-error.js';
import { RUN_PHASES, type RunPhase } from './run-policy.js';

// What the pipeline reads back from the KvStore is checked before it is trusted (ADR 0017): a run state or receipt
// of an unknown `format` (written by a newer version) or of the wrong shape is `state_invalid`, naming the key —
// never a TypeError deep inside a resume.

/** The `format` of run states and receipts this version writes and reads (absent: written before formats). */
export const STATE_FORMAT = 1;

const phases = Object.keys(RUN_PHASES) as [RunPhase, ...RunPhase[]];
const format = z.literal(STATE_FORMAT).optional();
const iso = z.string().min(1);
const count = z.number().int().nonnegative();

const sessionRef = z.looseObject({
  provider: z.string().min(1),
  sessionId: z.string().min(1),
  runId: z.string().min(1),
  workspaceId: z.string(),
  endpointId: z.string(),
  unitId: z.string(),
});

/** The shape of `<checkpoint key>::run`; fields it does not name are kept (a newer minor may add some). */
export const runStateSchema = z.looseObject({
  format,
  runId: z.string().min(1),
  phase: z.enum(phases),
  mode: z.enum(['full', 'incremental']),
  stagingProvider: z.string().min(1),
  sessionRef,
  baseCheckpointVersion: z.number().int().nullable(),
  plan: z
    .array(z.looseObject({ index: count }))
    .nullable()
    .optional(),
  sealedSlices: z.array(z.looseObject({ index: count, rows: count })).optional(),
  disposition: z.enum(['append', 'replace', 'merge']).optional(),
  primaryKey: z.array(z.string()).nullable().optional(),
  startedAt: iso,
  updatedAt: iso,
  attempts: count,
});

/** The shape of `<checkpoint key>::run::<runId>`. */
export const receiptSchema = z.looseObject({
  format,
  runId: z.string().min(1),
  outcome: z.enum(['committed', 'abandoned', 'superseded']),
  at: iso,
  state: z.looseObject({}),
});

/** The shape of `<checkpoint key>::lease`. */
export const leaseSchema = z.looseObject({
  state: z.enum(['held', 'released']),
  owner: z.string(),
  runId: z.string(),
  acquiredAt: iso,
  expiresAt: iso,
});

/**
 * `value` as `what` stored at `key`, checked: its `format` must be one this version knows and its shape must fit.
 * @throws IngestError `state_invalid` naming the key, the format or the first issues, and what to do
 * @internal
 */
export function validState<T>(schema: z.ZodType, value: unknown, what: string, key: string): T {
  const fmt = (value as { format?: unknown } | null)?.format;
  if (fmt !== undefined && fmt !== STATE_FORMAT) {
    throw new IngestError(
      'state_invalid',
      `The ${what} at key ${JSON.stringify(key)} has format ${JSON.stringify(fmt)}; this version reads format ${STATE_FORMAT} — it was written by a newer version of @nucleus/ingestion: upgrade this worker`,
      { details: { key, format: fmt as never, known: STATE_FORMAT } },
    );
  }
  const parsed = schema.safeParse(value);
  if (parsed.success) return value as T;
  const issues = parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(value)'}: ${i.message}`);
  throw new IngestError(
    'state_invalid',
    `The ${what} at key ${JSON.stringify(key)} is not valid (${issues.join('; ')}); it was not written by this library or was damaged — inspect it with \`nucleus-ingest status\`, then delete the entry (or abandon the run) to start over`,
    { details: { key, issues } },
  );
}
