import type { SinkEndpoint } from '../../contracts/sink-endpoint.js';
import type { SourceEndpoint } from '../../contracts/source-endpoint.js';
import { IngestError } from '../../errors/ingest-error.js';
import type { RunPolicy } from '../../pipeline/options.js';
import { runUnit } from '../../pipeline/run-unit.js';
import type { EndpointRegistry } from '../../registry/endpoint-registry.js';
import type { SchemaContract } from '../../schema/schema-contract.js';
import { logFailure } from '../../util/best-effort.js';
import { createEndpoints, createStaging, type OpenKv, openKv, unitRefOf } from '../environment.js';
import { EXIT, exitCodeFor } from '../exit-codes.js';
import type { PipelineFile } from '../pipeline-file.js';
import { describeError, type Reporter, type UnitOutcome } from '../reporter.js';

/** Options of {@link runCommand}. @internal */
export interface RunCommandOptions {
  file: PipelineFile;
  registry: EndpointRegistry;
  reporter: Reporter;
  /** Units to run, in order; defaults to the file's `units`. */
  units: string[];
  mode?: 'full' | 'incremental';
  /** `--schema-contract`: overrides the file's contracts for this invocation. */
  schemaContract?: SchemaContract;
  signal: AbortSignal;
  /** True once the user pressed Ctrl-C (the signal then aborts the run). */
  interrupted: () => boolean;
}

/**
 * `nucleus-ingest run`: run each unit through source → staging → sink, one after the other; stop at the first
 * interruption. Returns the exit code: the most severe outcome wins (aborted > permanent > retryable > config).
 * @internal
 */
export async function runCommand(o: RunCommandOptions): Promise<number> {
  const { file, reporter } = o;
  if (o.units.length === 0) {
    throw new IngestError('config_invalid', 'No unit to run: pass --unit <id> or list `units` in the pipeline file');
  }
  const staging = await createStaging(file.staging!);
  let kvHandle: OpenKv | undefined;
  let source: SourceEndpoint<any> | undefined;
  let sink: SinkEndpoint | undefined;
  const outcomes: UnitOutcome[] = [];
  const codes: number[] = [];
  try {
    ({ source, sink } = await createEndpoints(o.registry, file));
    kvHandle = await openKv(file.kv!);
    const kv = kvHandle.kv;
    for (const unitId of o.units) {
      const started = Date.now();
      let runId: string | undefined;
      reporter.unitStarted(unitId);
      try {
        const result = await runUnit({
          source,
          sink,
          staging,
          kv,
          unit: unitRefOf(file, unitId),
          mode: o.mode ?? file.mode,
          disposition: file.disposition,
          primaryKey: file.primaryKey,
          schemaContract: o.schemaContract ?? file.schemaContracts?.[unitId] ?? file.schemaContract,
          policy: file.policy as RunPolicy | undefined,
          signal: o.signal,
          onEvent: (e) => {
            runId = e.runId || runId;
            reporter.event(e);
          },
          logger: reporter.logger,
        });
        const outcome: UnitOutcome = {
          unitId,
          status: 'ok',
          runId: result.runId,
          result,
          durationMs: Date.now() - started,
        };
        outcomes.push(outcome);
        reporter.unitFinished(outcome);
      } catch (err) {
        const aborted = o.interrupted() || IngestError.is(err, 'aborted');
        const outcome: UnitOutcome = {
          unitId,
          status: aborted ? 'aborted' : 'failed',
          runId,
          error: describeError(err),
          durationMs: Date.now() - started,
        };
        outcomes.push(outcome);
        reporter.unitFinished(outcome);
        codes.push(exitCodeFor(err, o.interrupted()));
        if (aborted) break;
      }
    }
  } finally {
    await Promise.all(
      [source?.close?.(), sink?.close?.(), kvHandle?.close()].map((p) =>
        Promise.resolve(p).catch(logFailure(reporter.logger, 'closing an endpoint or the KvStore')),
      ),
    );
  }
  reporter.finish(outcomes);
  return worstExitCode(codes);
}

const SEVERITY: number[] = [EXIT.aborted, EXIT.permanent, EXIT.retryable, EXIT.config];

/** The most severe of several exit codes (0 when none failed). @internal */
export function worstExitCode(codes: number[]): number {
  for (const c of SEVERITY) if (codes.includes(c)) return c;
  return EXIT.ok;
}
