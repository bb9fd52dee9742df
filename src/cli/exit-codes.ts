import { IngestError } from '../errors/ingest-error.js';

/** Exit codes of `nucleus-ingest`. @public */
export const EXIT = {
  ok: 0,
  /** Usage error or invalid pipeline file / config (`config_invalid`). */
  config: 2,
  /** A retryable failure: running the same command again may succeed (and resumes the run). */
  retryable: 3,
  /** A permanent failure: fix the data, the target or the config first. */
  permanent: 4,
  /** Interrupted (Ctrl-C); the run stays resumable. */
  aborted: 130,
} as const;

/** The exit code for an error thrown by a command. @internal */
export function exitCodeFor(err: unknown, interrupted: boolean): number {
  if (interrupted && (IngestError.is(err, 'aborted') || !IngestError.is(err))) return EXIT.aborted;
  if (IngestError.is(err, 'config_invalid')) return EXIT.config;
  if (IngestError.is(err)) return err.retryable ? EXIT.retryable : EXIT.permanent;
  return EXIT.permanent;
}
