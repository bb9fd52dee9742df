import type { SessionDescription } from '../contracts/staging.js';
import { IngestError } from '../errors/ingest-error.js';
import type { RunContext } from './run-context.js';
import type { SealedSliceRecord } from './run-state.js';

// Helpers every phase of a run shares (export, import, commit).

/** Run a staging operation; non-IngestErrors become `staging_failed`. @internal */
export async function stagingCall<T>(rc: RunContext, fn: () => Promise<T>, what: string, slice?: number): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw IngestError.wrap(err, 'staging_failed', `Staging failed while ${what} (${rc.where(slice)})`, {
      slice: slice ?? null,
    });
  }
}

/** Log and emit `retry.scheduled`. @internal */
export function retryEvent(
  rc: RunContext,
  phase: 'export' | 'import' | 'commit',
  r: { attempt: number; delayMs: number; error: unknown },
  slice?: number,
): void {
  const code = IngestError.is(r.error) ? r.error.code : 'internal';
  rc.logger.warn(`retrying ${phase} after a retryable failure`, {
    attempt: r.attempt,
    delayMs: r.delayMs,
    code,
    slice,
  });
  rc.emit({
    type: 'retry.scheduled',
    phase,
    attempt: r.attempt,
    delayMs: r.delayMs,
    code,
    ...(slice !== undefined ? { slice } : {}),
  });
}

/**
 * The session must hold exactly the expected slices (and, where recorded, with the same rows and sha256):
 * another writer — a holder paused past its lease — must not have changed what gets imported or committed.
 * @throws IngestError `staging_corrupt`
 * @internal
 */
export function assertSlices(
  rc: RunContext,
  desc: SessionDescription,
  expected: readonly number[] | readonly SealedSliceRecord[],
  when: 'sealed' | 'imported' | 'importing',
): void {
  const want = expected.map((e) => (typeof e === 'number' ? { index: e } : e)) as SealedSliceRecord[];
  const have = new Map(desc.slices.map((s) => [s.index, s]));
  const problems: string[] = [];
  for (const w of want) {
    const h = have.get(w.index);
    if (!h) problems.push(`slice ${w.index} is missing`);
    else if (w.rows !== undefined && h.rows !== w.rows)
      problems.push(`slice ${w.index} has ${h.rows} rows, not ${w.rows}`);
    else if (w.sha256 && h.sha256 && w.sha256 !== h.sha256) problems.push(`slice ${w.index} has another sha256`);
    have.delete(w.index);
  }
  for (const extra of have.keys()) problems.push(`slice ${extra} was not planned`);
  if (problems.length === 0) return;
  throw new IngestError(
    'staging_corrupt',
    `Staging session ${desc.ref.sessionId} no longer holds the slices the run ${when} (${problems.slice(0, 5).join('; ')}); another writer changed it (${rc.where()})`,
    { details: { sessionId: desc.ref.sessionId, problems } },
  );
}
