import { ERROR_CODES, type IngestErrorCode } from './codes.js';
import { redact, redactDeep } from './redact.js';
import { isTransientError, TRANSIENT_NODE_CODES } from './transient.js';

export { TRANSIENT_NODE_CODES } from './transient.js';

/** Options of {@link IngestError}. @public */
export interface IngestErrorOptions {
  /** The underlying error; its message is scrubbed of secrets. */
  cause?: unknown;
  /** Overrides the code's default. */
  retryable?: boolean;
  /** Machine-readable context: endpoint, unit, run, slice, issues… Scrubbed of secrets. */
  details?: Record<string, unknown>;
}

/**
 * The one error class of the library: a string `code`, whether a retry can help, the `cause`, and details.
 * Messages and details never carry secrets (passwords, keys, tokens, credentials in URLs).
 *
 * @example
 * ```ts
 * import { IngestError } from '@nucleus/ingestion';
 * try { await runUnit(opts); } catch (err) {
 *   if (IngestError.is(err, 'lease_held')) console.log('another worker is on it');
 * }
 * ```
 * @public
 */
export class IngestError extends Error {
  override readonly name = 'IngestError';
  readonly code: IngestErrorCode;
  readonly retryable: boolean;
  readonly details: Record<string, unknown>;

  constructor(code: IngestErrorCode, message: string, opts: IngestErrorOptions = {}) {
    const cause = opts.cause === undefined ? undefined : sanitizeCause(opts.cause);
    super(redact(message), cause === undefined ? undefined : { cause });
    this.code = code;
    this.retryable = opts.retryable ?? inferRetryable(code, opts.cause);
    this.details = redactDeep(opts.details ?? {});
  }

  /** True when `err` is an IngestError (optionally with one of `codes`). Works across package copies. */
  static is(err: unknown, ...codes: IngestErrorCode[]): err is IngestError {
    if (!(err instanceof Error) || (err as { name?: string }).name !== 'IngestError') return false;
    const code = (err as IngestError).code;
    return typeof code === 'string' && (codes.length === 0 || codes.includes(code));
  }

  /**
   * Wrap any thrown value: an IngestError passes through unchanged (its code wins), anything else becomes `code`.
   * The result is retryable only when the wrapped error is known to be transient ({@link isTransientError}: a
   * connection reset or timeout, an HTTP 5xx or 429, a serialization failure, a deadlock, a lock timeout); an
   * unknown error — a `TypeError` in a connector — is not, so no layer repeats it.
   */
  static wrap(err: unknown, code: IngestErrorCode, message: string, details?: Record<string, unknown>): IngestError {
    if (IngestError.is(err)) return err;
    const text = err instanceof Error ? err.message : String(err);
    return new IngestError(code, `${message}: ${text}`, { cause: err, details });
  }

  /** JSON form for logs and events (no stack, no secrets). */
  toJSON(): { name: string; code: string; message: string; retryable: boolean; details: Record<string, unknown> } {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      retryable: this.retryable,
      details: this.details,
    };
  }
}

/** Codes of a failed operation whose retryability comes from their cause alone (unknown cause: not retryable). */
const FAILURE_CODES: ReadonlySet<IngestErrorCode> = new Set([
  'source_failed',
  'sink_failed',
  'staging_failed',
  'kv_failed',
]);

function inferRetryable(code: IngestErrorCode, cause: unknown): boolean {
  if (IngestError.is(cause)) return cause.retryable && ERROR_CODES[code].retryable;
  // A failed operation is retryable only when what made it fail is known to be transient (ADR 0017): a TypeError in
  // a sink, a constraint violation or an error nobody recognises would fail the same way again, maybe after a write.
  if (FAILURE_CODES.has(code)) return cause !== undefined && isTransientError(cause);
  const sysCode = (cause as { code?: unknown } | undefined)?.code;
  if (typeof sysCode === 'string' && TRANSIENT_NODE_CODES.has(sysCode)) return true;
  return ERROR_CODES[code].retryable;
}

/**
 * Keep the cause chain for debugging, but never let a secret ride along in a message: a foreign error is
 * copied into a plain Error with a scrubbed message (its `code`, `name` and nested cause kept).
 */
function sanitizeCause(cause: unknown, depth = 0): unknown {
  if (IngestError.is(cause)) return cause;
  if (!(cause instanceof Error)) return typeof cause === 'string' ? redact(cause) : cause;
  const copy = new Error(redact(cause.message));
  copy.name = cause.name;
  copy.stack = cause.stack ? redact(cause.stack) : undefined;
  const extra = cause as unknown as Record<string, unknown>;
  for (const k of ['code', 'errno', 'syscall', 'statusCode', 'status', '$metadata', 'severity', 'routine']) {
    if (extra[k] !== undefined) (copy as unknown as Record<string, unknown>)[k] = redactDeep(extra[k]);
  }
  if (extra.cause !== undefined && depth < 5) {
    (copy as { cause?: unknown }).cause = sanitizeCause(extra.cause, depth + 1);
  }
  return copy;
}
