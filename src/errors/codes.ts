/**
 * Every {@link IngestError} code, whether it is retryable by default, and what it means.
 * @public
 */
export const ERROR_CODES = {
  config_invalid: { retryable: false, summary: 'Options or endpoint config failed validation; every issue is listed.' },
  source_failed: { retryable: true, summary: 'The source endpoint failed while reading.' },
  staging_failed: { retryable: true, summary: 'Writing to or reading from staging failed (I/O).' },
  staging_corrupt: {
    retryable: false,
    summary: 'Staged data does not match its manifest (rows, bytes, sha256, missing or extra slice).',
  },
  staging_conflict: {
    retryable: true,
    summary: 'Another writer changed the staging session: sealing refused because its manifest is not the export plan.',
  },
  invalid_key: { retryable: false, summary: 'An object key is not portable or tries to escape its root.' },
  not_found: { retryable: false, summary: 'An object, session or entry does not exist.' },
  sink_failed: { retryable: true, summary: 'The sink endpoint failed while importing.' },
  row_rejected: { retryable: false, summary: 'A row does not fit the target or exceeds a limit.' },
  kv_conflict: { retryable: false, summary: 'A compare-and-set on the KvStore lost (version mismatch).' },
  kv_failed: { retryable: true, summary: 'The KvStore could not be read or written.' },
  lease_held: { retryable: true, summary: 'Another run holds the lease of this unit.' },
  lease_lost: { retryable: true, summary: 'This run lost its lease (expired and taken); its commit was fenced off.' },
  run_state_invalid: { retryable: false, summary: 'Run state in the KvStore does not fit this run.' },
  aborted: { retryable: true, summary: 'The run was cancelled through its AbortSignal.' },
  timeout: { retryable: true, summary: 'An operation took longer than its limit.' },
  unsupported: { retryable: false, summary: 'The endpoint lacks a capability the call needs.' },
  checkpoint_invalid: {
    retryable: false,
    summary: 'The stored checkpoint does not fit the unit (other cursor columns, unreadable values, unknown format).',
  },
  sink_busy: {
    retryable: true,
    summary: 'The sink is held by another importer (a slice claim waited past its lock timeout); retry later.',
  },
  dependency_missing: {
    retryable: false,
    summary: 'An optional peer package the call needs is not installed; the message names it and the install command.',
  },
  schema_conflict: {
    retryable: false,
    summary:
      "The source's schema changed in a way the unit's schema contract (or the target) does not allow; the message names the column, the old and new type and the remedies.",
  },
  state_invalid: {
    retryable: false,
    summary:
      'A stored state entry (checkpoint, run state, receipt, lease) fails validation or has an unknown format; the message names the key.',
  },
  internal: { retryable: false, summary: 'A bug: an invariant of the library did not hold.' },
} as const satisfies Record<string, { retryable: boolean; summary: string }>;

/** String code of an {@link IngestError}. @public */
export type IngestErrorCode = keyof typeof ERROR_CODES;
