import { ApplicationFailure } from '@temporalio/activity';
import { ERROR_CODES, type IngestErrorCode } from '../errors/codes.js';
import { IngestError } from '../errors/ingest-error.js';
import { redact } from '../errors/redact.js';

/**
 * Error codes that never succeed on a retry of the same input; list them in the workflow's
 * `retry.nonRetryableErrorTypes` so a retry policy configured elsewhere cannot override them.
 *
 * The activities already mark these failures non-retryable; the list is for workflows that want to be explicit.
 * Workflow code runs in Temporal's sandbox and must not import this module at run time (it loads
 * `@temporalio/activity`): copy the list, or import it in the worker and pass it down.
 * @example
 * ```ts
 * import { NON_RETRYABLE_ERROR_TYPES } from '@nucleus/ingestion/temporal';
 * console.log(NON_RETRYABLE_ERROR_TYPES); // ['config_invalid', 'staging_corrupt', …]
 * ```
 * @public
 */
export const NON_RETRYABLE_ERROR_TYPES: readonly IngestErrorCode[] = Object.freeze(
  (Object.keys(ERROR_CODES) as IngestErrorCode[]).filter((code) => !ERROR_CODES[code].retryable),
);

/**
 * Turn an error thrown by the pipeline into what a Temporal activity should throw.
 *
 * - an {@link IngestError} becomes an `ApplicationFailure` whose `type` is the error code, non-retryable when the
 *   error is (`config_invalid`, `staging_corrupt`, …), with the error's JSON (no secrets) as its only detail;
 * - a run aborted because Temporal cancelled the activity rethrows Temporal's own cancellation reason, so the
 *   worker reports the activity as cancelled rather than failed;
 * - anything else becomes a retryable `ApplicationFailure` typed with the error's name, its message scrubbed.
 * @example
 * ```ts
 * import { toActivityFailure } from '@nucleus/ingestion/temporal';
 * try { await runUnit(opts); } catch (err) { throw toActivityFailure(err, Context.current().cancellationSignal); }
 * ```
 * @public
 */
export function toActivityFailure(err: unknown, cancellation?: AbortSignal): unknown {
  if (cancellation?.aborted && (IngestError.is(err, 'aborted') || err === cancellation.reason)) {
    return cancellation.reason ?? err;
  }
  if (err instanceof ApplicationFailure) return err;
  if (IngestError.is(err)) {
    return ApplicationFailure.create({
      message: err.message,
      type: err.code,
      nonRetryable: !err.retryable,
      details: [err.toJSON()],
    });
  }
  const name = err instanceof Error ? err.name : 'Error';
  const message = redact(err instanceof Error ? err.message : String(err));
  return ApplicationFailure.create({ message, type: name, nonRetryable: false });
}
