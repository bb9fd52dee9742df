import type { IngestionEvent } from '../contracts/context.js';
import type { SinkEndpoint } from '../contracts/sink-endpoint.js';
import type { SourceEndpoint } from '../contracts/source-endpoint.js';
import { exportUnit } from '../pipeline/export-unit.js';
import { importUnit } from '../pipeline/import-unit.js';
import type { ExportResult, ImportOptions, RunUnitResult } from '../pipeline/options.js';
import { runUnit } from '../pipeline/run-unit.js';
import { logFailure } from '../util/best-effort.js';
import { toLogger } from '../util/logger.js';
import { type EndpointConfigRef, type EndpointWiring, openEndpoint } from './endpoints.js';
import { HeartbeatThrottle, type IngestionHeartbeatDetails } from './heartbeat.js';

/** What an orchestrator asks of the pipeline: all three phases, or one of them. @internal */
export type HostedKind = 'run' | 'export' | 'import';

/** Options of {@link runHostedUnit}: the pipeline's options without the endpoints, plus how to make them. @internal */
export interface HostedUnitOptions extends Omit<ImportOptions, 'sink' | 'onEvent'> {
  wiring: EndpointWiring;
  /** Already resolved endpoint configs (each is resolved from its id in `unit` when absent, just before use). */
  sourceRef?: EndpointConfigRef;
  sinkRef?: EndpointConfigRef;
  /** Where progress goes: `send` is called at most every `intervalMs`, at once on a phase change, and as a keep-alive. */
  heartbeat: { attempt: number; intervalMs: number; send: (details: IngestionHeartbeatDetails) => void };
  /** Every pipeline event, after the heartbeat saw it. */
  onEvent?: (event: IngestionEvent) => void;
}

interface HostedResult {
  run: RunUnitResult;
  export: ExportResult;
  import: RunUnitResult;
}

/**
 * Run one unit for an orchestrator (a BullMQ job, a Temporal activity): start the heartbeat, create the source
 * and/or sink through the registry, run `runUnit` / `exportUnit` / `importUnit`, then stop the heartbeat and close
 * the endpoints, whatever happened.
 * @throws IngestError whatever the endpoints or the pipeline throw
 * @internal
 */
export async function runHostedUnit<K extends HostedKind>(kind: K, o: HostedUnitOptions): Promise<HostedResult[K]> {
  const {
    wiring,
    sourceRef,
    sinkRef,
    heartbeat,
    onEvent,
    sessionRef,
    stagingHandles,
    disposition,
    primaryKey,
    ...common
  } = o;
  const opened: Array<SourceEndpoint<any> | SinkEndpoint> = [];
  const open = async <R extends 'source' | 'sink'>(id: string, role: R, ref: EndpointConfigRef | undefined) => {
    const endpoint = await openEndpoint(wiring, id, role, ref);
    opened.push(endpoint);
    return endpoint;
  };
  const throttle = new HeartbeatThrottle({ runId: o.runId ?? '', phase: 'starting', ...heartbeat });
  throttle.start();
  const base = {
    ...common,
    onEvent: (event: IngestionEvent) => {
      throttle.onEvent(event);
      onEvent?.(event);
    },
  };
  const sinkId = o.unit.sinkId!;
  try {
    if (kind === 'import') {
      const sink = await open(sinkId, 'sink', sinkRef);
      return (await importUnit({
        ...base,
        sink,
        sessionRef,
        stagingHandles,
        disposition,
        primaryKey,
      })) as HostedResult[K];
    }
    const source = await open(o.unit.endpointId, 'source', sourceRef);
    if (kind === 'export') return (await exportUnit({ ...base, source })) as HostedResult[K];
    const sink = await open(sinkId, 'sink', sinkRef);
    return (await runUnit({ ...base, source, sink, disposition, primaryKey })) as HostedResult[K];
  } finally {
    throttle.stop();
    const log = common.logger ? toLogger(common.logger) : undefined;
    await Promise.all(opened.map((e) => e.close?.().catch(logFailure(log, 'closing an endpoint after the run'))));
  }
}
