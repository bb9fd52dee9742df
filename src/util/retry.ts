import { IngestError } from '../errors/ingest-error.js';
import { sleep } from './abort.js';

/** Retry policy. @public */
export interface RetryPolicy {
  /** Attempts in all, including the first. @defaultValue 3 */
  maxAttempts: number;
  /** @defaultValue 200 */
  baseDelayMs: number;
  /** @defaultValue 10000 */
  maxDelayMs: number;
}

/** Default retry policy. @public */
export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 3, baseDelayMs: 200, maxDelayMs: 10_000 };

/** Exponential backoff with full jitter: a random delay in [base·2^(n-1)/2, base·2^(n-1)], capped. */
export function backoffDelay(attempt: number, policy: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'>): number {
  const exp = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp / 2 + Math.random() * (exp / 2));
}

/**
 * The layers that retry, innermost first (ADR 0017): `client` (a driver's or SDK's own retries), `store` (an
 * ObjectStore's or HTTP source's per-request retries), `phase` (a run's `policy.retry`), and the orchestrator
 * outside the library. Each has its own budget; an error a layer gave up on carries `details.retriedBy` so no
 * other layer in the same process retries it again.
 * @internal
 */
export type RetryLayer = 'client' | 'store' | 'phase';

/** Record on `err` that `layer` spent its budget on it (`details.retriedBy`, `details.attempts`). @internal */
export function markRetried(err: unknown, layer: RetryLayer, attempts: number): void {
  if (!IngestError.is(err) || err.details.retriedBy !== undefined) return;
  (err.details as Record<string, unknown>).retriedBy = layer;
  (err.details as Record<string, unknown>).attempts = attempts;
}

/** The layer that already spent its retries on `err` (or on an IngestError in its cause chain). @internal */
export function retriedBy(err: unknown): RetryLayer | undefined {
  for (let e = err, depth = 0; e && depth < 6; e = (e as { cause?: unknown }).cause, depth++) {
    if (IngestError.is(e) && typeof e.details.retriedBy === 'string') return e.details.retriedBy as RetryLayer;
  }
  return undefined;
}

/**
 * Whether an error is worth another attempt by this layer: a retryable IngestError that is not an abort and that no
 * inner layer has already retried (their budgets multiply otherwise: 3 × 3 × 3 requests for one outage).
 */
export function isRetryable(err: unknown): boolean {
  if (IngestError.is(err)) return err.retryable && err.code !== 'aborted' && retriedBy(err) === undefined;
  return false;
}

/**
 * Run `fn` until it succeeds, a non-retryable error occurs, or attempts run out.
 * `onRetry` is called before each delay. A retryable error that outlives the attempts is marked as retried by
 * `layer` ({@link markRetried}) so an outer layer does not retry it again.
 */
export async function withRetry<T>(
  fn: (attempt: number) => Promise<T>,
  policy: RetryPolicy,
  opts: {
    signal?: AbortSignal;
    onRetry?: (info: { attempt: number; delayMs: number; error: unknown }) => void;
    layer?: RetryLayer;
  } = {},
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (!isRetryable(err) || opts.signal?.aborted) throw err;
      if (attempt >= policy.maxAttempts) {
        if (policy.maxAttempts > 1) markRetried(err, opts.layer ?? 'phase', attempt);
        throw err;
      }
      const delayMs = backoffDelay(attempt, policy);
      opts.onRetry?.({ attempt, delayMs, error: err });
      await sleep(delayMs, opts.signal);
    }
  }
}
