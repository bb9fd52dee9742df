import type { SessionDescription } from '../contracts/staging.js';
import { IngestError } from '../errors/ingest-error.js';
import { raceAbort, sleep, throwIfAborted } from '../util/abort.js';
import { backoffDelay, isRetryable, markRetried } from '../util/retry.js';
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

/**
 * A staging operation of a phase that is not a slice write — describe, seal, verify, handles, destroy, fence, the
 * markers — under the run's `policy.retry`, like slice writes: a transient failure (retryable `staging_failed`)
 * is retried with backoff and reported as `retry.scheduled`. Use it only for operations that can be repeated:
 * reads, and writes that converge (`seal()` keeps the first `sealedAt` and rewrites `_SUCCESS`, markers are
 * rewritten whole, `destroy()` deletes what is left). `lease_lost`, `aborted`, non-retryable errors and a seal
 * refused because the manifest is not the plan (retryable for the caller, but the same at once) are not retried here.
 * @internal
 */
export async function stagingStep<T>(
  rc: RunContext,
  phase: 'export' | 'import' | 'commit',
  fn: () => Promise<T>,
  what: string,
  slice?: number,
): Promise<T> {
  const policy = rc.policy.retry;
  for (let attempt = 1; ; attempt++) {
    try {
      return await stagingCall(rc, fn, what, slice);
    } catch (err) {
      const again = isRetryable(err) && !IngestError.is(err, 'lease_lost') && !isSealRefusal(err) && !rc.signal.aborted;
      if (!again) throw err;
      if (attempt >= policy.maxAttempts) {
        if (attempt > 1) markRetried(err, 'phase', attempt);
        throw err;
      }
      const delayMs = backoffDelay(attempt, policy);
      retryEvent(rc, phase, { attempt, delayMs, error: err }, slice);
      await sleep(delayMs, rc.signal);
    }
  }
}

/** `seal({ expectedSlices })` refused: the manifest lists other slices (details `have`/`want`); not a store failure. */
function isSealRefusal(err: unknown): boolean {
  return IngestError.is(err) && Array.isArray(err.details?.want) && Array.isArray(err.details?.have);
}

/** How long an early exit waits for a source's `return()` (its ROLLBACK and connection release) before moving on. */
export const SOURCE_CLOSE_WAIT_MS = 10_000;

/**
 * Iterate a source's read, stopping within one item when the run's signal fires, and close it on every exit that is
 * not its end: the consumer stopped (a staging write failed, a row was refused, the lease was lost), the source
 * threw, or the run was aborted. The close — the iterator's `return()`, which for the PostgreSQL and MySQL sources
 * rolls back and releases their connection — is awaited (up to {@link SOURCE_CLOSE_WAIT_MS}), so the connection is
 * back in its pool before the phase retries or returns; a pool of one is then free for the next attempt or run.
 * Only a `next()` still running when the abort fired is left to settle: the close follows it in the background.
 * Errors of `next()` are mapped by `mapError` (abort errors pass through unchanged).
 * @internal
 */
export async function* closingIteration<T>(
  rc: RunContext,
  iterable: AsyncIterable<T>,
  what: string,
  mapError: (err: unknown) => unknown,
): AsyncGenerator<T> {
  let it: AsyncIterator<T>;
  try {
    it = iterable[Symbol.asyncIterator]();
  } catch (err) {
    throw mapError(err);
  }
  let ended = false;
  let pending: Promise<unknown> | undefined;
  try {
    while (true) {
      throwIfAborted(rc.signal, what);
      const next = it.next();
      pending = next.then(
        () => undefined,
        () => undefined,
      );
      let result: IteratorResult<T>;
      try {
        result = await raceAbort(next, rc.signal, what);
        pending = undefined;
      } catch (err) {
        // After an abort the next() may still be running (raceAbort gave up on it): `pending` closes it later.
        if (!rc.signal.aborted) pending = undefined;
        throw IngestError.is(err) ? err : mapError(err);
      }
      if (result.done) {
        ended = true;
        return;
      }
      yield result.value;
    }
  } finally {
    if (!ended) await closeSource(rc, it!, pending, what);
  }
}

async function closeSource<T>(
  rc: RunContext,
  it: AsyncIterator<T>,
  pending: Promise<unknown> | undefined,
  what: string,
): Promise<void> {
  if (!it.return) return;
  const close = () => Promise.resolve(it.return!(undefined)).then(() => undefined);
  if (pending) {
    // The abort left a next() running (a source that ignores its signal): close the source once it settles.
    pending.then(close).catch((err) => rc.logger.warn('closing the source failed', { what, error: String(err) }));
    return;
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), SOURCE_CLOSE_WAIT_MS);
  });
  try {
    const closing = close();
    closing.catch(() => {});
    if ((await Promise.race([closing, late])) === 'late') {
      rc.logger.warn('the source did not close in time; it is closed in the background', {
        what,
        waitedMs: SOURCE_CLOSE_WAIT_MS,
      });
    }
  } catch (err) {
    rc.logger.warn('closing the source failed', { what, error: String(err) });
  } finally {
    clearTimeout(timer);
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
