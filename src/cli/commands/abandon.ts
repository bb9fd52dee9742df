import { IngestError } from '../../errors/ingest-error.js';
import { type AbandonRunResult, abandonRun } from '../../pipeline/abandon-run.js';
import { createStaging, unitRefOf, withKv } from '../environment.js';
import type { PipelineFile } from '../pipeline-file.js';
import type { Reporter } from '../reporter.js';

/**
 * `nucleus-ingest abandon <pipeline> <unit>…` (or `-u <unit>`): drop each unit's pending run (see `abandonRun()`): the checkpoint
 * stays where it was, the run id is retired, the staging session is marked for the sweep. Returns the exit code.
 * @throws IngestError `config_invalid` without a unit; `run_state_invalid` when a unit has no pending run (or it is
 * already imported); `lease_held` while a run is live
 * @internal
 */
export async function abandonCommand(
  file: PipelineFile,
  units: string[],
  reporter: Reporter,
  opts: { signal?: AbortSignal } = {},
): Promise<number> {
  if (units.length === 0) {
    throw new IngestError(
      'config_invalid',
      'abandon needs the unit whose pending run to drop: abandon <pipeline> <unit>',
      {
        details: { usage: true },
      },
    );
  }
  const staging = await createStaging(file.staging!);
  const abandoned: AbandonRunResult[] = await withKv(file.kv!, async (kv) => {
    const out: AbandonRunResult[] = [];
    for (const unitId of units) {
      out.push(
        await abandonRun({
          kv,
          staging,
          unit: unitRefOf(file, unitId),
          reason: 'nucleus-ingest abandon',
          logger: reporter.logger,
          ...(opts.signal ? { signal: opts.signal } : {}),
        }),
      );
    }
    return out;
  });
  for (const a of abandoned) {
    reporter.document('abandon', {
      runId: a.runId,
      phase: a.phase,
      checkpoint: a.checkpoint,
      checkpointVersion: a.checkpointVersion,
      sessionMarked: a.sessionMarked,
      partlyImported: a.partlyImported,
    });
  }
  return 0;
}
