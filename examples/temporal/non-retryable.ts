import type { IngestErrorCode } from '@nucleus/ingestion';

/**
 * Codes that a retry cannot fix. The activities already mark these failures non-retryable; listing them in the
 * workflow's retry policy keeps a policy configured elsewhere from overriding that. Mirrors
 * `NON_RETRYABLE_ERROR_TYPES` from '@nucleus/ingestion/temporal', which workflow code cannot import at run time
 * (it loads `@temporalio/activity`); `workflows.test.ts` checks the two stay equal.
 */
export const nonRetryableErrorTypes: IngestErrorCode[] = [
  'config_invalid',
  'staging_corrupt',
  'invalid_key',
  'not_found',
  'row_rejected',
  'kv_conflict',
  'run_state_invalid',
  'unsupported',
  'checkpoint_invalid',
  'internal',
  'dependency_missing',
  'schema_conflict',
  'state_invalid',
];
