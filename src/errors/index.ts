export { ERROR_CODES, type IngestErrorCode } from './codes.js';
export { IngestError, type IngestErrorOptions } from './ingest-error.js';
export { redact, redactDeep, registerSecret } from './redact.js';
export { isTransientError } from './transient.js';
