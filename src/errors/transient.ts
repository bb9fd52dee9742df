// Which foreign errors a retry can cure. IngestError defers to this when it wraps an error it did not make: a cause
// nobody recognises (a TypeError in a connector, a constraint violation) is not retryable. See ADR 0017.

/** Node and undici error codes of connection failures that a retry can cure. @internal */
export const TRANSIENT_NODE_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ERR_STREAM_PREMATURE_CLOSE',
  'EAGAIN',
  'EBUSY',
  'EMFILE',
  'ENFILE',
]);

/**
 * SQLSTATEs worth a retry: serialization failure (40001), deadlock (40P01), lock not available (55P03), too many
 * connections (53300), admin/crash shutdown and cannot-connect-now (57P01–57P03), and the connection exceptions of
 * class 08.
 */
const TRANSIENT_SQLSTATES: ReadonlySet<string> = new Set([
  '40001',
  '40P01',
  '55P03',
  '53300',
  '57P01',
  '57P02',
  '57P03',
]);

/**
 * MySQL/MariaDB server and client errors worth a retry: deadlock (1213), lock wait timeout (1205), too many
 * connections (1040), server shutdown (1053), lost connection (2006, 2013, 2055), cannot connect (2002, 2003).
 */
const TRANSIENT_MYSQL_ERRNOS: ReadonlySet<number> = new Set([1205, 1213, 1040, 1053, 2002, 2003, 2006, 2013, 2055]);

/** Error names of throttling and server-side timeouts (AWS SDK and fetch). @internal */
export const TRANSIENT_NAMES: ReadonlySet<string> = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'RequestTimeout',
  'RequestTimeoutException',
  'InternalError',
  'ServiceUnavailable',
  'TimeoutError',
]);

/** HTTP statuses worth a retry: 408, 425, 429 and every 5xx but 501 (not implemented) and 505. */
function transientStatus(status: unknown): boolean {
  if (typeof status !== 'number') return false;
  if (status === 408 || status === 425 || status === 429) return true;
  return status >= 500 && status <= 599 && status !== 501 && status !== 505;
}

interface ErrorFields {
  name?: unknown;
  code?: unknown;
  errno?: unknown;
  sqlState?: unknown;
  status?: unknown;
  statusCode?: unknown;
  $metadata?: { httpStatusCode?: unknown };
  $retryable?: unknown;
  cause?: unknown;
}

/**
 * Whether a foreign (not {@link IngestError}-made) error is known to be transient: a connection reset, refusal or
 * timeout; an HTTP 5xx, 408 or 429 / a throttling error; a serialization failure (SQLSTATE 40001), a deadlock (40P01,
 * MySQL 1213), a lock timeout (55P03, MySQL 1205); a server going away. Follows `cause` a few levels down. Everything
 * else — a `TypeError`, a constraint violation, an unknown driver error — is not: a retry would repeat it, and may
 * repeat a write.
 * @example
 * ```ts
 * import { isTransientError } from '@nucleus/ingestion';
 * isTransientError(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })); // true
 * isTransientError(new TypeError('x is undefined')); // false
 * ```
 * @public
 */
export function isTransientError(err: unknown): boolean {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 6; e = (e as ErrorFields).cause, depth++) {
    if (isIngestErrorLike(e)) return (e as { retryable?: unknown }).retryable === true;
    if (transientFields(e as ErrorFields)) return true;
  }
  return false;
}

function isIngestErrorLike(e: object): boolean {
  return (
    (e as { name?: unknown }).name === 'IngestError' && typeof (e as { retryable?: unknown }).retryable === 'boolean'
  );
}

function transientFields(e: ErrorFields): boolean {
  const { code, errno, sqlState, name } = e;
  if (typeof code === 'string') {
    if (TRANSIENT_NODE_CODES.has(code)) return true;
    // a SQLSTATE as `pg` reports it: five characters, digits and capitals
    if (
      /^[0-9A-Z]{5}$/.test(code) &&
      /^[0-9]{2}/.test(code) &&
      (TRANSIENT_SQLSTATES.has(code) || code.startsWith('08'))
    )
      return true;
    if (code === 'PROTOCOL_CONNECTION_LOST' || code === 'ER_LOCK_DEADLOCK' || code === 'ER_LOCK_WAIT_TIMEOUT')
      return true;
  }
  if (typeof errno === 'number' && TRANSIENT_MYSQL_ERRNOS.has(errno)) return true;
  if (typeof sqlState === 'string' && (sqlState === '40001' || sqlState.startsWith('08'))) return true;
  if (typeof name === 'string' && TRANSIENT_NAMES.has(name)) return true;
  if (transientStatus(e.status) || transientStatus(e.statusCode) || transientStatus(e.$metadata?.httpStatusCode))
    return true;
  return e.$retryable !== undefined && e.$retryable !== false && e.$retryable !== null;
}
