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

/** Whether an error is worth another attempt. */
export function isRetryable(err: unknown): boolean {
  if (IngestError.is(err)) return err.retryable && err.code !== 'aborted';
  return false;
}

/**
 * Run `fn` until it succeeds, a non-retryable error occurs, or attempts run out.
 * `onRetry` is called before each delay.
 */
export async function withRetry<T>(
  fn: (attempt: number) => Promise<T>,
  policy: RetryPolicy,
  opts: { signal?: AbortSignal; onRetry?: (info: { attempt: number; delayMs: number; error: unknown }) => void } = {},
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= policy.maxAttempts || !isRetryable(err) || opts.signal?.aborted) throw err;
      const delayMs = backoffDelay(attempt, policy);
      opts.onRetry?.({ attempt, delayMs, error: err });
      await sleep(delayMs, opts.signal);
    }
  }
}
