import { IngestError, TRANSIENT_NODE_CODES } from '../errors/ingest-error.js';
import { TRANSIENT_NAMES } from '../errors/transient.js';

interface SdkErrorLike {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $retryable?: unknown;
}

const TRANSIENT_SYSTEM_CODES = new Set([...TRANSIENT_NODE_CODES, 'ERR_STREAM_PREMATURE_CLOSE']);

const AUTH_NAMES = new Set([
  'AccessDenied',
  'AllAccessDisabled',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'InvalidToken',
  'TokenRefreshRequired',
  'CredentialsProviderError',
]);

/** Whether an S3 or network error is worth another attempt: 5xx, 429, throttling, timeouts, connection resets. */
export function isTransientS3Error(err: unknown): boolean {
  const e = (err ?? {}) as SdkErrorLike;
  const status = e.$metadata?.httpStatusCode;
  if (e.name && TRANSIENT_NAMES.has(e.name)) return true;
  if (e.code && TRANSIENT_SYSTEM_CODES.has(e.code)) return true;
  if (status !== undefined && (status >= 500 || status === 429)) return true;
  if (typeof e.message === 'string' && /socket hang up|ECONNRESET|EPIPE/i.test(e.message)) return true;
  return Boolean(e.$retryable);
}

/** True for a missing object (`NoSuchKey`, `NotFound`, or a 404 that is not a missing bucket). */
export function isS3NotFound(err: unknown): boolean {
  const e = (err ?? {}) as SdkErrorLike;
  if (e.name === 'NoSuchBucket') return false;
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404;
}

/**
 * Map an S3 client error to an {@link IngestError}: missing object → `not_found`; auth or a missing bucket →
 * non-retryable `staging_failed`; transient failures → retryable `staging_failed`; aborts → `aborted`.
 * Messages name the operation and address, never credentials (IngestError scrubs secrets as well).
 */
export function s3Failure(err: unknown, op: string, bucket: string, key?: string): IngestError {
  if (IngestError.is(err)) return err;
  const e = (err ?? {}) as SdkErrorLike;
  const status = e.$metadata?.httpStatusCode;
  const where = key === undefined ? `s3://${bucket}` : `s3://${bucket}/${key}`;
  const what = `${e.name ?? 'Error'}${status ? ` (HTTP ${status})` : ''}`;
  const details = { bucket, key, s3Error: e.name, httpStatus: status };
  if (e.name === 'AbortError') {
    return new IngestError('aborted', `S3 ${op} of ${where} was aborted`, { cause: err, details });
  }
  if (isS3NotFound(err)) {
    return new IngestError('not_found', `S3 ${op}: object ${where} not found`, { cause: err, details });
  }
  const message = `S3 ${op} of ${where} failed: ${what}: ${e.message ?? String(err)}`;
  const auth = (e.name && AUTH_NAMES.has(e.name)) || status === 401 || status === 403;
  if (auth || e.name === 'NoSuchBucket') {
    return new IngestError('staging_failed', message, { cause: err, retryable: false, details });
  }
  return new IngestError('staging_failed', message, { cause: err, retryable: isTransientS3Error(err), details });
}
