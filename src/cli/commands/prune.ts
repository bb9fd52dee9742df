import { pruneState } from '../../pipeline/prune-state.js';
import type { EndpointRegistry } from '../../registry/endpoint-registry.js';
import { logFailure } from '../../util/best-effort.js';
import { createFileEndpoint, unitRefOf, withKv } from '../environment.js';
import type { PipelineFile } from '../pipeline-file.js';
import type { Reporter } from '../reporter.js';

/**
 * `nucleus-ingest prune <pipeline> [unit…] --older-than <duration>`: expire the receipts of runs that finished before
 * the duration and the matching rows of the sink's ledger, together (see `pruneState()`), for the given units or
 * every unit of the file. Returns the exit code.
 * @internal
 */
export async function pruneCommand(
  file: PipelineFile,
  registry: EndpointRegistry,
  units: string[],
  opts: { olderThanMs: number; signal?: AbortSignal },
  reporter: Reporter,
): Promise<number> {
  const sink = await createFileEndpoint(registry, file, 'sink');
  try {
    const report = await withKv(file.kv!, (kv) =>
      pruneState({
        kv,
        sinks: sink,
        olderThan: opts.olderThanMs,
        ...(units.length > 0
          ? { units: units.map((u) => unitRefOf(file, u)) }
          : { workspaceId: file.workspaceId ?? 'default' }),
        logger: reporter.logger,
        ...(opts.signal ? { signal: opts.signal } : {}),
      }),
    );
    reporter.document('prune', { ...report });
    return 0;
  } finally {
    await sink.close?.().catch(logFailure(reporter.logger, 'closing the sink after prune'));
  }
}
