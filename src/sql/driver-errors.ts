import type { IngestErrorCode } from '../errors/codes.js';
import { IngestError } from '../errors/ingest-error.js';

/** The `wrap(err, code, message, details)` of a driver (see {@link wrapDriverError}). @internal */
export type DriverErrorWrap = (
  err: unknown,
  code: IngestErrorCode,
  message: string,
  details?: Record<string, unknown>,
) => IngestError;

/**
 * Wrap a driver error as an IngestError with `code` and the message `<message>: <driver's message><tag>` (`tag`
 * names the server's code: ` (SQLSTATE 23505)`), retryable when `transient`. Never a connection string: IngestError
 * scrubs secrets. An IngestError passes through unchanged.
 * @internal
 */
export function wrapDriverError(
  err: unknown,
  code: IngestErrorCode,
  message: string,
  o: { transient: boolean; tag: string; details: Record<string, unknown> },
): IngestError {
  if (IngestError.is(err)) return err;
  const text = err instanceof Error ? err.message : String(err);
  return new IngestError(code, `${message}: ${text}${o.tag}`, {
    cause: err,
    retryable: o.transient,
    details: o.details,
  });
}

/**
 * Whether an error is a lost or refused connection on the client's side: a Node socket error code (`ECONNREFUSED`,
 * `ECONNRESET`, `ETIMEDOUT`, `EPIPE`, …) or a driver message matching `lost`.
 * @internal
 */
export function isSocketError(err: unknown, lost: RegExp): boolean {
  const e = err as { code?: unknown; message?: unknown } | undefined;
  return (
    (typeof e?.code === 'string' && /^E[A-Z]+$/.test(e.code)) ||
    (typeof e?.message === 'string' && lost.test(e.message))
  );
}
