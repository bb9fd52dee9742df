import { sweepStaging } from '../../pipeline/sweep.js';
import { createStaging, withKv } from '../environment.js';
import type { PipelineFile } from '../pipeline-file.js';
import type { Reporter } from '../reporter.js';

/**
 * `nucleus-ingest sweep`: delete landed staging sessions older than `olderThanMs` (and abandoned ones older than
 * `abandonedAfterMs`), never one whose lease is live or whose run is unfinished.
 * @internal
 */
export async function sweepCommand(
  file: PipelineFile,
  opts: { olderThanMs: number; abandonedAfterMs?: number },
  reporter: Reporter,
): Promise<number> {
  const report = await withKv(file.kv!, async (kv) =>
    sweepStaging({
      staging: await createStaging(file.staging!),
      kv,
      olderThanMs: opts.olderThanMs,
      ...(opts.abandonedAfterMs !== undefined ? { abandonedAfterMs: opts.abandonedAfterMs } : {}),
    }),
  );
  reporter.document('sweep', { ...report });
  return 0;
}
