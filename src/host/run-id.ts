import { IngestError } from '../errors/ingest-error.js';

const MAX_RUN_ID = 200;

/**
 * The ingestion `runId` of a Temporal activity: the workflow run id and the activity id, joined with `:`. Characters
 * outside the run-id alphabet (`[A-Za-z0-9._:-]`) become `_` and a hash of the original is appended. Every retry of the same activity in the same workflow run
 * gets the same id, so it resumes the same ingestion run; a new workflow run gets a new one.
 *
 * Overlong ids are shortened the same way, so ids stay unique and at most 200 characters.
 * @example
 * ```ts
 * import { temporalRunId } from '@nucleus/ingestion/temporal';
 * temporalRunId({ workflowRunId: '9b0c…', activityId: 'ingest/users' }); // '9b0c…:ingest_users-<hash>'
 * ```
 * @throws IngestError `config_invalid` when both parts are empty
 * @public
 */
export function temporalRunId(parts: { workflowRunId: string; activityId: string }): string {
  const raw = `${parts.workflowRunId}:${parts.activityId}`;
  let id = raw.replace(/[^A-Za-z0-9._:-]/g, '_').replace(/^[.]+/, '_');
  if (id === ':' || id.length === 0) {
    throw new IngestError('config_invalid', 'Cannot derive a run id: the workflow run id and activity id are empty');
  }
  // A changed or shortened id gets a hash of the original, so distinct activity ids never collide.
  if (id !== raw || id.length > MAX_RUN_ID) id = `${id.slice(0, MAX_RUN_ID - 17)}-${fnv1a64(raw)}`;
  return id;
}

/** 64-bit FNV-1a of a string, as 16 hex digits (stable, dependency-free). @internal */
export function fnv1a64(text: string): string {
  let h = 0xcbf29ce484222325n;
  for (const byte of new TextEncoder().encode(text)) {
    h ^= BigInt(byte);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h.toString(16).padStart(16, '0');
}

/**
 * The ingestion run id of a BullMQ job: stable across retries and stalls of one job (so a job that committed but died
 * before BullMQ heard of it gets the committed result on its next attempt, not a second run), new for a job
 * added later under the same id.
 * @internal
 */
export function jobRunId(jobId: string, timestamp: number): string {
  const safe = jobId.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 160);
  return `bullmq.${safe}.${timestamp.toString(36)}`;
}
